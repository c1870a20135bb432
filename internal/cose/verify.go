package cose

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"math/big"
)

// COSE algorithm identifiers (RFC 9053).
const (
	AlgES256 int64 = -7
	AlgEdDSA int64 = -8
)

// Sizes of raw keys and signatures.
const (
	P256PublicKeySize = 65 // SEC 1 uncompressed point 04 ‖ X ‖ Y
	SignatureSize     = 64 // ES256 r ‖ s, and Ed25519
)

// sigBufSize is the stack buffer for a Sig_structure; larger payloads
// fall back to a heap allocation.
const sigBufSize = 2304

// Verify checks the signature of s with the raw public key pub (65-byte
// SEC 1 point for ES256, 32 bytes for EdDSA) under algorithm alg. It does
// not look at the headers: callers check the protected header first.
func (s *Sign1) Verify(alg int64, pub []byte) error {
	return VerifySignature(alg, pub, s.Protected, s.Payload, s.Signature)
}

// VerifySignature checks sig over the Sig_structure of protected and
// payload with the raw public key pub under algorithm alg. An ES256
// signature must be low-S (s ≤ n/2, spec §2): the other signature of the
// pair, which crypto/ecdsa would accept, is refused with ErrHighS (which
// also matches ErrSignature).
func VerifySignature(alg int64, pub, protected, payload, sig []byte) error {
	var buf [sigBufSize]byte
	switch alg {
	case AlgES256:
		if len(pub) != P256PublicKeySize {
			return ErrKey
		}
		key, err := parseP256(pub)
		if err != nil {
			return wrap(ErrKey, err)
		}
		if len(sig) != SignatureSize {
			return ErrSignature
		}
		if !IsLowS(sig) {
			return wrap(ErrSignature, ErrHighS)
		}
		h := sha256.New()
		h.Write(AppendSigStructure(buf[:0], protected, payload))
		var digest [sha256.Size]byte
		var der [maxDERSize]byte
		if !ecdsa.VerifyASN1(key, h.Sum(digest[:0]), appendDER(der[:0], sig)) {
			return ErrSignature
		}
		return nil
	case AlgEdDSA:
		if len(pub) != ed25519.PublicKeySize {
			return ErrKey
		}
		if len(sig) != ed25519.SignatureSize {
			return ErrSignature
		}
		if !ed25519.Verify(ed25519.PublicKey(pub), AppendSigStructure(buf[:0], protected, payload), sig) {
			return ErrSignature
		}
		return nil
	default:
		return ErrAlg
	}
}

// parseP256 decodes a 65-byte SEC 1 uncompressed P-256 point, refusing
// other encodings, the point at infinity and points not on the curve: what
// ecdsa.ParseUncompressedPublicKey does, written with APIs that Go 1.24
// (the firmware toolchain, docs/silicon.md) also has.
func parseP256(pub []byte) (*ecdsa.PublicKey, error) {
	if _, err := ecdh.P256().NewPublicKey(pub); err != nil {
		return nil, err
	}
	return &ecdsa.PublicKey{
		Curve: elliptic.P256(),
		X:     new(big.Int).SetBytes(pub[1:33]),
		Y:     new(big.Int).SetBytes(pub[33:65]),
	}, nil
}
