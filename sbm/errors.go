package sbm

import (
	"errors"
	"strings"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/internal/secpkg"
	"github.com/sbm-project/sbm/wire"
)

// codeOf maps a verifier or hardware error to its protocol code
// (docs/sbm.md, "Error mapping").
func codeOf(err error) wire.Code {
	var we *wire.Error
	switch {
	case errors.As(err, &we):
		return we.Code
	case errors.Is(err, secpkg.ErrRevoked):
		return wire.CodeRevoked
	case errors.Is(err, secpkg.ErrVendor), errors.Is(err, secpkg.ErrClass):
		return wire.CodeVendorClass
	case errors.Is(err, secpkg.ErrSignature), errors.Is(err, secpkg.ErrKeyCert),
		errors.Is(err, secpkg.ErrWrongRole), errors.Is(err, secpkg.ErrAlgorithm),
		errors.Is(err, secpkg.ErrContentType), errors.Is(err, secpkg.ErrRevocation):
		return wire.CodeSignature
	case errors.Is(err, secpkg.ErrNotRecipient), errors.Is(err, secpkg.ErrUnwrap):
		return wire.CodeNotRecipient
	case errors.Is(err, secpkg.ErrManifestMismatch):
		return wire.CodeManifestBinding
	case errors.Is(err, secpkg.ErrExpired), errors.Is(err, secpkg.ErrNotYetValid):
		return wire.CodeExpired
	case errors.Is(err, secpkg.ErrDigest):
		return wire.CodeDigest
	case errors.Is(err, secpkg.ErrChunk):
		return wire.CodeDecrypt
	case errors.Is(err, hal.ErrFlashFailure), errors.Is(err, hal.ErrNotErased),
		errors.Is(err, hal.ErrWriteProtected), errors.Is(err, hal.ErrFault):
		return wire.CodeFlash
	}
	var ce *secpkg.ChunkError
	if errors.As(err, &ce) {
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
