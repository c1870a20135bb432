//go:build !sbm_ed25519only

package p256

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"io"
	"math/big"
)

// Compiled reports whether P-256 is compiled in.
const Compiled = true

// PublicKey is a P-256 public key.
type PublicKey struct{ k ecdsa.PublicKey }

// ParsePublicKey decodes a 65-byte SEC 1 uncompressed point, refusing
// other encodings, the point at infinity and points not on the curve: what
// ecdsa.ParseUncompressedPublicKey does, written with APIs that Go 1.24
// (the firmware toolchain, docs/silicon.md) also has.
func ParsePublicKey(raw []byte) (*PublicKey, error) {
	if _, err := ecdh.P256().NewPublicKey(raw); err != nil {
		return nil, err
	}
	return &PublicKey{ecdsa.PublicKey{
		Curve: elliptic.P256(),
		X:     new(big.Int).SetBytes(raw[1:33]),
		Y:     new(big.Int).SetBytes(raw[33:65]),
	}}, nil
}

// VerifyASN1 reports whether sig, an ASN.1 DER ECDSA-Sig-Value, is a valid
// signature of hash by k.
func (k *PublicKey) VerifyASN1(hash, sig []byte) bool {
	return ecdsa.VerifyASN1(&k.k, hash, sig)
}

// PrivateKey is a P-256 private key.
type PrivateKey struct{ k ecdsa.PrivateKey }

// NewPrivateKey returns the private key with the 32-byte big-endian
// scalar d and its raw public key (the 65-byte uncompressed point), or an
// error if d is not in [1, n-1]: what ecdsa.ParseRawPrivateKey and
// PublicKey.Bytes do, in APIs that Go 1.24 also has.
func NewPrivateKey(d []byte) (*PrivateKey, []byte, error) {
	ka, err := ecdh.P256().NewPrivateKey(d)
	if err != nil {
		return nil, nil, err
	}
	pub := ka.PublicKey().Bytes()
	return &PrivateKey{ecdsa.PrivateKey{
		PublicKey: ecdsa.PublicKey{
			Curve: elliptic.P256(),
			X:     new(big.Int).SetBytes(pub[1:33]),
			Y:     new(big.Int).SetBytes(pub[33:65]),
		},
		D: new(big.Int).SetBytes(d),
	}}, pub, nil
}

// SignASN1 signs hash with k and returns the ASN.1 DER signature; rand
// supplies the randomness.
func (k *PrivateKey) SignASN1(rand io.Reader, hash []byte) ([]byte, error) {
	return ecdsa.SignASN1(rand, &k.k, hash)
}

// Signer returns k as a crypto.Signer (an *ecdsa.PrivateKey).
func (k *PrivateKey) Signer() crypto.Signer { return &k.k }

// ECDH returns the P-256 key-agreement curve.
func ECDH() ecdh.Curve { return ecdh.P256() }

// IsPublicKey reports whether pub is a P-256 *ecdsa.PublicKey.
func IsPublicKey(pub crypto.PublicKey) bool {
	k, ok := pub.(*ecdsa.PublicKey)
	return ok && k.Curve != nil && k.Curve.Params() == elliptic.P256().Params()
}

// RawPublicKey returns the 65-byte uncompressed point of pub if it is an
// *ecdsa.PublicKey of a curve crypto/ecdh knows; ok is false for any other
// key type, err non-nil for such a key that cannot be encoded.
func RawPublicKey(pub crypto.PublicKey) (raw []byte, ok bool, err error) {
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return nil, false, nil
	}
	// k.ECDH().Bytes() is k.Bytes() (Go 1.25) for the NIST curves ECDH
	// knows, in APIs the firmware toolchain (Go 1.24) also has.
	e, err := k.ECDH()
	if err != nil {
		return nil, true, err
	}
	return e.Bytes(), true, nil
}
