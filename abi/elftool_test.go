package abi

import (
	"encoding/json"
	"testing"
)

func TestQueryABIText(t *testing.T) {
	got := QueryABIText(ABIInfo{Target: TargetHVT, Version: 2})
	want := "{\n  \"type\": \"solo5.abi\",\n  \"target\": \"hvt\",\n  \"version\": 2\n}\n"
	if got != want {
		t.Errorf("QueryABIText = %q, want %q", got, want)
	}
	got = QueryABIText(ABIInfo{Target: 9, Version: 1})
	want = "{\n  \"type\": \"solo5.abi\",\n  \"target\": \"unknown\",\n  \"version\": 1\n}\n"
	if got != want {
		t.Errorf("QueryABIText(target 9) = %q, want %q", got, want)
	}
}

func TestQueryManifestText(t *testing.T) {
	reserved := ManifestEntry{Type: DeviceReservedFirst}
	cases := []struct {
		name    string
		entries []ManifestEntry
		want    string
	}{
		{"no devices", []ManifestEntry{reserved},
			"{\n  \"type\": \"solo5.manifest\",\n  \"version\": 1,\n  \"devices\": [\n  ]\n}\n"},
		{"two devices", []ManifestEntry{reserved,
			{Name: "storage", Type: DeviceBlockBasic}, {Name: "service0", Type: DeviceNetBasic}},
			"{\n  \"type\": \"solo5.manifest\",\n  \"version\": 1,\n  \"devices\": [\n" +
				"    { \"name\": \"storage\", \"type\": \"BLOCK_BASIC\" },\n" +
				"    { \"name\": \"service0\", \"type\": \"NET_BASIC\" }\n  ]\n}\n"},
		// elftool decides the comma by index, so a reserved last entry
		// leaves a trailing comma, and unknown types print as
		// "<undefined type>".
		{"reserved last", []ManifestEntry{reserved, {Name: "x", Type: 7}, {Type: DeviceReservedFirst + 1}},
			"{\n  \"type\": \"solo5.manifest\",\n  \"version\": 1,\n  \"devices\": [\n" +
				"    { \"name\": \"x\", \"type\": \"<undefined type>\" },\n  ]\n}\n"},
	}
	for _, c := range cases {
		if got := QueryManifestText(c.entries); got != c.want {
			t.Errorf("%s: QueryManifestText = %q, want %q", c.name, got, c.want)
		}
	}
}

func TestNoteInfoJSON(t *testing.T) {
	v := NewNoteInfo(ABIInfo{Target: TargetSPT, Version: 1}, []ManifestEntry{
		{Type: DeviceReservedFirst}, {Name: "service0", Type: DeviceNetBasic},
	})
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"abi":{"type":"solo5.abi","target":"spt","version":1},` +
		`"manifest":{"type":"solo5.manifest","version":1,"devices":[{"name":"service0","type":"NET_BASIC"}]}}`
	if string(b) != want {
		t.Errorf("JSON = %s, want %s", b, want)
	}

	empty, err := json.Marshal(NewNoteInfo(ABIInfo{Target: TargetHVT, Version: 2}, []ManifestEntry{{Type: DeviceReservedFirst}}))
	if err != nil {
		t.Fatal(err)
	}
	wantEmpty := `{"abi":{"type":"solo5.abi","target":"hvt","version":2},` +
		`"manifest":{"type":"solo5.manifest","version":1,"devices":[]}}`
	if string(empty) != wantEmpty {
		t.Errorf("JSON without devices = %s, want %s", empty, wantEmpty)
	}
}
