package x509lite

import (
	"crypto/ed25519"
	"crypto/sha256"

	"github.com/sbm-project/sbm/internal/p256"
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
		pub, err := p256.ParsePublicKey(key)
		if err != nil {
			return ErrUnsupportedAlgorithm
		}
		h := sha256.Sum256(c.TBS)
		if !pub.VerifyASN1(h[:], c.Signature) {
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

// Usage is what VerifyChainFor requires of a chain's first certificate.
type Usage uint8

// Usages.
const (
	// UsageAny accepts as the first certificate an end-entity certificate
	// for TLS client or server authentication, or a CA certificate (the
	// chain is then a chain of CAs). It is VerifyChain's policy, the SBM's
	// chain-validation service's: applications check their own chain and
	// the servers they talk to.
	UsageAny Usage = iota
	// UsageClientAuth requires an end-entity certificate for client
	// authentication: the device certificate profile.
	UsageClientAuth
	// UsageServerAuth requires an end-entity certificate for server
	// authentication.
	UsageServerAuth
)

// canSign reports whether c may issue certificates: basic constraints
// with cA true, and a key usage with keyCertSign (RFC 5280 §4.2.1.3: a CA
// certificate MUST have the key usage extension).
func (c *Certificate) canSign() bool {
	return c.HasBasicConstraints && c.IsCA && c.HasKeyUsage && c.KeyUsage&KeyUsageKeyCertSign != 0
}

// checkLeaf checks that c, the first certificate of a chain, is fit for
// usage.
func (c *Certificate) checkLeaf(usage Usage) error {
	if c.IsCA {
		if usage != UsageAny {
			return ErrLeafUsage
		}
		// A chain of CAs: its first certificate is a CA like the others.
		if !c.canSign() {
			return ErrNotCA
		}
		return nil
	}
	// An end-entity certificate: it signs (TLS, attestation), it does
	// not issue certificates.
	if c.HasKeyUsage && (c.KeyUsage&KeyUsageDigitalSignature == 0 || c.KeyUsage&KeyUsageKeyCertSign != 0) {
		return ErrLeafUsage
	}
	if !c.HasExtKeyUsage || c.ExtKeyUsage&ExtKeyUsageAny != 0 {
		return nil
	}
	want := ExtKeyUsageClientAuth | ExtKeyUsageServerAuth
	switch usage {
	case UsageClientAuth:
		want = ExtKeyUsageClientAuth
	case UsageServerAuth:
		want = ExtKeyUsageServerAuth
	}
	if c.ExtKeyUsage&want == 0 {
		return ErrLeafUsage
	}
	return nil
}

// VerifyChain checks a certificate chain, leaf first, against the root key
// of suite (SuiteP256: rootKey is a 65-byte uncompressed point; SuiteEd25519:
// a 32-byte key), under policy UsageAny: it is VerifyChainFor(chain,
// rootKey, suite, now, UsageAny).
func VerifyChain(chain [][]byte, rootKey []byte, suite uint8, now uint64) error {
	return VerifyChainFor(chain, rootKey, suite, now, UsageAny)
}

// VerifyChainFor checks a certificate chain, leaf first, against the root
// key of suite (SuiteP256: rootKey is a 65-byte uncompressed point;
// SuiteEd25519: a 32-byte key), the leaf being fit for usage.
//
// Each certificate's issuer must equal the next one's subject and its
// signature must verify with the next one's key. Every certificate but the
// leaf must be a CA (basic constraints cA true and key usage keyCertSign),
// with no more CA certificates between it and the leaf than its path
// length constraint allows. The leaf must be fit for usage: an end-entity
// certificate (key usage, if present, with digitalSignature and without
// keyCertSign; extended key usage, if present, allowing the usage or
// anyExtendedKeyUsage), or under UsageAny also a CA. The last certificate
// must be signed by rootKey — or be the root's own self-signed
// certificate, whose key equals rootKey. If now is not 0 (epoch seconds)
// every certificate must be valid at now. The chain holds 1 to
// MaxChainLength certificates. An unknown critical extension is refused.
func VerifyChainFor(chain [][]byte, rootKey []byte, suite uint8, now uint64, usage Usage) error {
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
	if err := certs[0].checkLeaf(usage); err != nil {
		return err
	}
	for i := 0; i+1 < n; i++ {
		child, parent := &certs[i], &certs[i+1]
		if !equal(child.Issuer, parent.Subject) {
			return ErrIssuerMismatch
		}
		if !parent.canSign() {
			return ErrNotCA
		}
		// Below parent: certificates 1..i are CAs between it and the
		// leaf (certificate 0), as crypto/x509 counts them.
		if parent.HasPathLen && i > int(parent.PathLen) {
			return ErrPathLength
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
