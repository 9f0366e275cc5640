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
	tests := []struct {
		name     string
		manifest string
		want     string
	}{
		{"not JSON", `{`, "invalid JSON"},
		{"trailing data", manifestJSON() + `{}`, "unexpected data after the top-level value"},
		{"not an object", `[]`, "invalid JSON"},
		{"unknown root key", `{"type":"solo5.manifest","version":1,"devices":[],"x":1}`, `unknown key "x"`},
		{"missing type", `{"version":1,"devices":[]}`, "missing .type"},
		{"missing version", `{"type":"solo5.manifest","devices":[]}`, "missing .version"},
		{"missing devices", `{"type":"solo5.manifest","version":1}`, "missing .devices[]"},
		{"wrong type", `{"type":"solo5.other","version":1,"devices":[]}`, `.type: invalid value, expected "solo5.manifest"`},
		{"type not a string", `{"type":1,"version":1,"devices":[]}`, `.type: invalid value, expected "solo5.manifest"`},
		{"wrong version", `{"type":"solo5.manifest","version":2,"devices":[]}`, ".version: invalid version 2, expected 1"},
		{"version not a number", `{"type":"solo5.manifest","version":"1","devices":[]}`, `.version: invalid version "1", expected 1`},
		{"devices not an array", `{"type":"solo5.manifest","version":1,"devices":{}}`, ".devices[]: expected an array"},
		{"too many devices", manifestJSON(tooMany...), ".devices[]: too many entries, maximum 63"},
		{"device not an object", manifestJSON(`"storage"`), ".devices[0]: expected an object"},
		{"unknown device key", manifestJSON(`{"name":"a","type":"NET_BASIC","mtu":1}`), `.devices[0]: unknown key "mtu"`},
		{"missing name", manifestJSON(`{"type":"NET_BASIC"}`), ".devices[0]: missing .name"},
		{"empty name", manifestJSON(`{"name":"","type":"NET_BASIC"}`), ".devices[0]: .name may not be empty"},
		{"long name", manifestJSON(block(strings.Repeat("a", 68))), "name too long, maximum 67 characters"},
		{"name not alphanumeric", manifestJSON(block("net-0")), `.devices[0]: .name "net-0": name is not alphanumeric`},
		{"missing device type", manifestJSON(`{"name":"a"}`), ".devices[0]: missing .type"},
		{"unknown device type", manifestJSON(`{"name":"a","type":"CHAR"}`), `.devices[0]: .type: unknown device type "CHAR"`},
		{"second device bad", manifestJSON(block("a"), block("b_c")), `.devices[1]: .name "b_c"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseManifest([]byte(tt.manifest))
			if err == nil {
				t.Fatalf("parseManifest accepted %s", tt.manifest)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
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
		{"invalid manifest", []string{"-target", "hvt", bad, "-"}, bad + ": missing .version"},
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
