// Package report encodes, decodes and verifies the SBM's signed install
// report (docs/spec/report.md): a COSE_Sign1 (tag 18) signed with the
// device identity key over a CBOR map of facts the SBM takes from its own
// state — the device ID, a sequence number that never repeats, the boots
// since power-on, the result of the last update and the manifest digest
// of the package it is about, the running application — and an optional
// nonce from the caller.
//
// report is device-side code (the SBM encodes reports with it): standard
// library and the module's device packages only, bounded memory, no
// reflection, no fmt. Byte slices in a decoded Report alias the input.
package report

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"unicode/utf8"

	"github.com/sbm-project/sbm/internal/cbor"
	"github.com/sbm-project/sbm/internal/cose"
	"github.com/sbm-project/sbm/internal/errs"
)

// Report parameters.
const (
	// ContentType is the content type in the report's protected header.
	// It differs from the attestation token's, so neither verifier accepts
	// the other's messages.
	ContentType = "application/vnd.sbm.report+cbor"
	// MinNonceSize and MaxNonceSize bound the optional nonce.
	MinNonceSize = 8
	MaxNonceSize = 64
	// MaxDeviceIDSize is the largest device ID.
	MaxDeviceIDSize = 32
	// MaxVersionSize is the largest application version string.
	MaxVersionSize = 64
	// MaxDetailSize is the largest result detail.
	MaxDetailSize = 64
	// MaxPayloadSize is the largest encoded fact map.
	MaxPayloadSize = 512
	// MaxReportSize is the largest report Verify and Decode accept.
	MaxReportSize = 768
)

// Keys of the fact map.
const (
	KeyDevice   = 1 // bstr .size (1..32): the device ID
	KeySequence = 2 // uint: never repeats for the device, increasing
	KeyBoots    = 3 // uint .size 4: boots since power-on
	KeyUpdated  = 4 // bool: this boot installed the running application
	KeyResult   = 5 // uint .size 1: last update result, 0 installed
	KeyDetail   = 6 // tstr: detail of the result
	KeyPackage  = 7 // bstr .size 32: manifest digest of the package the result is about
	KeyApp      = 8 // app map: the running application
	KeyNonce    = 9 // bstr .size (8..64): the caller's nonce
)

// Keys of the app map.
const (
	AppManifest    = 1 // bstr .size 32: manifest digest
	AppMeasurement = 2 // bstr .size 32: SHA-256 of the image
	AppVersion     = 3 // tstr .size (1..64)
	AppCounter     = 4 // uint .size 4: security counter
)

// Errors of the codec.
var (
	// ErrMalformed: the report is not a well-formed report of this format.
	ErrMalformed = errs.New("report: malformed")
	// ErrHeader: the protected header names another algorithm or key.
	ErrHeader = errs.New("report: header does not match the key")
	// ErrSignature: the signature does not verify.
	ErrSignature = errs.New("report: signature does not verify")
	// ErrFields: Append was given facts outside the format's bounds.
	ErrFields = errs.New("report: invalid facts")
)

// App is the running application as the SBM verified it.
type App struct {
	ManifestDigest  [32]byte
	Measurement     [32]byte
	Version         string
	SecurityCounter uint32
}

// Report is the content of an install report.
type Report struct {
	// DeviceID is the device's unique ID.
	DeviceID []byte
	// Sequence increases with every report of the device and never
	// repeats: its high 32 bits are the report epoch (renewed once per
	// power-on), its low 32 bits count the reports of that epoch.
	Sequence uint64
	// Boots counts the boots since power-on (1: the first).
	Boots uint32
	// Updated: this boot installed the running application.
	Updated bool
	// HasResult: an update result is known; Result is 0 (installed) or
	// the protocol code that refused the package, Detail says more.
	HasResult bool
	Result    uint8
	Detail    string
	// HasPackage: Package is the manifest digest of the package the
	// result is about (the installed one, or the one refused).
	HasPackage bool
	Package    [32]byte
	// HasApp: App is the running application.
	HasApp bool
	App    App
	// Nonce is the caller's nonce (empty: none).
	Nonce []byte
}

// Append signs r with signer under the COSE algorithm alg (cose.AlgES256
// with a P-256 key, cose.AlgEdDSA with an Ed25519 key) and appends the
// report to dst. The protected header is {alg, ContentType, kid = SHA-256
// of the signer's raw public key}; the signer is called with a nil random
// source (RFC 6979 for a P-256 key).
func Append(dst []byte, r *Report, signer crypto.Signer, alg int64) ([]byte, error) {
	var pbuf [MaxPayloadSize]byte
	payload, err := appendFacts(pbuf[:0], r)
	if err != nil {
		return dst, err
	}
	raw, err := cose.RawPublicKey(signer.Public())
	if err != nil {
		return dst, err
	}
	kid := sha256.Sum256(raw)
	var hbuf [96]byte
	protected := cose.AppendProtected(hbuf[:0], alg, ContentType, kid[:])
	return cose.Sign(dst, nil, signer, alg, protected, nil, payload)
}

