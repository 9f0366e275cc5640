package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
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

// parseManifest validates a manifest in the solo5-elftool JSON format and
// returns its devices in order. The checks and their order follow
// solo5-elftool gen-manifest (Solo5 v0.7.1 to v0.12.1). The one addition
// is that an unknown device type is rejected here, where elftool leaves it
// to the C compiler.
func parseManifest(data []byte) ([]device, error) {
	var root map[string]json.RawMessage
	if err := decodeStrict(data, &root); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if root == nil {
		return nil, errors.New("invalid JSON: expected an object")
	}

	keys := make([]string, 0, len(root))
	for key := range root {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		if key != "type" && key != "version" && key != "devices" {
			return nil, fmt.Errorf("unknown key %q", key)
		}
	}
	for _, key := range []string{"type", "version", "devices"} {
		if _, ok := root[key]; !ok {
			if key == "devices" {
				return nil, errors.New("missing .devices[]")
			}
			return nil, fmt.Errorf("missing .%s", key)
		}
	}

	var typ string
	if err := json.Unmarshal(root["type"], &typ); err != nil || typ != "solo5.manifest" {
		return nil, errors.New(`.type: invalid value, expected "solo5.manifest"`)
	}

	var version float64
	if err := json.Unmarshal(root["version"], &version); err != nil {
		return nil, fmt.Errorf(".version: invalid version %s, expected %d",
			bytes.TrimSpace(root["version"]), manifestVersion)
	}
	if version != manifestVersion {
		return nil, fmt.Errorf(".version: invalid version %s, expected %d",
			formatNumber(version), manifestVersion)
	}

	var entries []json.RawMessage
	if err := json.Unmarshal(root["devices"], &entries); err != nil || entries == nil {
		return nil, errors.New(".devices[]: expected an array")
	}
	if len(entries) > maxDevices {
		return nil, fmt.Errorf(".devices[]: too many entries, maximum %d", maxDevices)
	}

	devices := make([]device, 0, len(entries))
	for i, raw := range entries {
		d, err := parseDevice(raw)
		if err != nil {
			return nil, fmt.Errorf(".devices[%d]: %w", i, err)
		}
		devices = append(devices, d)
	}
	return devices, nil
}

func parseDevice(raw json.RawMessage) (device, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return device{}, errors.New("expected an object")
	}
	keys := make([]string, 0, len(fields))
	for key := range fields {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		if key != "name" && key != "type" {
			return device{}, fmt.Errorf("unknown key %q", key)
		}
	}

	rawName, ok := fields["name"]
	if !ok {
		return device{}, errors.New("missing .name")
	}
	var name string
	if err := json.Unmarshal(rawName, &name); err != nil {
		return device{}, errors.New(".name: expected a string")
	}
	if name == "" {
		return device{}, errors.New(".name may not be empty")
	}
	if len(name) > maxNameLength {
		return device{}, fmt.Errorf(".name %q: name too long, maximum %d characters",
			name, maxNameLength)
	}
	if !isAlphanumeric(name) {
		return device{}, fmt.Errorf(".name %q: name is not alphanumeric", name)
	}

	rawType, ok := fields["type"]
	if !ok {
		return device{}, errors.New("missing .type")
	}
	var typeName string
	if err := json.Unmarshal(rawType, &typeName); err != nil {
		return device{}, errors.New(".type: expected a string")
	}
	typ, ok := deviceTypes[typeName]
	if !ok {
		return device{}, fmt.Errorf(".type: unknown device type %q, expected BLOCK_BASIC or NET_BASIC",
			typeName)
	}
	return device{name: name, typ: typ}, nil
}

// decodeStrict decodes exactly one JSON value and rejects trailing data.
func decodeStrict(data []byte, v any) error {
	decoder := json.NewDecoder(bytes.NewReader(data))
	if err := decoder.Decode(v); err != nil {
		return err
	}
	if decoder.More() {
		return errors.New("unexpected data after the top-level value")
	}
	return nil
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

func formatNumber(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return fmt.Sprintf("%d", int64(f))
	}
	return fmt.Sprintf("%g", f)
}
