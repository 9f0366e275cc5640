package runnc

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateIDAccepts(t *testing.T) {
	for _, id := range []string{
		"a", "0", "A_b+c-d.e", "...", "a..b", ".hidden", "-",
		strings.Repeat("x", MaxIDLength),
	} {
		if err := ValidateID(id); err != nil {
			t.Errorf("ValidateID(%q): %v", id, err)
		}
	}
}

func TestValidateIDRejects(t *testing.T) {
	cases := []struct {
		id   string
		want string
	}{
		{"", `invalid container ID ""`},
		{".", `invalid container ID "."`},
		{"..", `invalid container ID ".."`},
		{"a/b", `character '/' at byte 1`},
		{"/a", `character '/' at byte 0`},
		{"../x", `character '/' at byte 2`},
		{"a,b", `character ',' at byte 1`},
		{"a b", `character ' ' at byte 1`},
		{"a\nb", `character '\n' at byte 1`},
		{"a\x00", `character '\x00' at byte 1`},
		{"café", `character 'é' at byte 3`},
		{strings.Repeat("x", MaxIDLength+1), "256 bytes is longer than the maximum of 255"},
	}
	for _, c := range cases {
		err := ValidateID(c.id)
		if err == nil {
			t.Errorf("ValidateID(%q) accepted", c.id)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("ValidateID(%q): message %q lacks %q", c.id, err, c.want)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("ValidateID(%q): message %q has more than one line", c.id, err)
		}
	}
}

// Every verb reads the ID through loadContainer, so an invalid ID never
// becomes a path.
func TestLoadRejectsInvalidID(t *testing.T) {
	rt := &Runtime{Root: t.TempDir()}
	for _, id := range []string{"..", "../x", strings.Repeat("x", MaxIDLength+1)} {
		if _, err := rt.Load(id); err == nil || !strings.Contains(err.Error(), "invalid container ID") {
			t.Errorf("Load(%q): error %v, want an invalid ID", id, err)
		}
		if err := rt.Delete(id, true); err == nil || !strings.Contains(err.Error(), "invalid container ID") {
			t.Errorf("Delete(%q, force): error %v, want an invalid ID", id, err)
		}
	}
}

func TestCreateRejectsInvalidIDFirst(t *testing.T) {
	root := filepath.Join(t.TempDir(), "state")
	rt := &Runtime{Root: root}
	_, err := rt.Create("../escape", t.TempDir(), CreateOptions{})
	if err == nil || !strings.Contains(err.Error(), "invalid container ID") {
		t.Errorf("error %v, want an invalid ID", err)
	}
	if _, err := os.Stat(root); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the state root exists after the rejected create: %v", err)
	}
}