// appendFacts checks r and appends its fact map, keys ascending.
func appendFacts(dst []byte, r *Report) ([]byte, error) {
	if len(r.DeviceID) == 0 || len(r.DeviceID) > MaxDeviceIDSize ||
		len(r.Nonce) != 0 && (len(r.Nonce) < MinNonceSize || len(r.Nonce) > MaxNonceSize) ||
		len(r.Detail) > MaxDetailSize || !utf8.ValidString(r.Detail) ||
		!r.HasResult && r.Detail != "" ||
		r.HasApp && (r.App.Version == "" || len(r.App.Version) > MaxVersionSize || !utf8.ValidString(r.App.Version)) {
		return dst, ErrFields
	}
	n := uint64(4)
	if r.HasResult {
		n += 2
	}
	if r.HasPackage {
		n++
	}
	if r.HasApp {
		n++
	}
	if len(r.Nonce) > 0 {
		n++
	}
	dst = cbor.AppendMapHeader(dst, n)
	dst = cbor.AppendBytes(cbor.AppendUint(dst, KeyDevice), r.DeviceID)
	dst = cbor.AppendUint(cbor.AppendUint(dst, KeySequence), r.Sequence)
	dst = cbor.AppendUint(cbor.AppendUint(dst, KeyBoots), uint64(r.Boots))
	dst = cbor.AppendBool(cbor.AppendUint(dst, KeyUpdated), r.Updated)
	if r.HasResult {
		dst = cbor.AppendUint(cbor.AppendUint(dst, KeyResult), uint64(r.Result))
		dst = cbor.AppendText(cbor.AppendUint(dst, KeyDetail), r.Detail)
	}
	if r.HasPackage {
		dst = cbor.AppendBytes(cbor.AppendUint(dst, KeyPackage), r.Package[:])
	}
	if r.HasApp {
		a := &r.App
		dst = cbor.AppendMapHeader(cbor.AppendUint(dst, KeyApp), 4)
		dst = cbor.AppendBytes(cbor.AppendUint(dst, AppManifest), a.ManifestDigest[:])
		dst = cbor.AppendBytes(cbor.AppendUint(dst, AppMeasurement), a.Measurement[:])
		dst = cbor.AppendText(cbor.AppendUint(dst, AppVersion), a.Version)
		dst = cbor.AppendUint(cbor.AppendUint(dst, AppCounter), uint64(a.SecurityCounter))
	}
	if len(r.Nonce) > 0 {
		dst = cbor.AppendBytes(cbor.AppendUint(dst, KeyNonce), r.Nonce)
	}
	if len(dst) > MaxPayloadSize {
		return dst, ErrFields
	}
	return dst, nil
}

// Verify checks rep against the device identity key rawPub (the 65-byte
// uncompressed P-256 point or the 32-byte Ed25519 key) under the COSE
// algorithm alg and returns its facts. The protected header must be
// exactly {alg, ContentType, kid = SHA-256(rawPub)}; ES256 signatures must
// be low-S. Verify does not check the device ID, the sequence or the
// nonce against expectations: the caller does (the device ID must be the
// one of the key's certificate).
func Verify(rep []byte, alg int64, rawPub []byte) (*Report, error) {
	s, h, err := decodeSign1(rep)
	if err != nil {
		return nil, err
	}
	if kid := sha256.Sum256(rawPub); h.Alg != alg || !bytes.Equal(h.KID[:], kid[:]) {
		return nil, ErrHeader
	}
	if err := s.Verify(alg, rawPub); err != nil {
		return nil, ErrSignature
	}
	return decodeFacts(s.Payload)
}

// Decode decodes rep without verifying its signature, to find out which
// device it claims to come from (then use Verify with that device's key).
func Decode(rep []byte) (*Report, error) {
	s, _, err := decodeSign1(rep)
	if err != nil {
		return nil, err
	}
	return decodeFacts(s.Payload)
}

// decodeSign1 decodes the COSE_Sign1 and its protected header and checks
// that the unprotected header is the empty map.
func decodeSign1(rep []byte) (cose.Sign1, cose.Header, error) {
	s, h, err := cose.DecodeBare(rep, MaxReportSize, ContentType)
	if err != nil {
		return s, h, ErrMalformed
	}
	return s, h, nil
}

