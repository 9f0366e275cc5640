package plan

import (
	"errors"
	"fmt"
)

// ErrHelp is returned by ParseArgs for --help or -h.
var ErrHelp = errors.New("help requested")

// ErrVersion is returned by ParseArgs for --version. The upstream
// tenders print their version and ABI version for it.
var ErrVersion = errors.New("version requested")

// UsageError is a mistake on the command line: a malformed option, or a
// device flag that does not match the unikernel's manifest. The upstream
// tenders exit with status 1 for these.
type UsageError struct {
	Msg string
	Err error // the underlying error, if any
}

func (e *UsageError) Error() string { return e.Msg }

func (e *UsageError) Unwrap() error { return e.Err }

func usageErrorf(format string, args ...any) *UsageError {
	err := fmt.Errorf(format, args...)
	return &UsageError{Msg: err.Error(), Err: errors.Unwrap(err)}
}

// invalidOption returns a UsageError for arg with the upstream phrase
// "Invalid option" and the reason.
func invalidOption(arg, reason string) *UsageError {
	return &UsageError{Msg: fmt.Sprintf("Invalid option: '%s': %s", arg, reason)}
}
