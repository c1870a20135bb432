package secpkg

import (
	"crypto/sha256"

	"github.com/sbm-project/sbm/internal/cose"
)

// Suite is a cryptographic suite of spec §2.
type Suite uint8

// The suites of spec §2.
const (
	SuiteP256    Suite = 1 // ES256, ECDH P-256
	SuiteEd25519 Suite = 2 // EdDSA (Ed25519), X25519
)

// Alg returns the COSE signature algorithm of the suite, or 0.
func (s Suite) Alg() int64 {
	switch s {
	case SuiteP256:
		return cose.AlgES256
	case SuiteEd25519:
		return cose.AlgEdDSA
	}
	return 0
}

// PublicKeySize returns the size of a raw signature public key of the suite.
func (s Suite) PublicKeySize() int {
	switch s {
	case SuiteP256:
		return 65
	case SuiteEd25519:
		return 32
	}
	return 0
}

// suiteOfAlg returns the suite of a COSE signature algorithm, or 0.
func suiteOfAlg(alg int64) Suite {
	switch alg {
	case cose.AlgES256:
		return SuiteP256
	case cose.AlgEdDSA:
		return SuiteEd25519
	}
	return 0
}

// Anchors are what a verifier trusts: the suite, the root public key and the
// vendor and class it belongs to. A device holds KeyID(RootKey) in fuses and
// should check it against RootKey before using the anchors.
type Anchors struct {
	Suite    Suite
	RootKey  []byte // raw public key encoding (spec §2)
	VendorID [16]byte
	ClassID  [16]byte
	// MinEpoch, indexed by Role, is the lowest key epoch accepted for the
	// role (spec §4.1): key certificates of a lower epoch are revoked.
	MinEpoch [3]uint8

	// trusted holds SHA-256 digests of key certificates already verified
	// against RootKey (see TrustKeyCert); zero entries are unused.
	trusted [MaxTrustedKeyCerts][32]byte
}

// MaxTrustedKeyCerts is how many pre-verified key certificates Anchors
// remember.
const MaxTrustedKeyCerts = 4

// KeyID returns the key identifier of a raw public key encoding:
// SHA-256(rawPub) (spec §2).
func KeyID(rawPub []byte) [32]byte { return sha256.Sum256(rawPub) }
