package abi

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// ManifestEntry is one struct mft_entry as stored in the MFT1 note.
type ManifestEntry struct {
	Name string
	Type DeviceType
}

// String returns the type name the Solo5 tools print.
func (t DeviceType) String() string {
	switch t {
	case DeviceBlockBasic:
		return "BLOCK_BASIC"
	case DeviceNetBasic:
		return "NET_BASIC"
	case DeviceReservedFirst:
		return "RESERVED_FIRST"
	}
	return "<undefined type>"
}

// readManifestNote finds the MFT1 note and decodes it with the checks of
// the Solo5 tenders' mft_validate. The returned entries include the
// reserved entry 0.
func readManifestNote(path string, data []byte, phdrs []programHeader) ([]ManifestEntry, error) {
	payload, found, err := findNote(path, data, phdrs, NoteTypeManifest,
		manifestAlign, ManifestHeaderSize, manifestMaxSize)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, &FormatError{Path: path, Kind: ErrNoManifest, Reason: ErrNoManifest.Error()}
	}
	return decodeManifest(path, payload)
}

// decodeManifest decodes struct mft, applying the checks of mft_validate
// in its order. findNote has already ensured len(payload) >= 8.
func decodeManifest(path string, payload []byte) ([]ManifestEntry, error) {
	le := binary.LittleEndian
	if v := le.Uint32(payload[0:]); v != ManifestVersion {
		return nil, invalidManifest(path, "manifest.version", uint64(v),
			"version is %d, expected %d", v, ManifestVersion)
	}
	n := le.Uint32(payload[4:])
	if n > ManifestMaxEntries {
		return nil, invalidManifest(path, "manifest.entries", uint64(n),
			"%d entries, the maximum is %d including the reserved entry (%d devices)",
			n, ManifestMaxEntries, ManifestMaxEntries-1)
	}
	want := ManifestHeaderSize + uint64(n)*ManifestEntrySize
	if uint64(len(payload)) != want {
		return nil, invalidManifest(path, "manifest.entries", uint64(n),
			"%d entries need %d bytes, but the note holds %d", n, want, len(payload))
	}
	if n < 1 {
		return nil, invalidManifest(path, "manifest.entries", 0,
			"no entries, expected at least the reserved entry 0")
	}
	entries := make([]ManifestEntry, n)
	for i := range entries {
		e := payload[ManifestHeaderSize+i*ManifestEntrySize:][:ManifestEntrySize]
		name := e[EntryName : EntryName+ManifestNameSize]
		if name[ManifestNameSize-1] != 0 {
			return nil, invalidManifest(path, fmt.Sprintf("manifest.e[%d].name", i), 0,
				"name of entry %d is not NUL-terminated within %d bytes", i, ManifestNameSize)
		}
		if a := e[EntryAttached]; a != 0 {
			return nil, invalidManifest(path, fmt.Sprintf("manifest.e[%d].attached", i), uint64(a),
				"entry %d is marked attached in the file", i)
		}
		entries[i] = ManifestEntry{
			Name: string(name[:bytes.IndexByte(name, 0)]),
			Type: DeviceType(le.Uint32(e[EntryType:])),
		}
	}
	if entries[0].Type != DeviceReservedFirst || entries[0].Name != "" {
		return nil, invalidManifest(path, "manifest.e[0].type", uint64(entries[0].Type),
			"entry 0 is not the reserved entry (type %#x, name %q)", uint32(entries[0].Type), entries[0].Name)
	}
	return entries, nil
}

// checkDevices applies the rules ntender adds to mft_validate: every entry
// after 0 is BLOCK_BASIC or NET_BASIC, and names are non-empty, at most 67
// bytes of [A-Za-z0-9], and unique. solo5-elftool gen-manifest enforces
// the name rules on its input but does not check for duplicates. The
// Solo5 tenders look entries up by name and type and take the first
// match, so a second entry with the same name and type can never be
// attached. Names that differ only in type are rejected as well, because
// --block:NAME and --net:NAME share one name space on the command line.
func checkDevices(path string, entries []ManifestEntry) ([]Device, error) {
	devices := make([]Device, 0, len(entries)-1)
	seen := make(map[string]int, len(entries))
	for i, e := range entries[1:] {
		index := i + 1
		field := fmt.Sprintf("manifest.e[%d]", index)
		if e.Type != DeviceBlockBasic && e.Type != DeviceNetBasic {
			return nil, invalidManifest(path, field+".type", uint64(e.Type),
				"entry %d (%q) has type %#x, expected BLOCK_BASIC (1) or NET_BASIC (2)",
				index, e.Name, uint32(e.Type))
		}
		if e.Name == "" {
			return nil, invalidManifest(path, field+".name", 0, "entry %d has an empty name", index)
		}
		if !isAlphanumeric(e.Name) {
			return nil, invalidManifest(path, field+".name", 0,
				"name %q of entry %d is not alphanumeric", e.Name, index)
		}
		if prev, ok := seen[e.Name]; ok {
			return nil, invalidManifest(path, field+".name", 0,
				"name %q of entry %d is already used by entry %d", e.Name, index, prev)
		}
		seen[e.Name] = index
		devices = append(devices, Device{Index: index, Name: e.Name, Type: e.Type})
	}
	return devices, nil
}

