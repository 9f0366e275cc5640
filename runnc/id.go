package runnc

import (
	"fmt"
	"unicode/utf8"
)

// MaxIDLength is the maximum length of a container ID in bytes. The ID is
// the name of the state directory <root>/<id> and, without a cgroupsPath,
// of the cgroup directory, so it must fit NAME_MAX, the 255-byte limit on
// one file name (limits.h).
//
// NOTE: runc itself has had no length limit since 2017, when it dropped
// its 1024-byte one, so runc accepts IDs of 256 to 1024 bytes that runnc
// rejects. runc fails on them later, when it creates the state directory.
const MaxIDLength = 255

// ValidateID checks a container ID against the rule of validateID in
// runc's libcontainer/factory_linux.go (runc 1.2.0 and the 1.5 development
// tree). The ID is not empty, and its bytes are ASCII letters, digits,
// '_', '+', '-' and '.'. It is not "." or "..", which would name the state
// root or its parent. With no '/' allowed, those two are the only IDs that
// runc's path-cleaning check rejects. runnc adds MaxIDLength.
func ValidateID(id string) error {
	if len(id) > MaxIDLength {
		return fmt.Errorf("invalid container ID %q...: %d bytes is longer than the maximum of %d", id[:32], len(id), MaxIDLength)
	}
	if id == "" || id == "." || id == ".." {
		return fmt.Errorf("invalid container ID %q: use 1 to %d letters, digits, '_', '+', '-' and '.', other than \".\" and \"..\"", id, MaxIDLength)
	}
	for i := 0; i < len(id); i++ {
		if !isIDByte(id[i]) {
			r, _ := utf8.DecodeRuneInString(id[i:])
			return fmt.Errorf("invalid container ID %q: character %q at byte %d is not allowed; use only letters, digits, '_', '+', '-' and '.'", id, r, i)
		}
	}
	return nil
}

func isIDByte(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	return b == '_' || b == '+' || b == '-' || b == '.'
}
