package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func manifestJSON(devices ...string) string {
	return `{"type":"solo5.manifest","version":1,"devices":[` +
		strings.Join(devices, ",") + `]}`
}

func block(name string) string {
	return fmt.Sprintf(`{"name":%q,"type":"BLOCK_BASIC"}`, name)
}

func TestParseManifestRejects(t *testing.T) {
	tooMany := make([]string, maxDevices+1)
	for i := range tooMany {
		tooMany[i] = block(fmt.Sprintf("d%d", i))
	}
	// The expected messages are what solo5-elftool v0.12.1 gen-manifest
	// prints after "FILE:" for the same input, except where noted.
	tests := []struct {
		name     string
		manifest string
		want     string
	}{
		{"root not an object", `[]`, "1: (root): expected OBJECT, got ARRAY"},
		{"root a string", `"x"`, "1: (root): expected OBJECT, got STRING"},
		{"unknown root key", `{"type":"solo5.manifest","version":1,"devices":[],"x":1}`, "1: (root): unknown key: x"},
		{"unknown key before missing", `{"x":1,"version":2}`, "1: (root): unknown key: x"},
		{"unknown key before device errors", `{"devices":[{"name":"a-b"}],"y":1}`, "1: (root): unknown key: y"},
		{"missing type", `{"version":1,"devices":[]}`, "1: missing .type"},
		{"missing version", `{"type":"solo5.manifest","devices":[]}`, "1: missing .version"},
		{"missing devices", `{"type":"solo5.manifest","version":1}`, "1: missing .devices[]"},
		{"wrong type", `{"type":"solo5.other","version":1,"devices":[]}`, `1: .type: invalid value, expected "solo5.manifest"`},
		{"type before version", `{"version":2,"type":"x","devices":[]}`, `1: .type: invalid value, expected "solo5.manifest"`},
		{"type not a string", `{"type":1,"version":1,"devices":[]}`, "1: .type: expected STRING, got INTEGER"},
		{"wrong version", `{"type":"solo5.manifest","version":2,"devices":[]}`, "1: .version: invalid version 2, expected 1"},
		{"negative version", `{"type":"solo5.manifest","version":-1,"devices":[]}`, "1: .version: invalid version -1, expected 1"},
		{"version a string", `{"type":"solo5.manifest","version":"1","devices":[]}`, "1: .version: expected INTEGER, got STRING"},
		{"version a real", `{"type":"solo5.manifest","version":1e0,"devices":[]}`, "1: .version: expected INTEGER, got REAL"},
		{"last duplicate wins", `{"type":"solo5.manifest","version":1,"devices":[], "version": 3}`, "1: .version: invalid version 3, expected 1"},
		{"devices an object", `{"type":"solo5.manifest","version":1,"devices":{}}`, "1: .devices: expected ARRAY, got OBJECT"},
		{"too many devices", manifestJSON(tooMany...), "1: .devices[]: too many entries, maximum 63"},
		{"device a string", manifestJSON(`"s"`), "1: .devices[]: expected OBJECT, got STRING"},
		{"second device an integer", manifestJSON(block("ab"), `1`), "1: .devices[]: expected OBJECT, got INTEGER"},
		{"unknown device key", manifestJSON(`{"name":"a","type":"NET_BASIC","mtu":1}`), "1: .devices[...]: unknown key: mtu"},
		{"unknown key before name", manifestJSON(`{"type":"X","q":1,"name":"a-b"}`), "1: .devices[...]: unknown key: q"},
		{"missing name", manifestJSON(`{"type":"NET_BASIC"}`), "1: .devices[...]: missing .name"},
		{"name null", manifestJSON(`{"name":null,"type":"X"}`), "1: .devices[...]: expected STRING, got NULL"},
		{"empty name", manifestJSON(`{"name":"","type":"NET_BASIC"}`), "1: .devices[...]: .name may not be empty"},
		{"long name", manifestJSON(block(strings.Repeat("a", 68))), "1: .devices[...]: name too long"},
		{"name not alphanumeric", manifestJSON(block("net-0")), "1: .devices[...]: name is not alphanumeric"},
		{"name before type", manifestJSON(`{"type":"X","name":"a-b"}`), "1: .devices[...]: name is not alphanumeric"},
		{"missing device type", manifestJSON(`{"name":"a"}`), "1: .devices[...]: missing .type"},
		{"first device first", manifestJSON(`{"name":"ab"}`, `{"name":"a-b","type":"X"}`), "1: .devices[...]: missing .type"},
		{"device type a boolean", manifestJSON(`{"name":"ab","type":true}`), "1: .devices[...]: expected STRING, got BOOLEAN"},
		// elftool leaves an unknown type to the C compiler.
		{"unknown device type", manifestJSON(`{"name":"a","type":"CHAR"}`), `1: .devices[...]: invalid type "CHAR", expected "BLOCK_BASIC" or "NET_BASIC"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseManifest([]byte(tt.manifest))
			if err == nil {
				t.Fatalf("parseManifest accepted %s", tt.manifest)
			}
			if err.Error() != tt.want {
				t.Errorf("error %q, expected %q", err, tt.want)
			}
		})
	}
}

// TestParseManifestLines checks the line numbers in messages against
// what solo5-elftool v0.12.1 reports for the same multi-line input. A
// member is reported at its key and an array element at its value. A
// device is reported at its opening brace, and the root object at line 1.
func TestParseManifestLines(t *testing.T) {
	tests := []struct {
		name     string
		manifest string
		want     string
	}{
		{
			"name key",
			"{\n\"type\": \"solo5.manifest\",\n\"version\": 1,\n\"devices\": [\n{ \"name\": \"ok\", \"type\": \"NET_BASIC\" },\n{\n\"name\": \"a-b\",\n\"type\": \"NET_BASIC\"\n}\n]\n}\n",
			"7: .devices[...]: name is not alphanumeric",
		},
		{
			"unknown device key",
			"{\n\"type\": \"solo5.manifest\",\n\"version\": 1,\n\"devices\": [\n{ \"name\": \"ok\", \"type\": \"NET_BASIC\" },\n{\n\"name\": \"ab\",\n\"type\": \"NET_BASIC\", \"x\": 1\n}\n]\n}\n",
			"8: .devices[...]: unknown key: x",
		},
		{
			"missing name at brace",
			"{\n\"type\": \"solo5.manifest\",\n\"version\": 1,\n\"devices\": [\n{\n\"type\": \"X\"\n}\n]\n}\n",
			"5: .devices[...]: missing .name",
		},
		{
			"type error at key",
			"{\n\"type\": \"solo5.manifest\",\n\"version\": 1,\n\"devices\": [\n{\n\"name\":\n\"ab\",\n\"type\": \n5\n}\n]\n}\n",
			"8: .devices[...]: expected STRING, got INTEGER",
		},
		{
			"element at value",
			"{\n\"type\": \"solo5.manifest\",\n\"version\": 1,\n\"devices\":\n[\n\n1\n]\n}\n",
			"7: .devices[]: expected OBJECT, got INTEGER",
		},
		{
			"version at key",
			"{\n\"type\": \"solo5.manifest\",\n\"version\":\n3,\n\"devices\": []\n}\n",
			"3: .version: invalid version 3, expected 1",
		},
		{
			"missing at line 1",
			"\n\n{\n\"type\": \"solo5.manifest\",\n\"version\": 1\n}\n",
			"1: missing .devices[]",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseManifest([]byte(tt.manifest))
			if err == nil {
				t.Fatal("parseManifest accepted the manifest")
			}
			if err.Error() != tt.want {
				t.Errorf("error %q, expected %q", err, tt.want)
			}
		})
	}
}

func TestParseManifestSyntaxErrors(t *testing.T) {
	tests := []struct {
		name     string
		manifest string
		want     string
	}{
		{"truncated", `{"type":"solo5.manifest","version":1,"devices":[]`, "invalid JSON: line 1: unexpected end of input"},
		{"leading zero", `{"type":"solo5.manifest","version":01,"devices":[]}`, "invalid JSON: line 1:"},
		{"trailing comma", `{"type":"solo5.manifest","version":1,"devices":[],}`, "invalid JSON: line 1:"},
		{"trailing data", "{\"type\":\"solo5.manifest\",\"version\":1,\"devices\":[]}\n{}", "invalid JSON: line 2: unexpected data after the top-level value"},
		{"empty", ``, "invalid JSON: line 1: unexpected end of input"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseManifest([]byte(tt.manifest))
			if err == nil {
				t.Fatal("parseManifest accepted the manifest")
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error %q, expected it to start with %q", err, tt.want)
			}
		})
	}
}

func TestParseManifestAccepts(t *testing.T) {
	maxName := strings.Repeat("x", maxNameLength)
	devices, err := parseManifest([]byte(manifestJSON(
		block("storage"),
		`{"type":"NET_BASIC","name":"service0"}`,
		block(maxName))))
	if err != nil {
		t.Fatal(err)
	}
	want := []device{
		{"storage", deviceBlockBasic},
		{"service0", deviceNetBasic},
		{maxName, deviceBlockBasic},
	}
	if len(devices) != len(want) {
		t.Fatalf("got %d devices, expected %d", len(devices), len(want))
	}
	for i := range want {
		if devices[i] != want[i] {
			t.Errorf("device %d = %+v, expected %+v", i, devices[i], want[i])
		}
	}

	all := make([]string, maxDevices)
	for i := range all {
		all[i] = block(fmt.Sprintf("storage%d", i))
	}
	devices, err = parseManifest([]byte(manifestJSON(all...)))
	if err != nil {
		t.Fatalf("63 devices: %v", err)
	}
	if len(devices) != maxDevices {
		t.Errorf("got %d devices, expected %d", len(devices), maxDevices)
	}
}

func u32(b []byte, off int) uint32 {
	return binary.LittleEndian.Uint32(b[off:])
}

// checkNoteHeader checks the ELF note header, the name and the total size.
func checkNoteHeader(t *testing.T, n []byte, name string, typ uint32) {
	t.Helper()
	paddedName := (len(name) + 1 + 3) &^ 3
	if got := u32(n, 0); got != uint32(len(name)+1) {
		t.Errorf("%s: n_namesz = %d, expected %d", name, got, len(name)+1)
	}
	if got := u32(n, 8); got != typ {
		t.Errorf("%s: n_type = %#x, expected %#x", name, got, typ)
	}
	if got := string(n[12 : 12+len(name)+1]); got != name+"\x00" {
		t.Errorf("name = %q, expected %q", got, name)
	}
	for i := 12 + len(name) + 1; i < 12+paddedName; i++ {
		if n[i] != 0 {
			t.Errorf("%s: name padding byte %d is %#x", name, i, n[i])
		}
	}
	if want := 12 + paddedName + int(u32(n, 4)); len(n) != want {
		t.Errorf("%s: note is %d bytes, expected %d", name, len(n), want)
	}
}

func TestNotesLayout(t *testing.T) {
	for _, target := range []uint32{abiTargetHVT, abiTargetSPT} {
		for _, count := range []int{0, 1, 2, maxDevices} {
			t.Run(fmt.Sprintf("target %d, %d devices", target, count), func(t *testing.T) {
				devices := make([]device, count)
				for i := range devices {
					devices[i] = device{fmt.Sprintf("dev%d", i), deviceNetBasic}
				}
				notes := buildNotes(target, devices)
				if len(notes) != 3 {
					t.Fatalf("got %d notes, expected 3", len(notes))
				}

				openBSD := notes[0]
				if openBSD.section != ".note.solo5.not_openbsd" {
					t.Errorf("first note is %s, expected the OpenBSD note", openBSD.section)
				}
				checkNoteHeader(t, openBSD.data, "OpenBSD", noteTypeOpenBSD)
				if len(openBSD.data) != 24 {
					t.Errorf("OpenBSD note is %d bytes, expected 24", len(openBSD.data))
				}

				abi := notes[1]
				checkNoteHeader(t, abi.data, "Solo5", noteTypeABI)
				if got := u32(abi.data, 4); got != 16 {
					t.Errorf("ABI1 n_descsz = %d, expected 16", got)
				}
				if got := u32(abi.data, 20); got != target {
					t.Errorf("abi_target = %d, expected %d", got, target)
				}
				if got := u32(abi.data, 24); got != abiVersion {
					t.Errorf("abi_version = %d, expected %d", got, abiVersion)
				}

				mft := notes[2]
				checkNoteHeader(t, mft.data, "Solo5", noteTypeManifest)
				entries := count + 1
				if got, want := u32(mft.data, 4), uint32(12+104*entries); got != want {
					t.Errorf("MFT1 n_descsz = %d, expected %d", got, want)
				}
				if got := u32(mft.data, 20); got != 0 {
					t.Errorf("MFT1 padding = %#x, expected 0", got)
				}
				if got := u32(mft.data, 24); got != manifestVersion {
					t.Errorf("mft.version = %d, expected %d", got, manifestVersion)
				}
				if got := u32(mft.data, 28); got != uint32(entries) {
					t.Errorf("mft.entries = %d, expected %d", got, entries)
				}
				entry0 := mft.data[32:]
				if entry0[0] != 0 {
					t.Errorf("entry 0 has a name")
				}
				if got := u32(entry0, manifestEntryType); got != deviceReservedFirst {
					t.Errorf("entry 0 type = %#x, expected %#x", got, deviceReservedFirst)
				}
				for i, d := range devices {
					e := mft.data[32+104*(i+1) : 32+104*(i+2)]
					name := string(e[:bytes.IndexByte(e, 0)])
					if name != d.name {
						t.Errorf("entry %d name = %q, expected %q", i+1, name, d.name)
					}
					if got := u32(e, manifestEntryType); got != d.typ {
						t.Errorf("entry %d type = %d, expected %d", i+1, got, d.typ)
					}
					for j := manifestEntryType + 4; j < 104; j++ {
						if e[j] != 0 {
							t.Errorf("entry %d byte %d = %#x, expected 0 for the tender to fill", i+1, j, e[j])
						}
					}
				}
			})
		}
	}
}

// parseAssembly reads back what writeAssembly wrote: the bytes of each
// section, and each section's alignment.
func parseAssembly(t *testing.T, text string) (map[string][]byte, map[string]int, []string) {
	t.Helper()
	data := make(map[string][]byte)
	align := make(map[string]int)
	var order []string
	section := ""
	scanner := bufio.NewScanner(strings.NewReader(text))
	for scanner.Scan() {
		line := strings.TrimSpace(scanner.Text())
		switch {
		case strings.HasPrefix(line, ".section "):
			section = strings.TrimSuffix(strings.Fields(line)[1], ",")
			order = append(order, section)
		case strings.HasPrefix(line, ".balign "):
			n, err := strconv.Atoi(strings.TrimPrefix(line, ".balign "))
			if err != nil {
				t.Fatal(err)
			}
			align[section] = n
		case strings.HasPrefix(line, ".byte "):
			for _, field := range strings.Split(strings.TrimPrefix(line, ".byte "), ",") {
				v, err := strconv.ParseUint(strings.TrimSpace(field), 0, 8)
				if err != nil {
					t.Fatal(err)
				}
				data[section] = append(data[section], byte(v))
			}
		}
	}
	return data, align, order
}

func TestWriteAssemblyRoundTrip(t *testing.T) {
	notes := buildNotes(abiTargetSPT, []device{{"storage", deviceBlockBasic}})
	var out bytes.Buffer
	if err := writeAssembly(&out, "test.json", notes); err != nil {
		t.Fatal(err)
	}
	data, align, order := parseAssembly(t, out.String())

	wantOrder := []string{".note.solo5.not_openbsd", ".note.solo5.abi", ".note.solo5.manifest", ".note.GNU-stack"}
	if strings.Join(order, " ") != strings.Join(wantOrder, " ") {
		t.Errorf("sections %q, expected %q", order, wantOrder)
	}
	for _, n := range notes {
		if !bytes.Equal(data[n.section], n.data) {
			t.Errorf("%s: assembly bytes differ from the note", n.section)
		}
		if align[n.section] != 4 {
			t.Errorf("%s: alignment %d, expected 4", n.section, align[n.section])
		}
	}
	if !strings.Contains(out.String(), `.section .note.solo5.abi, "a", @note`) {
		t.Error("note sections are not allocated SHT_NOTE sections")
	}
}

func TestRunWritesFile(t *testing.T) {
	dir := t.TempDir()
	source := filepath.Join(dir, "manifest.json")
	output := filepath.Join(dir, "notes.S")
	if err := os.WriteFile(source, []byte(manifestJSON(block("storage"))), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"-target", "hvt", source, output}, nil, nil); err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(output)
	if err != nil {
		t.Fatal(err)
	}
	data, _, _ := parseAssembly(t, string(text))
	if got := u32(data[".note.solo5.abi"], 20); got != abiTargetHVT {
		t.Errorf("abi_target = %d, expected hvt (%d)", got, abiTargetHVT)
	}
}

func TestRunUsesStandardStreams(t *testing.T) {
	var out bytes.Buffer
	in := strings.NewReader(manifestJSON())
	if err := run([]string{"-target", "spt", "-", "-"}, in, &out); err != nil {
		t.Fatal(err)
	}
	data, _, _ := parseAssembly(t, out.String())
	if got := u32(data[".note.solo5.abi"], 20); got != abiTargetSPT {
		t.Errorf("abi_target = %d, expected spt (%d)", got, abiTargetSPT)
	}
}

func TestRunRejects(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"type":"solo5.manifest"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no target", []string{"-", "-"}, `invalid -target ""`},
		{"bad target", []string{"-target", "xen", "-", "-"}, `invalid -target "xen"`},
		{"missing operand", []string{"-target", "hvt", "-"}, "usage: mknotes"},
		{"missing file", []string{"-target", "hvt", filepath.Join(dir, "none.json"), "-"}, "reading manifest"},
		{"invalid manifest", []string{"-target", "hvt", bad, "-"}, bad + ":1: missing .version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(tt.args, strings.NewReader(""), &bytes.Buffer{})
			if err == nil {
				t.Fatal("run succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}
