package sbm

import (
	"strings"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/internal/errs"
	"github.com/sbm-project/sbm/internal/secpkg"
	"github.com/sbm-project/sbm/wire"
)

// codeOf maps a verifier or hardware error to its protocol code
// (docs/sbm.md, "Error mapping").
func codeOf(err error) wire.Code {
	if we, ok := errs.As[*wire.Error](err); ok {
		return we.Code
	}
	switch {
	case errs.Is(err, secpkg.ErrRevoked):
		return wire.CodeRevoked
	case errs.Is(err, secpkg.ErrVendor), errs.Is(err, secpkg.ErrClass):
		return wire.CodeVendorClass
	case errs.Is(err, secpkg.ErrSignature), errs.Is(err, secpkg.ErrKeyCert),
		errs.Is(err, secpkg.ErrWrongRole), errs.Is(err, secpkg.ErrAlgorithm),
		errs.Is(err, secpkg.ErrContentType), errs.Is(err, secpkg.ErrRevocation):
		return wire.CodeSignature
	case errs.Is(err, secpkg.ErrNotRecipient), errs.Is(err, secpkg.ErrUnwrap):
		return wire.CodeNotRecipient
	case errs.Is(err, secpkg.ErrManifestMismatch):
		return wire.CodeManifestBinding
	case errs.Is(err, secpkg.ErrExpired), errs.Is(err, secpkg.ErrNotYetValid):
		return wire.CodeExpired
	case errs.Is(err, secpkg.ErrDigest):
		return wire.CodeDigest
	case errs.Is(err, secpkg.ErrChunk):
		return wire.CodeDecrypt
	case errs.Is(err, hal.ErrFlashFailure), errs.Is(err, hal.ErrNotErased),
		errs.Is(err, hal.ErrWriteProtected), errs.Is(err, hal.ErrFault):
		return wire.CodeFlash
	}
	if _, ok := errs.As[*secpkg.ChunkError](err); ok {
		return wire.CodeDecrypt
	}
	return wire.CodeFormat
}

// errText returns an error's message without a "secpkg: " prefix.
func errText(err error) string {
	return strings.TrimPrefix(err.Error(), "secpkg: ")
}

// innermost returns the last ": "-separated part of err's message: the
// most specific reason.
func innermost(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		return s[i+2:]
	}
	return s
}
