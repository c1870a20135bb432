// Package hostcose builds the signed structures of the package format
// (docs/spec/package.md §3) on the host: COSE_Sign1 messages signed through
// any crypto.Signer (a file key or an HSM), with the format's protected
// header, and the raw public key encodings and key IDs the format uses.
package hostcose

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"

	"github.com/fxamacker/cbor/v2"
	devcose "github.com/sbm-project/sbm/internal/cose"
	"github.com/veraison/go-cose"
)

// Content types of the format's signed structures.
const (
	ContentTypeKeyCert  = "application/vnd.sbm.keycert+cbor"
	ContentTypeManifest = "application/vnd.sbm.manifest+cbor"
	ContentTypeUPK      = "application/vnd.sbm.upk+cbor"
)

// LabelKeyCert is the unprotected header label carrying the signer's key
// certificate.
const LabelKeyCert int64 = -65537

// encMode encodes CBOR with RFC 8949 core deterministic encoding.
var encMode, _ = cbor.CoreDetEncOptions().EncMode()

// Marshal encodes v as deterministic CBOR.
func Marshal(v any) ([]byte, error) { return encMode.Marshal(v) }

// RawPublicKey returns the format's raw encoding of a public key (spec §2):
// the 65-byte uncompressed point for P-256 (ECDSA or ECDH), 32 bytes for
// Ed25519 and X25519.
func RawPublicKey(pub crypto.PublicKey) ([]byte, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, errors.New("unsupported ECDSA curve (want P-256)")
		}
		ek, err := k.ECDH()
		if err != nil {
			return nil, err
		}
		return ek.Bytes(), nil
	case ed25519.PublicKey:
		return []byte(k), nil
	case *ecdh.PublicKey:
		if k.Curve() != ecdh.P256() && k.Curve() != ecdh.X25519() {
			return nil, errors.New("unsupported key-agreement curve")
		}
		return k.Bytes(), nil
	}
	return nil, fmt.Errorf("unsupported public key type %T", pub)
}

// KeyID returns the key ID of a public key: SHA-256 of its raw encoding.
func KeyID(pub crypto.PublicKey) ([32]byte, error) {
	raw, err := RawPublicKey(pub)
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(raw), nil
}

// Algorithm returns the COSE signature algorithm for a public key.
func Algorithm(pub crypto.PublicKey) (cose.Algorithm, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() {
			return cose.AlgorithmES256, nil
		}
	case ed25519.PublicKey:
		return cose.AlgorithmEdDSA, nil
	}
	return 0, fmt.Errorf("unsupported signing key type %T", pub)
}

// signer adapts a crypto.Signer to cose.Signer. ECDSA signatures are
// requested with a nil random source, which software keys answer with
// RFC 6979 deterministic signatures (HSMs ignore it), and normalised to
// low-S (s ≤ n/2, spec §2) after the crypto.Signer returns.
type signer struct {
	key crypto.Signer
	alg cose.Algorithm
}

// NewSigner returns a cose.Signer that signs with key.
func NewSigner(key crypto.Signer) (cose.Signer, error) {
	alg, err := Algorithm(key.Public())
	if err != nil {
		return nil, err
	}
	return &signer{key: key, alg: alg}, nil
}

func (s *signer) Algorithm() cose.Algorithm { return s.alg }

func (s *signer) Sign(_ io.Reader, content []byte) ([]byte, error) {
	if s.alg == cose.AlgorithmEdDSA {
		return s.key.Sign(nil, content, crypto.Hash(0))
	}
	digest := sha256.Sum256(content)
	der, err := s.key.Sign(nil, digest[:], crypto.SHA256)
	if err != nil {
		return nil, err
	}
	var sig struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(der, &sig); err != nil || len(rest) != 0 {
		return nil, errors.New("signer returned a malformed ECDSA signature")
	}
	if sig.R.Sign() <= 0 || sig.S.Sign() <= 0 || sig.R.BitLen() > 256 || sig.S.BitLen() > 256 {
		return nil, errors.New("signer returned an out-of-range ECDSA signature")
	}
	out := make([]byte, 64)
	sig.R.FillBytes(out[:32])
	sig.S.FillBytes(out[32:])
	// The format accepts only low-S signatures (spec §2). An HSM or any
	// other crypto.Signer may return either of the pair, so normalise here,
	// after the signer, not by trusting it.
	devcose.NormalizeLowS(out)
	if !devcose.IsLowS(out) {
		return nil, errors.New("signer returned an out-of-range ECDSA signature")
	}
	return out, nil
}

// Sign1 returns a tagged COSE_Sign1 over payload, signed by key, with the
// format's protected header (alg, content type, kid) and, when keyCert is
// not nil, the signer's key certificate in the unprotected header.
func Sign1(key crypto.Signer, contentType string, payload, keyCert []byte) ([]byte, error) {
	return Sign1With(key, contentType, payload, keyCert, nil)
}

// Sign1With is Sign1 with further byte-string labels in the unprotected
// header (a manifest's revocation statement, spec §4.1).
func Sign1With(key crypto.Signer, contentType string, payload, keyCert []byte, extra map[int64][]byte) ([]byte, error) {
	s, err := NewSigner(key)
	if err != nil {
		return nil, err
	}
	kid, err := KeyID(key.Public())
	if err != nil {
		return nil, err
	}
	msg := cose.NewSign1Message()
	msg.Headers.Protected[cose.HeaderLabelAlgorithm] = s.Algorithm()
	msg.Headers.Protected[cose.HeaderLabelContentType] = contentType
	msg.Headers.Protected[cose.HeaderLabelKeyID] = kid[:]
	if keyCert != nil {
		msg.Headers.Unprotected[LabelKeyCert] = keyCert
	}
	for k, v := range extra {
		msg.Headers.Unprotected[k] = v
	}
	msg.Payload = payload
	if err := msg.Sign(nil, nil, s); err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	return msg.MarshalCBOR()
}

// Parse decodes a tagged COSE_Sign1 and checks its content type, without
// verifying the signature.
func Parse(b []byte, contentType string) (*cose.Sign1Message, error) {
	var msg cose.Sign1Message
	if err := msg.UnmarshalCBOR(b); err != nil {
		return nil, fmt.Errorf("not a COSE_Sign1 message: %w", err)
	}
	ct, _ := msg.Headers.Protected[cose.HeaderLabelContentType].(string)
	if ct != contentType {
		return nil, fmt.Errorf("content type %q, want %q", ct, contentType)
	}
	return &msg, nil
}

var decMode, _ = cbor.DecOptions{DupMapKey: cbor.DupMapKeyEnforcedAPF, IndefLength: cbor.IndefLengthForbidden}.DecMode()

// Unmarshal decodes CBOR into v, rejecting duplicate map keys and
// indefinite lengths.
func Unmarshal(b []byte, v any) error { return decMode.Unmarshal(b, v) }
