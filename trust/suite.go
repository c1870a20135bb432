package trust

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
)

// Suite names the algorithms a security context uses for all its keys.
type Suite string

const (
	// SuiteP256 is ECDSA P-256 with SHA-256, ECDH P-256 and AES-256.
	SuiteP256 Suite = "p256"
	// SuiteEd25519 is Ed25519 signatures, X25519 key agreement and AES-256.
	SuiteEd25519 Suite = "ed25519"
)

// ParseSuite parses a suite name.
func ParseSuite(s string) (Suite, error) {
	switch Suite(s) {
	case SuiteP256, SuiteEd25519:
		return Suite(s), nil
	}
	return "", fmt.Errorf("unknown suite %q (want p256 or ed25519)", s)
}

// KeyAgreementCurve returns the curve of the suite's key-agreement keys.
func (s Suite) KeyAgreementCurve() ecdh.Curve {
	if s == SuiteEd25519 {
		return ecdh.X25519()
	}
	return ecdh.P256()
}

// GenerateSigningKey returns a new signing key of the suite.
func (s Suite) GenerateSigningKey() (crypto.Signer, error) {
	if s == SuiteEd25519 {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

// GenerateKeyAgreementKey returns a new key-agreement key of the suite.
func (s Suite) GenerateKeyAgreementKey() (*ecdh.PrivateKey, error) {
	return s.KeyAgreementCurve().GenerateKey(rand.Reader)
}

// suiteOf returns the suite of a signing public key.
func suiteOf(pub crypto.PublicKey) (Suite, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() {
			return SuiteP256, nil
		}
	case ed25519.PublicKey:
		return SuiteEd25519, nil
	}
	return "", fmt.Errorf("unsupported signing key %T", pub)
}
