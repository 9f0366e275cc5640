package abi

import "errors"

// Error kinds. A *FormatError unwraps to exactly one of them, so callers
// match a rejection with errors.Is. The messages of the first five follow
// the Solo5 tenders, so that scripts grepping for those strings keep
// working.
var (
	// ErrInvalidExecutable covers every ELF header, program header, segment
	// and note size problem.
	ErrInvalidExecutable = errors.New("invalid executable")
	// ErrNoABINote means no PT_NOTE holds a Solo5 ABI1 note.
	//lint:ignore ST1005 the Solo5 tenders print this capitalized message
	ErrNoABINote = errors.New("No Solo5 ABI information found in executable")
	// ErrNoManifest means no PT_NOTE holds a Solo5 MFT1 note.
	//lint:ignore ST1005 the Solo5 tenders print this capitalized message
	ErrNoManifest = errors.New("No Solo5 manifest found in executable")
	// ErrInvalidManifest means the MFT1 note was found but its contents
	// are malformed or use a device type, name or count ntender rejects.
	ErrInvalidManifest = errors.New("Solo5 manifest is invalid")
	// ErrUnsupportedABIVersion means an hvt or spt binary requests an ABI
	// version other than 1 or 2.
	//lint:ignore ST1005 the Solo5 tenders print this capitalized message
	ErrUnsupportedABIVersion = errors.New("Executable requests unsupported ABI version")
	// ErrUnsupportedTarget means the binary is built for a Solo5 target
	// other than hvt and spt. Parse accepts such files, Load rejects them.
	ErrUnsupportedTarget = errors.New("unsupported Solo5 ABI target")
	// ErrDoesNotFit means the binary is valid but its entry point or a
	// segment lies outside the guest memory size given to CheckFits.
	ErrDoesNotFit = errors.New("executable does not fit in guest memory")
)

// FormatError is a rejection of a unikernel file.
//
// Error returns one line, "Path: Reason". Reason starts with the phrase
// the Solo5 tenders print for the same problem (for example "invalid
// executable: ..." or "Solo5 manifest is invalid: ...").
type FormatError struct {
	Path string
	// Kind is one of the Err* values of this package.
	Kind error
	// Field names the offending field, as in the ELF specification or the
	// Solo5 headers: "e_machine", "phdr[2].p_vaddr", "ABI1.abi_version",
	// "manifest.e[3].name". It is empty when no single field is at fault.
	Field string
	// Value is the offending numeric value of Field, or 0 when the field is
	// not a number.
	Value uint64
	// Reason is the full message after the path.
	Reason string
}

// Error returns the message in the form "path: reason".
func (e *FormatError) Error() string {
	return e.Path + ": " + e.Reason
}

// Unwrap returns Kind so that errors.Is matches the error kind.
func (e *FormatError) Unwrap() error {
	return e.Kind
}
