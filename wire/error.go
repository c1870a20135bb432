// Package wire is the SBM's connection protocol (docs/spec/protocol.md),
// spoken on the UART between the device and a programmer: framing with
// CRC, version negotiation, device information, certificate retrieval, and
// a windowed, resumable package transfer.
//
// wire is device-side code: standard library only, no reflection, no fmt,
// no goroutines, bounded buffers.
package wire

import "strconv"

// Code is a protocol error code. Codes are part of the protocol: their
// values never change.
type Code uint8

// Error codes (docs/spec/protocol.md §5).
const (
	CodeOK              Code = 0
	CodeMalformed       Code = 1  // a request that does not parse
	CodeUnsupported     Code = 2  // unknown request or protocol version
	CodeState           Code = 3  // request not valid in this state (e.g. DATA before BEGIN)
	CodeTooLarge        Code = 4  // package larger than the staging slot, oversized frame
	CodeOffset          Code = 5  // DATA at an unexpected offset
	CodeFlash           Code = 6  // flash operation failed
	CodeFormat          Code = 7  // package container or record malformed
	CodeSignature       Code = 8  // a signature or key certificate does not verify
	CodeVendorClass     Code = 9  // vendor or class ID mismatch
	CodeNotRecipient    Code = 10 // UPK for another device or class
	CodeManifestBinding Code = 11 // UPK bound to another manifest
	CodeExpired         Code = 12 // UPK outside its validity window
	CodeReplay          Code = 13 // UPK ID already used
	CodeDowngrade       Code = 14 // security counter below the stored one
	CodeDecrypt         Code = 15 // a payload chunk failed authentication, or truncated stream
	CodeDigest          Code = 16 // plaintext digest mismatch
	CodeNotProvisioned  Code = 17 // the device has no keys or anchors
	CodeBootHash        Code = 18 // installed application does not match the signature table
	CodeNoApplication   Code = 19 // no application installed
	CodeTimeout         Code = 20 // session ended by inactivity
	CodeInternal        Code = 21 // unexpected device error
	CodeSlot            Code = 22 // manifest targets a slot this device does not have
	CodeAppStart        Code = 23 // the verified application cannot be started by the device's runtime
	CodeRevoked         Code = 24 // signed with a key whose epoch the device has revoked
)

var codeNames = [...]string{
	"ok", "malformed request", "unsupported", "wrong state", "too large", "unexpected offset",
	"flash failure", "malformed package", "signature", "vendor or class mismatch", "not the recipient",
	"upk bound to another manifest", "upk expired or not yet valid", "upk replayed", "downgrade",
	"decryption failed", "digest mismatch", "not provisioned", "application hash mismatch",
	"no application", "timeout", "internal error", "unknown slot", "application cannot start",
	"signing key revoked",
}

// String returns a short description of the code.
func (c Code) String() string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return "code " + strconv.Itoa(int(c))
}

// Error is a protocol error: a code and a short human-readable detail.
type Error struct {
	Code   Code
	Detail string
}

func (e *Error) Error() string {
	if e.Detail == "" {
		return e.Code.String()
	}
	return e.Code.String() + ": " + e.Detail
}

// Errorf returns an *Error with code and detail.
func Errorf(code Code, detail string) *Error { return &Error{Code: code, Detail: detail} }
