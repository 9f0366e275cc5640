package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// jsonKind is the type of a JSON value, named as solo5-elftool names it
// in its messages.
type jsonKind int

const (
	jsonObject jsonKind = iota
	jsonArray
	jsonString
	jsonInteger
	jsonReal
	jsonBoolean
	jsonNull
)

func (k jsonKind) String() string {
	return [...]string{"OBJECT", "ARRAY", "STRING", "INTEGER", "REAL", "BOOLEAN", "NULL"}[k]
}

// jsonValue is a parsed JSON value together with its source line, which
// solo5-elftool puts in its messages and encoding/json does not keep.
type jsonValue struct {
	kind     jsonKind
	line     int
	text     string       // string contents, or a number as written
	members  []jsonMember // object members in document order
	elements []*jsonValue // array elements
}

// jsonMember is one key of an object, with the line of the key.
type jsonMember struct {
	key   string
	line  int
	value *jsonValue
}

// member returns the last member named key, because a later duplicate
// key replaces an earlier one, or nil.
func (v *jsonValue) member(key string) *jsonMember {
	for i := len(v.members) - 1; i >= 0; i-- {
		if v.members[i].key == key {
			return &v.members[i]
		}
	}
	return nil
}

// jsonReader builds jsonValue trees from the token stream of
// encoding/json, which also does all syntax checking.
type jsonReader struct {
	data    []byte
	decoder *json.Decoder
}

// parseJSON parses data as exactly one JSON value.
func parseJSON(data []byte) (*jsonValue, error) {
	r := &jsonReader{data: data, decoder: json.NewDecoder(bytes.NewReader(data))}
	r.decoder.UseNumber()
	v, err := r.value()
	if err != nil {
		return nil, err
	}
	if _, err := r.decoder.Token(); err != io.EOF {
		return nil, fmt.Errorf("line %d: unexpected data after the top-level value", r.nextLine())
	}
	return v, nil
}

// nextLine returns the line on which the next token starts: past the
// decoder's position, whitespace and the separators ',' and ':'.
func (r *jsonReader) nextLine() int {
	offset := int(r.decoder.InputOffset())
	for offset < len(r.data) && strings.IndexByte(" \t\r\n,:", r.data[offset]) >= 0 {
		offset++
	}
	return 1 + bytes.Count(r.data[:offset], []byte("\n"))
}

func (r *jsonReader) token() (json.Token, int, error) {
	line := r.nextLine()
	token, err := r.decoder.Token()
	if err == io.EOF {
		return nil, line, fmt.Errorf("line %d: unexpected end of input", line)
	}
	if err != nil {
		return nil, line, fmt.Errorf("line %d: %w", line, err)
	}
	return token, line, nil
}

func (r *jsonReader) value() (*jsonValue, error) {
	token, line, err := r.token()
	if err != nil {
		return nil, err
	}
	return r.valueFrom(token, line)
}

func (r *jsonReader) valueFrom(token json.Token, line int) (*jsonValue, error) {
	switch t := token.(type) {
	case json.Delim:
		if t == '{' {
			return r.object(line)
		}
		return r.array(line)
	case string:
		return &jsonValue{kind: jsonString, line: line, text: t}, nil
	case json.Number:
		kind := jsonInteger
		if strings.ContainsAny(string(t), ".eE") {
			kind = jsonReal
		}
		return &jsonValue{kind: kind, line: line, text: string(t)}, nil
	case bool:
		return &jsonValue{kind: jsonBoolean, line: line}, nil
	default:
		return &jsonValue{kind: jsonNull, line: line}, nil
	}
}

func (r *jsonReader) object(line int) (*jsonValue, error) {
	v := &jsonValue{kind: jsonObject, line: line}
	for r.decoder.More() {
		token, keyLine, err := r.token()
		if err != nil {
			return nil, err
		}
		key, ok := token.(string)
		if !ok {
			return nil, fmt.Errorf("line %d: expected a string key", keyLine)
		}
		value, err := r.value()
		if err != nil {
			return nil, err
		}
		v.members = append(v.members, jsonMember{key: key, line: keyLine, value: value})
	}
	if _, _, err := r.token(); err != nil { // '}'
		return nil, err
	}
	return v, nil
}

func (r *jsonReader) array(line int) (*jsonValue, error) {
	v := &jsonValue{kind: jsonArray, line: line}
	for r.decoder.More() {
		element, err := r.value()
		if err != nil {
			return nil, err
		}
		v.elements = append(v.elements, element)
	}
	if _, _, err := r.token(); err != nil { // ']'
		return nil, err
	}
	return v, nil
}
