package sdk

import "strconv"

// Code is a result code of the runtime services (docs/spec/services.md):
// 1 to 99 are the SBM's protocol codes, 100 and up the runtime's own.
type Code int32

// Codes from the SBM (the connection protocol's codes).
const (
	CodeOK              Code = 0
	CodeMalformed       Code = 1
	CodeUnsupported     Code = 2
	CodeState           Code = 3
	CodeTooLarge        Code = 4
	CodeOffset          Code = 5
	CodeFlash           Code = 6
	CodeFormat          Code = 7
	CodeSignature       Code = 8
	CodeVendorClass     Code = 9
	CodeNotRecipient    Code = 10
	CodeManifestBinding Code = 11
	CodeExpired         Code = 12
	CodeReplay          Code = 13
	CodeDowngrade       Code = 14
	CodeDecrypt         Code = 15
	CodeDigest          Code = 16
	CodeNotProvisioned  Code = 17
	CodeBootHash        Code = 18
	CodeNoApplication   Code = 19
	CodeTimeout         Code = 20
	CodeInternal        Code = 21
	CodeSlot            Code = 22
	CodeAppStart        Code = 23
	CodeRevoked         Code = 24
)

// Codes from the application runtime.
const (
	CodeBadPointer   Code = 100 // a pointer and length outside the module's memory
	CodeBadArgument  Code = 101 // a value out of range
	CodeUnavailable  Code = 102 // the SBM offers no services to this application
	CodeDenied       Code = 103 // URL scheme or host not allowed
	CodeNetwork      Code = 104 // HTTP request failed
	CodeHTTPStatus   Code = 105 // HTTP status other than 200
	CodeBadHandle    Code = 106 // fetch handle not open, or too many open
	CodeHostInternal Code = 107 // the runtime failed unexpectedly
	// CodeNotOnDevice is never returned by the runtime: the SDK uses it
	// when built outside wasip1.
	CodeNotOnDevice Code = 199
)

var codeNames = map[Code]string{
	CodeOK: "ok", CodeMalformed: "malformed request", CodeUnsupported: "unsupported",
	CodeState: "wrong state", CodeTooLarge: "too large", CodeOffset: "unexpected offset",
	CodeFlash: "flash failure", CodeFormat: "malformed package", CodeSignature: "signature",
	CodeVendorClass: "vendor or class mismatch", CodeNotRecipient: "not the recipient",
	CodeManifestBinding: "upk bound to another manifest", CodeExpired: "upk expired or not yet valid",
	CodeReplay: "upk replayed", CodeDowngrade: "downgrade", CodeDecrypt: "decryption failed",
	CodeDigest: "digest mismatch", CodeNotProvisioned: "not provisioned",
	CodeBootHash: "application hash mismatch", CodeNoApplication: "no application",
	CodeTimeout: "timeout", CodeInternal: "internal error", CodeSlot: "unknown slot",
	CodeAppStart: "application cannot start", CodeRevoked: "signing key revoked",
	CodeBadPointer: "bad pointer", CodeBadArgument: "bad argument",
	CodeUnavailable: "service unavailable", CodeDenied: "url not allowed",
	CodeNetwork: "network error", CodeHTTPStatus: "http status not 200",
	CodeBadHandle: "bad handle", CodeHostInternal: "runtime internal error",
	CodeNotOnDevice: "not running on a device",
}

// String returns a short description of the code.
func (c Code) String() string {
	if s, ok := codeNames[c]; ok {
		return s
	}
	return "code " + strconv.Itoa(int(c))
}

// Error is a failed service call.
type Error struct {
	// Op is the service ("attest", "staging_write", ...); empty in the
	// sentinel errors.
	Op string
	// Code says why.
	Code Code
}

func (e *Error) Error() string {
	s := "sdk: "
	if e.Op != "" {
		s += e.Op + ": "
	}
	return s + e.Code.String() + " (code " + strconv.Itoa(int(e.Code)) + ")"
}

// Is reports whether target is an *Error with the same code, so that
// errors.Is(err, sdk.ErrUnavailable) works for any operation.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Sentinel errors, to test with errors.Is.
var (
	ErrNotOnDevice = &Error{Code: CodeNotOnDevice}
	ErrUnavailable = &Error{Code: CodeUnavailable}
	ErrBadArgument = &Error{Code: CodeBadArgument}
	ErrBadPointer  = &Error{Code: CodeBadPointer}
	ErrDenied      = &Error{Code: CodeDenied}
)

// check turns a raw result into an error: r >= 0 is success.
func check(op string, r int32) error {
	if r >= 0 {
		return nil
	}
	return &Error{Op: op, Code: Code(-r)}
}
