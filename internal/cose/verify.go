package cose

import (
	"crypto/ed25519"
	"crypto/sha256"

	"github.com/sbm-project/sbm/internal/p256"
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
		key, err := p256.ParsePublicKey(pub)
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
		if !key.VerifyASN1(h.Sum(digest[:0]), appendDER(der[:0], sig)) {
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
