package x509lite

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
)

// Suites of VerifyChain (the SBM's suite numbers).
const (
	// SuiteP256 is ES256: ECDSA P-256 with SHA-256.
	SuiteP256 uint8 = 1
	// SuiteEd25519 is Ed25519.
	SuiteEd25519 uint8 = 2
)

// CheckSignature verifies that c's signature over its TBSCertificate was
// made by the key (alg, key): a 65-byte uncompressed P-256 point or a
// 32-byte Ed25519 key. The signature algorithm must match the key's.
func (c *Certificate) CheckSignature(alg Algorithm, key []byte) error {
	if c.SignatureAlgorithm != alg {
		return ErrUnsupportedAlgorithm
	}
	switch alg {
	case ECDSAP256:
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), key)
		if err != nil {
			return ErrUnsupportedAlgorithm
		}
		h := sha256.Sum256(c.TBS)
		if !ecdsa.VerifyASN1(pub, h[:], c.Signature) {
			return ErrSignature
		}
		return nil
	case Ed25519:
		if len(key) != ed25519.PublicKeySize {
			return ErrUnsupportedAlgorithm
		}
		if !ed25519.Verify(ed25519.PublicKey(key), c.TBS, c.Signature) {
			return ErrSignature
		}
		return nil
	}
	return ErrUnsupportedAlgorithm
}

// canSign reports whether c may issue certificates: basic constraints
// with cA true, and keyCertSign if a key usage is present.
func (c *Certificate) canSign() bool {
	return c.HasBasicConstraints && c.IsCA && (!c.HasKeyUsage || c.KeyUsage&KeyUsageKeyCertSign != 0)
}

// VerifyChain checks a certificate chain, leaf first, against the root key
// of suite (SuiteP256: rootKey is a 65-byte uncompressed point; SuiteEd25519:
// a 32-byte key). Each certificate's issuer must equal the next one's
// subject, its signature must verify with the next one's key, and every
// certificate but the leaf must be a CA. The last certificate must be
// signed by rootKey — or be the root's own self-signed certificate, whose
// key equals rootKey. If now is not 0 (epoch seconds) every certificate
// must be valid at now. The chain holds 1 to MaxChainLength certificates.
func VerifyChain(chain [][]byte, rootKey []byte, suite uint8, now uint64) error {
	var rootAlg Algorithm
	switch {
	case suite == SuiteP256 && len(rootKey) == 65 && rootKey[0] == 4:
		rootAlg = ECDSAP256
	case suite == SuiteEd25519 && len(rootKey) == ed25519.PublicKeySize:
		rootAlg = Ed25519
	default:
		return ErrRootKey
	}
	n := len(chain)
	if n == 0 || n > MaxChainLength {
		return ErrChainLength
	}
	var certs [MaxChainLength]Certificate
	for i := range n {
		c := &certs[i]
		if err := Parse(chain[i], c); err != nil {
			return err
		}
		if now != 0 {
			if now < c.NotBefore {
				return ErrNotYetValid
			}
			if now > c.NotAfter {
				return ErrExpired
			}
		}
	}
	for i := 0; i+1 < n; i++ {
		child, parent := &certs[i], &certs[i+1]
		if !equal(child.Issuer, parent.Subject) {
			return ErrIssuerMismatch
		}
		if !parent.canSign() {
			return ErrNotCA
		}
		if err := child.CheckSignature(parent.KeyAlgorithm, parent.PublicKey); err != nil {
			return err
		}
	}
	last := &certs[n-1]
	if last.KeyAlgorithm == rootAlg && equal(last.PublicKey, rootKey) {
		// The root's own certificate ends the chain: it must be
		// self-issued and self-signed.
		if !equal(last.Issuer, last.Subject) {
			return ErrIssuerMismatch
		}
	}
	return last.CheckSignature(rootAlg, rootKey)
}
