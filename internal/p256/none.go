//go:build sbm_ed25519only

package p256

import (
	"crypto"
	"crypto/ecdh"
	"io"
)

// Compiled reports whether P-256 is compiled in.
const Compiled = false

// PublicKey is a P-256 public key; without P-256 there are none.
type PublicKey struct{}

// ParsePublicKey fails with ErrUnsupported.
func ParsePublicKey(raw []byte) (*PublicKey, error) { return nil, ErrUnsupported }

// VerifyASN1 reports false.
func (k *PublicKey) VerifyASN1(hash, sig []byte) bool { return false }

// PrivateKey is a P-256 private key; without P-256 there are none.
type PrivateKey struct{}

// NewPrivateKey fails with ErrUnsupported.
func NewPrivateKey(d []byte) (*PrivateKey, []byte, error) { return nil, nil, ErrUnsupported }

// SignASN1 fails with ErrUnsupported.
func (k *PrivateKey) SignASN1(rand io.Reader, hash []byte) ([]byte, error) {
	return nil, ErrUnsupported
}

// Signer returns nil.
func (k *PrivateKey) Signer() crypto.Signer { return nil }

// ECDH returns nil: there is no P-256 key-agreement curve.
func ECDH() ecdh.Curve { return nil }

// IsPublicKey reports false.
func IsPublicKey(pub crypto.PublicKey) bool { return false }

// RawPublicKey reports ok false: no key is a P-256 key.
func RawPublicKey(pub crypto.PublicKey) (raw []byte, ok bool, err error) { return nil, false, nil }