// isAlphanumeric reports whether s is made of ASCII letters and digits only.
func isAlphanumeric(s string) bool {
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// ReadManifest returns the manifest entries of an ELF file, including the
// reserved entry 0, applying only the checks of solo5-elftool
// query-manifest: a valid ELF header and program header table, a
// well-formed note, and the tenders' manifest validation. It accepts
// binaries of every target, unknown entry types and names that ntender's
// stricter Parse rejects.
func ReadManifest(path string, data []byte) ([]ManifestEntry, error) {
	_, phdrs, err := parseHeaders(path, data)
	if err != nil {
		return nil, err
	}
	return readManifestNote(path, data, phdrs)
}

// invalidManifest returns a *FormatError of kind ErrInvalidManifest.
func invalidManifest(path, field string, value uint64, format string, args ...any) error {
	return &FormatError{
		Path:   path,
		Kind:   ErrInvalidManifest,
		Field:  field,
		Value:  value,
		Reason: ErrInvalidManifest.Error() + ": " + fmt.Sprintf(format, args...),
	}
}

// Attachment is the host side of one attached device: the values the
// tender fills into its manifest entry. Block fields apply to BLOCK_BASIC
// entries and net fields to NET_BASIC entries. MarshalManifest ignores the
// others.
type Attachment struct {
	// Capacity is the block device size in bytes.
	Capacity uint64
	// BlockSize is the sector size in bytes (512 unless set).
	BlockSize uint16
	// MAC is the guest's Ethernet address.
	MAC [6]byte
	// MTU excludes the 14-byte Ethernet header.
	MTU uint16
	// HostFD is the host file descriptor of the backing file or tap.
	// spt guests pass it to read, write, pread64 and pwrite64, and hvt
	// guests ignore it.
	HostFD int
}

// ManifestSize returns the size in bytes of the struct mft that
// MarshalManifest returns.
func (u *Unikernel) ManifestSize() int {
	return ManifestHeaderSize + u.ManifestEntries*ManifestEntrySize
}

// MarshalManifest returns the struct mft the tender copies into guest
// memory: version 1, the reserved entry 0, then one entry per device.
// Entries whose index is a key of att are marked attached and filled with
// its values. Name bytes after the NUL are zero, unlike the file's note,
// which the Solo5 tenders copy verbatim.
func (u *Unikernel) MarshalManifest(att map[int]Attachment) []byte {
	out := make([]byte, u.ManifestSize())
	le := binary.LittleEndian
	le.PutUint32(out[ManifestVersionOffset:], ManifestVersion)
	le.PutUint32(out[ManifestEntriesOffset:], uint32(u.ManifestEntries))
	entry := func(i int) []byte {
		return out[ManifestHeaderSize+i*ManifestEntrySize:][:ManifestEntrySize]
	}
	le.PutUint32(entry(0)[EntryType:], uint32(DeviceReservedFirst))

	for _, d := range u.Devices {
		e := entry(d.Index)
		copy(e[EntryName:EntryName+ManifestNameSize-1], d.Name)
		le.PutUint32(e[EntryType:], uint32(d.Type))
		a, ok := att[d.Index]
		if !ok {
			continue
		}
		switch d.Type {
		case DeviceBlockBasic:
			le.PutUint64(e[EntryBlockCapacity:], a.Capacity)
			le.PutUint16(e[EntryBlockSize:], a.BlockSize)
		case DeviceNetBasic:
			copy(e[EntryNetMAC:EntryNetMAC+6], a.MAC[:])
			le.PutUint16(e[EntryNetMTU:], a.MTU)
		}
		// The C field is an int in a union with a pointer, so the upper
		// four bytes stay zero.
		le.PutUint32(e[EntryHostFd:], uint32(int32(a.HostFD)))
		e[EntryAttached] = 1
	}
	return out
}
