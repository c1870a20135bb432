package apphost

import (
	"errors"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/wire"
)

// Result codes of the host functions (docs/spec/services.md). A host
// function returns 0 or a non-negative length on success and the negated
// code on failure. Codes 1 to 99 are the SBM's protocol codes (wire.Code)
// passed through from the services; codes from 100 are the runtime's own.
const (
	// CodeBadPointer: a pointer and length do not lie inside the module's
	// memory.
	CodeBadPointer int32 = 100
	// CodeBadArgument: a value is out of its range (an offset or length
	// outside the staging slot, a nonce of the wrong size, a too long URL).
	CodeBadArgument int32 = 101
	// CodeUnavailable: the SBM offers no runtime services to this
	// application.
	CodeUnavailable int32 = 102
	// CodeDenied: the URL's scheme or host is not allowed.
	CodeDenied int32 = 103
	// CodeNetwork: the HTTP request failed (connection, timeout, body).
	CodeNetwork int32 = 104
	// CodeHTTPStatus: the server answered with a status other than 200.
	CodeHTTPStatus int32 = 105
	// CodeBadHandle: the fetch handle is not open, or too many are open.
	CodeBadHandle int32 = 106
	// CodeHostInternal: the runtime failed unexpectedly; the call had no
	// effect the application can rely on.
	CodeHostInternal int32 = 107
)

// codeOf maps an error from the services to its positive result code.
func codeOf(err error) int32 {
	var we *wire.Error
	switch {
	case errors.As(err, &we) && we.Code != wire.CodeOK:
		return int32(we.Code)
	case errors.Is(err, hal.ErrOutOfRange), errors.Is(err, hal.ErrMisaligned):
		return CodeBadArgument
	case errors.Is(err, hal.ErrFlashFailure), errors.Is(err, hal.ErrNotErased),
		errors.Is(err, hal.ErrWriteProtected), errors.Is(err, hal.ErrFault):
		return int32(wire.CodeFlash)
	}
	return int32(wire.CodeInternal)
}

// codeTooLarge is wire.CodeTooLarge: a fetched body exceeds the limit.
const codeTooLarge = wire.CodeTooLarge
