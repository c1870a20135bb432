package secpkg

import (
	"errors"
	"strconv"
	"strings"
)

// Sentinel errors. Every error returned by this package matches (errors.Is)
// at least one of them.
var (
	ErrMalformed        = errors.New("secpkg: malformed structure")
	ErrUnknownCritical  = errors.New("secpkg: unknown critical field")
	ErrTooLarge         = errors.New("secpkg: size limit exceeded")
	ErrVersion          = errors.New("secpkg: unsupported format version")
	ErrAlgorithm        = errors.New("secpkg: algorithm does not match the suite")
	ErrSignature        = errors.New("secpkg: signature verification failed")
	ErrKeyCert          = errors.New("secpkg: invalid key certificate")
	ErrWrongRole        = errors.New("secpkg: key certificate has the wrong role")
	ErrRevoked          = errors.New("secpkg: signing key revoked (key epoch below the device's)")
	ErrRevocation       = errors.New("secpkg: invalid revocation statement")
	ErrRootTransition   = errors.New("secpkg: invalid root transition statement")
	ErrVendor           = errors.New("secpkg: vendor id mismatch")
	ErrClass            = errors.New("secpkg: class id mismatch")
	ErrContentType      = errors.New("secpkg: wrong content type")
	ErrNotRecipient     = errors.New("secpkg: not the recipient of this upk")
	ErrManifestMismatch = errors.New("secpkg: upk is bound to another manifest")
	ErrNotYetValid      = errors.New("secpkg: upk not yet valid")
	ErrExpired          = errors.New("secpkg: upk expired")
	ErrUnwrap           = errors.New("secpkg: key unwrap failed")
	ErrChunk            = errors.New("secpkg: authentication failed")
	ErrTruncated        = errors.New("secpkg: truncated")
	ErrTrailingData     = errors.New("secpkg: trailing data")
	ErrDigest           = errors.New("secpkg: payload digest mismatch")
)

// msg returns an error's message without the package prefix.
func msg(err error) string {
	s := err.Error()
	if i := strings.Index(s, ": "); i >= 0 && !strings.Contains(s[:i], " ") {
		return s[i+2:] // drop a "pkg: " prefix
	}
	return s
}

// wrapError pairs a sentinel (kind) with the underlying cause.
type wrapError struct {
	kind, cause error
}

func (e *wrapError) Error() string   { return e.kind.Error() + ": " + msg(e.cause) }
func (e *wrapError) Unwrap() []error { return []error{e.kind, e.cause} }

// wrap returns kind annotated with cause; errors.Is matches both.
func wrap(kind, cause error) error {
	if cause == nil || cause == kind {
		return kind
	}
	return &wrapError{kind, cause}
}

// A FieldError reports a decoding failure of one field of a structure, for
// example "secpkg: manifest: field 6 (payload-size): value out of range".
type FieldError struct {
	Struct string // "manifest", "upk", "keycert", "encryption", "recipient", ...
	Key    int64  // the map key of the field
	Name   string // the field name of the spec, or "" for an unknown key
	Kind   error  // the sentinel: ErrMalformed, ErrUnknownCritical, ErrVersion, ...
	Err    error  // the cause, or nil
}

func (e *FieldError) Error() string {
	s := "secpkg: " + e.Struct + ": field " + strconv.FormatInt(e.Key, 10)
	if e.Name != "" {
		s += " (" + e.Name + ")"
	}
	if e.Err != nil {
		return s + ": " + msg(e.Err)
	}
	return s + ": " + msg(e.Kind)
}

// Unwrap returns the sentinel and the cause.
func (e *FieldError) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// A ChunkError reports the failure of chunk Index (0-based, the i of spec
// §6) of a payload of Count chunks.
type ChunkError struct {
	Index int
	Count int
	Err   error // ErrChunk, ErrTruncated or ErrTrailingData
}

func (e *ChunkError) Error() string {
	return "secpkg: chunk " + strconv.Itoa(e.Index) + " of " + strconv.Itoa(e.Count) + ": " + msg(e.Err)
}

// Unwrap returns the cause.
func (e *ChunkError) Unwrap() error { return e.Err }

// Detail causes used in wrapped errors.
var (
	errMissing        = errors.New("missing")
	errRange          = errors.New("value out of range")
	errSize           = errors.New("wrong size")
	errType           = errors.New("wrong type")
	errDuplicate      = errors.New("duplicate key")
	errNotInteger     = errors.New("key is not an integer")
	errMagic          = errors.New("bad magic")
	errRecordType     = errors.New("unknown record type")
	errRecordOrder    = errors.New("record out of order")
	errReserved       = errors.New("non-zero flags or reserved bytes")
	errNoKeyCert      = errors.New("no key certificate in unprotected header")
	errKID            = errors.New("kid does not match the signing key")
	errPoint          = errors.New("invalid ephemeral public key")
	errCurve          = errors.New("ephemeral key is not on the recipient's curve")
	errEphemeralLabel = errors.New("recipient unprotected header is not exactly {-1: ephemeral key}")
	errDeviceID       = errors.New("device id does not match")
	errEscrow         = errors.New("an escrow upk is never for a device")
	errKeyID          = errors.New("key id does not match")
	errChunkLen       = errors.New("wrong chunk length")
)
