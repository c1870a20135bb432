package cose

import "github.com/sbm-project/sbm/internal/errs"

// Errors returned by this package.
var (
	// ErrMalformed means the message is not a well-formed tagged
	// COSE_Sign1 in the accepted CBOR subset.
	ErrMalformed = errs.New("cose: malformed COSE_Sign1")
	// ErrHeader means the protected header is not exactly {alg, content
	// type, kid} with the types of spec §3.
	ErrHeader = errs.New("cose: invalid protected header")
	// ErrAlg means an unsupported algorithm.
	ErrAlg = errs.New("cose: unsupported algorithm")
	// ErrKey means the public key or signer does not fit the algorithm.
	ErrKey = errs.New("cose: invalid key for algorithm")
	// ErrSignature means the signature does not verify.
	ErrSignature = errs.New("cose: signature verification failed")
	// ErrHighS means an ES256 signature whose s is above n/2, which the
	// format refuses even if it verifies (it is always returned wrapped
	// with ErrSignature).
	ErrHighS = errs.New("cose: ES256 signature is not low-S")
	// ErrNotFound means an unprotected header label is absent.
	ErrNotFound = errs.New("cose: header label not present")
)

// wrapError carries a package sentinel and the underlying cause (such as a
// cbor error); errors.Is matches both.
type wrapError struct {
	kind, cause error
}

func (e *wrapError) Error() string   { return e.kind.Error() + ": " + e.cause.Error() }
func (e *wrapError) Unwrap() []error { return []error{e.kind, e.cause} }

func wrap(kind, cause error) error {
	if cause == nil {
		return kind
	}
	return &wrapError{kind, cause}
}
