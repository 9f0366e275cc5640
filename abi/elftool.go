package abi

import (
	"fmt"
	"strings"
)

// QueryABIText returns what solo5-elftool query-abi prints for info
// (Solo5 v0.6.0 to v0.12.1), byte for byte.
func QueryABIText(info ABIInfo) string {
	return fmt.Sprintf("{\n  \"type\": \"solo5.abi\",\n  \"target\": \"%s\",\n  \"version\": %d\n}\n",
		info.Target, info.Version)
}

// QueryManifestText returns what solo5-elftool query-manifest prints for
// entries, the manifest including entry 0, byte for byte. Like elftool it
// skips entries with a type at or above RESERVED_FIRST, puts a comma after
// every printed entry except one at the last index, and prints names
// without JSON escaping.
func QueryManifestText(entries []ManifestEntry) string {
	var b strings.Builder
	fmt.Fprintf(&b, "{\n  \"type\": \"solo5.manifest\",\n  \"version\": %d,\n  \"devices\": [\n",
		ManifestVersion)
	for i, e := range entries {
		if e.Type >= DeviceReservedFirst {
			continue
		}
		comma := ","
		if i == len(entries)-1 {
			comma = ""
		}
		fmt.Fprintf(&b, "    { \"name\": \"%s\", \"type\": \"%s\" }%s\n", e.Name, e.Type, comma)
	}
	b.WriteString("  ]\n}\n")
	return b.String()
}

// NoteInfo is the JSON form of the ABI and manifest notes: the objects
// solo5-elftool query-abi and query-manifest print, under "abi" and
// "manifest".
type NoteInfo struct {
	ABI      ABINoteJSON      `json:"abi"`
	Manifest ManifestNoteJSON `json:"manifest"`
}

// ABINoteJSON is the object solo5-elftool query-abi prints.
type ABINoteJSON struct {
	Type    string `json:"type"` // always "solo5.abi"
	Target  string `json:"target"`
	Version uint32 `json:"version"`
}

// ManifestNoteJSON is the object solo5-elftool query-manifest prints.
type ManifestNoteJSON struct {
	Type    string           `json:"type"` // always "solo5.manifest"
	Version int              `json:"version"`
	Devices []DeviceNoteJSON `json:"devices"`
}

// DeviceNoteJSON is one device of ManifestNoteJSON.
type DeviceNoteJSON struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// NewNoteInfo returns the JSON form of info and entries, listing the same
// devices as QueryManifestText.
func NewNoteInfo(info ABIInfo, entries []ManifestEntry) NoteInfo {
	v := NoteInfo{
		ABI: ABINoteJSON{Type: "solo5.abi", Target: info.Target.String(), Version: info.Version},
		Manifest: ManifestNoteJSON{
			Type:    "solo5.manifest",
			Version: ManifestVersion,
			Devices: []DeviceNoteJSON{},
		},
	}
	for _, e := range entries {
		if e.Type >= DeviceReservedFirst {
			continue
		}
		v.Manifest.Devices = append(v.Manifest.Devices, DeviceNoteJSON{Name: e.Name, Type: e.Type.String()})
	}
	return v
}
