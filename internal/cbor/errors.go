package cbor

import "github.com/sbm-project/sbm/internal/errs"

// Errors returned by the decoder. Every decoding error is one of these.
var (
	// ErrTruncated means the input ends before the item does.
	ErrTruncated = errs.New("cbor: unexpected end of input")
	// ErrMalformed means the input is not well-formed CBOR (reserved
	// additional information, a bad simple value encoding, invalid UTF-8
	// in a text string, ...).
	ErrMalformed = errs.New("cbor: malformed item")
	// ErrIndefinite means an indefinite-length item or a break code.
	ErrIndefinite = errs.New("cbor: indefinite length not allowed")
	// ErrNotPreferred means an integer, length or tag was not encoded in
	// its shortest form.
	ErrNotPreferred = errs.New("cbor: value not in preferred (shortest) encoding")
	// ErrUnsupported means a floating-point value, undefined, or a simple
	// value other than false, true and null.
	ErrUnsupported = errs.New("cbor: unsupported item (float or simple value)")
	// ErrType means the next item has a different type than requested.
	ErrType = errs.New("cbor: unexpected item type")
	// ErrRange means an integer does not fit the requested range.
	ErrRange = errs.New("cbor: integer out of range")
	// ErrTooLarge means an array or map has more elements than allowed.
	ErrTooLarge = errs.New("cbor: too many elements")
	// ErrDepth means items are nested deeper than MaxDepth.
	ErrDepth = errs.New("cbor: nesting too deep")
	// ErrDuplicateKey means a map key occurs twice.
	ErrDuplicateKey = errs.New("cbor: duplicate map key")
	// ErrTrailing means bytes follow the item where none are allowed.
	ErrTrailing = errs.New("cbor: trailing data after item")
)
