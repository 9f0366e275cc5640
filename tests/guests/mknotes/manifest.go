package main

import (
	"fmt"
	"strconv"
)

// Limits of the Solo5 manifest format version 1.
const (
	manifestVersion = 1
	maxDevices      = 63 // 64 entries, of which entry 0 is reserved
	maxNameLength   = 67 // the name field is 68 bytes with the NUL
)

// Device types, numbered as in the MFT1 note.
const (
	deviceBlockBasic    = 1
	deviceNetBasic      = 2
	deviceReservedFirst = 0x40000000
)

var deviceTypes = map[string]uint32{
	"BLOCK_BASIC": deviceBlockBasic,
	"NET_BASIC":   deviceNetBasic,
}

// device is one user entry of a manifest.
type device struct {
	name string
	typ  uint32
}

// manifestError is a manifest validation failure at a line of the JSON
// source. Its text is "LINE: PATH: problem", as solo5-elftool prints it
// after the file name.
type manifestError struct {
	line int
	text string
}

func (e *manifestError) Error() string {
	return fmt.Sprintf("%d: %s", e.line, e.text)
}

func invalid(line int, format string, args ...any) error {
	return &manifestError{line: line, text: fmt.Sprintf(format, args...)}
}

// parseManifest validates a manifest in the solo5-elftool JSON format and
// returns its devices in order. The rules, their order and the messages
// follow solo5-elftool gen-manifest of Solo5 v0.12.1, as observed by
// running it. Three differences are deliberate. The JSON syntax is
// checked strictly, where elftool also accepts missing and trailing
// commas. An unknown device type is rejected here rather than by the C
// compiler. A version too large for 64 bits is reported as written.
func parseManifest(data []byte) ([]device, error) {
	root, err := parseJSON(data)
	if err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	// elftool reports problems with the root object itself at line 1.
	const rootLine = 1
	if root.kind != jsonObject {
		return nil, invalid(rootLine, "(root): expected OBJECT, got %v", root.kind)
	}
	for _, m := range root.members {
		if m.key != "type" && m.key != "version" && m.key != "devices" {
			return nil, invalid(m.line, "(root): unknown key: %s", m.key)
		}
	}
	typ, version, devices := root.member("type"), root.member("version"), root.member("devices")
	switch {
	case typ == nil:
		return nil, invalid(rootLine, "missing .type")
	case version == nil:
		return nil, invalid(rootLine, "missing .version")
	case devices == nil:
		return nil, invalid(rootLine, "missing .devices[]")
	}

	if typ.value.kind != jsonString {
		return nil, invalid(typ.line, ".type: expected STRING, got %v", typ.value.kind)
	}
	if typ.value.text != "solo5.manifest" {
		return nil, invalid(typ.line, `.type: invalid value, expected "solo5.manifest"`)
	}

	if version.value.kind != jsonInteger {
		return nil, invalid(version.line, ".version: expected INTEGER, got %v", version.value.kind)
	}
	if n, err := strconv.ParseInt(version.value.text, 10, 64); err != nil || n != manifestVersion {
		return nil, invalid(version.line, ".version: invalid version %s, expected %d",
			version.value.text, manifestVersion)
	}

	if devices.value.kind != jsonArray {
		return nil, invalid(devices.line, ".devices: expected ARRAY, got %v", devices.value.kind)
	}
	if len(devices.value.elements) > maxDevices {
		return nil, invalid(devices.line, ".devices[]: too many entries, maximum %d", maxDevices)
	}
	result := make([]device, 0, len(devices.value.elements))
	for _, element := range devices.value.elements {
		d, err := parseDevice(element)
		if err != nil {
			return nil, err
		}
		result = append(result, d)
	}
	return result, nil
}

func parseDevice(v *jsonValue) (device, error) {
	if v.kind != jsonObject {
		return device{}, invalid(v.line, ".devices[]: expected OBJECT, got %v", v.kind)
	}
	for _, m := range v.members {
		if m.key != "name" && m.key != "type" {
			return device{}, invalid(m.line, ".devices[...]: unknown key: %s", m.key)
		}
	}

	name := v.member("name")
	if name == nil {
		return device{}, invalid(v.line, ".devices[...]: missing .name")
	}
	if name.value.kind != jsonString {
		return device{}, invalid(name.line, ".devices[...]: expected STRING, got %v", name.value.kind)
	}
	switch text := name.value.text; {
	case text == "":
		return device{}, invalid(name.line, ".devices[...]: .name may not be empty")
	case len(text) > maxNameLength:
		return device{}, invalid(name.line, ".devices[...]: name too long")
	case !isAlphanumeric(text):
		return device{}, invalid(name.line, ".devices[...]: name is not alphanumeric")
	}

	typ := v.member("type")
	if typ == nil {
		return device{}, invalid(v.line, ".devices[...]: missing .type")
	}
	if typ.value.kind != jsonString {
		return device{}, invalid(typ.line, ".devices[...]: expected STRING, got %v", typ.value.kind)
	}
	number, ok := deviceTypes[typ.value.text]
	if !ok {
		return device{}, invalid(typ.line, `.devices[...]: invalid type %q, expected "BLOCK_BASIC" or "NET_BASIC"`,
			typ.value.text)
	}
	return device{name: name.value.text, typ: number}, nil
}

func isAlphanumeric(s string) bool {
	for _, c := range []byte(s) {
		isDigit := c >= '0' && c <= '9'
		isLetter := (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if !isDigit && !isLetter {
			return false
		}
	}
	return true
}