// decodeFacts decodes a fact map. Unknown non-negative keys are refused,
// negative ones skipped; the required keys are 1 to 4, and 5 and 6 come
// together.
func decodeFacts(b []byte) (*Report, error) {
	if len(b) > MaxPayloadSize {
		return nil, ErrMalformed
	}
	r := &Report{}
	d := cbor.NewDecoder(b)
	n, err := d.MapHeader(16)
	if err != nil {
		return nil, ErrMalformed
	}
	var keys cbor.KeySet
	var seen uint16
	for range n {
		start := d.Offset()
		k, neg, err := key(&d)
		if err != nil || keys.Add(d.Since(start)) != nil {
			return nil, ErrMalformed
		}
		if neg {
			if d.Skip() != nil {
				return nil, ErrMalformed
			}
			continue
		}
		var v []byte
		switch k {
		case KeyDevice:
			r.DeviceID, err = d.Bytes()
			if err == nil && (len(r.DeviceID) == 0 || len(r.DeviceID) > MaxDeviceIDSize) {
				err = ErrMalformed
			}
		case KeySequence:
			r.Sequence, err = d.Uint()
		case KeyBoots:
			r.Boots, err = d.Uint32()
		case KeyUpdated:
			r.Updated, err = d.Bool()
		case KeyResult:
			var c uint32
			c, err = d.Uint32()
			if err == nil && c > 0xff {
				err = ErrMalformed
			}
			r.Result, r.HasResult = uint8(c), true
		case KeyDetail:
			v, err = d.Text()
			if err == nil && (len(v) > MaxDetailSize || !utf8.Valid(v)) {
				err = ErrMalformed
			}
			r.Detail = string(v)
		case KeyPackage:
			err = fixed(&d, r.Package[:])
			r.HasPackage = true
		case KeyApp:
			err = decodeApp(&d, &r.App)
			r.HasApp = true
		case KeyNonce:
			r.Nonce, err = d.Bytes()
			if err == nil && (len(r.Nonce) < MinNonceSize || len(r.Nonce) > MaxNonceSize) {
				err = ErrMalformed
			}
		default:
			err = ErrMalformed
		}
		if err != nil {
			return nil, ErrMalformed
		}
		seen |= 1 << k
	}
	const required = 1<<KeyDevice | 1<<KeySequence | 1<<KeyBoots | 1<<KeyUpdated
	hasResult, hasDetail := seen&(1<<KeyResult) != 0, seen&(1<<KeyDetail) != 0
	if d.Finish() != nil || seen&required != required || hasResult != hasDetail {
		return nil, ErrMalformed
	}
	return r, nil
}

// decodeApp decodes the app map: all four keys, nothing else.
func decodeApp(d *cbor.Decoder, a *App) error {
	n, err := d.MapHeader(4)
	if err != nil || n != 4 {
		return ErrMalformed
	}
	var keys cbor.KeySet
	for range n {
		start := d.Offset()
		k, neg, err := key(d)
		if err != nil || neg || keys.Add(d.Since(start)) != nil {
			return ErrMalformed
		}
		switch k {
		case AppManifest:
			err = fixed(d, a.ManifestDigest[:])
		case AppMeasurement:
			err = fixed(d, a.Measurement[:])
		case AppVersion:
			var v []byte
			v, err = d.Text()
			if err == nil && (len(v) == 0 || len(v) > MaxVersionSize || !utf8.Valid(v)) {
				err = ErrMalformed
			}
			a.Version = string(v)
		case AppCounter:
			a.SecurityCounter, err = d.Uint32()
		default:
			err = ErrMalformed
		}
		if err != nil {
			return ErrMalformed
		}
	}
	return nil // four distinct known keys: all present
}

// fixed reads a byte string of exactly len(out) bytes into out.
func fixed(d *cbor.Decoder, out []byte) error {
	v, err := d.Bytes()
	if err != nil {
		return err
	}
	if len(v) != len(out) {
		return ErrMalformed
	}
	copy(out, v)
	return nil
}

// key reads an integer map key: its value if non-negative, or neg.
func key(d *cbor.Decoder) (uint64, bool, error) {
	m, err := d.PeekType()
	if err != nil {
		return 0, false, err
	}
	switch m {
	case cbor.MajorUint:
		k, err := d.Uint()
		return k, false, err
	case cbor.MajorNegInt:
		k, err := d.NegInt()
		return k, true, err
	}
	return 0, false, ErrMalformed
}
