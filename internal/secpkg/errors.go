package secpkg

import (
	"strconv"
	"strings"

	"github.com/sbm-project/sbm/internal/errs"
)

// Sentinel errors. Every error returned by this package matches (errors.Is)
// at least one of them.
var (
	ErrMalformed        = errs.New("secpkg: malformed structure")
	ErrUnknownCritical  = errs.New("secpkg: unknown critical field")
	ErrTooLarge         = errs.New("secpkg: size limit exceeded")
	ErrVersion          = errs.New("secpkg: unsupported format version")
	ErrAlgorithm        = errs.New("secpkg: algorithm does not match the suite")
	ErrSignature        = errs.New("secpkg: signature verification failed")
	ErrKeyCert          = errs.New("secpkg: invalid key certificate")
	ErrWrongRole        = errs.New("secpkg: key certificate has the wrong role")
	ErrRevoked          = errs.New("secpkg: signing key revoked (key epoch below the device's)")
	ErrRevocation       = errs.New("secpkg: invalid revocation statement")
	ErrRootTransition   = errs.New("secpkg: invalid root transition statement")
	ErrVendor           = errs.New("secpkg: vendor id mismatch")
	ErrClass            = errs.New("secpkg: class id mismatch")
	ErrContentType      = errs.New("secpkg: wrong content type")
	ErrNotRecipient     = errs.New("secpkg: not the recipient of this upk")
	ErrManifestMismatch = errs.New("secpkg: upk is bound to another manifest")
	ErrNotYetValid      = errs.New("secpkg: upk not yet valid")
	ErrExpired          = errs.New("secpkg: upk expired")
	ErrUnwrap           = errs.New("secpkg: key unwrap failed")
	ErrChunk            = errs.New("secpkg: authentication failed")
	ErrTruncated        = errs.New("secpkg: truncated")
	ErrTrailingData     = errs.New("secpkg: trailing data")
	ErrDigest           = errs.New("secpkg: payload digest mismatch")
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
	if cause == nil || errs.Same(cause, kind) {
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
	errMissing        = errs.New("missing")
	errRange          = errs.New("value out of range")
	errSize           = errs.New("wrong size")
	errType           = errs.New("wrong type")
	errDuplicate      = errs.New("duplicate key")
	errNotInteger     = errs.New("key is not an integer")
	errMagic          = errs.New("bad magic")
	errRecordType     = errs.New("unknown record type")
	errRecordOrder    = errs.New("record out of order")
	errReserved       = errs.New("non-zero flags or reserved bytes")
	errNoKeyCert      = errs.New("no key certificate in unprotected header")
	errKID            = errs.New("kid does not match the signing key")
	errPoint          = errs.New("invalid ephemeral public key")
	errCurve          = errs.New("ephemeral key is not on the recipient's curve")
	errEphemeralLabel = errs.New("recipient unprotected header is not exactly {-1: ephemeral key}")
	errDeviceID       = errs.New("device id does not match")
	errEscrow         = errs.New("an escrow upk is never for a device")
	errKeyID          = errs.New("key id does not match")
	errChunkLen       = errs.New("wrong chunk length")
)
