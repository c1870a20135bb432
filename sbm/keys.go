package sbm

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"

	"github.com/sbm-project/sbm/internal/errs"
	"github.com/sbm-project/sbm/internal/p256"
	"github.com/sbm-project/sbm/internal/secpkg"
)

// HKDF info strings of the device keys (docs/sbm.md, "Key derivation").
const (
	infoIdentity     = "sbm identity key v1"
	infoKeyAgreement = "sbm key agreement v1"
)

// maxKeyTries bounds the retry counter of P-256 scalar derivation (a
// candidate is out of range with probability about 2^-32).
const maxKeyTries = 16

var errKeyDerivation = errs.New("sbm: key derivation failed")

// errSuiteNotBuilt is a suite left out of this build (P-256 in an
// sbm_ed25519only firmware).
var errSuiteNotBuilt = errs.New("sbm: suite not compiled into this SBM")

// deviceKeys are the device's private keys, derived from the PUF key at
// every boot that needs them and never stored.
type deviceKeys struct {
	suite    secpkg.Suite
	p256     *p256.PrivateKey   // SuiteP256 identity key
	ed25519  ed25519.PrivateKey // SuiteEd25519 identity key
	ka       *ecdh.PrivateKey   // key-agreement key
	identity []byte             // raw identity public key (spec §2)
}

// derive returns 32 bytes of HKDF-SHA-256 output for info and a retry
// counter (0 ≤ try < maxKeyTries), written in decimal after a space.
func derive(pufKey *[32]byte, info string, try int) ([]byte, error) {
	var buf [64]byte
	b := append(append(buf[:0], info...), ' ')
	if try >= 10 {
		b = append(b, byte('0'+try/10))
	}
	b = append(b, byte('0'+try%10))
	return hkdf.Key(sha256.New, pufKey[:], nil, string(b), 32)
}

// deriveKeys derives the identity and key-agreement keys of suite from the
// PUF key with HKDF-SHA-256 and distinct info strings. A suite this build
// does not have (P-256 in an sbm_ed25519only build) is errSuiteNotBuilt.
func deriveKeys(suite secpkg.Suite, pufKey *[32]byte) (*deviceKeys, error) {
	if suite == secpkg.SuiteP256 && !p256.Compiled {
		return nil, errSuiteNotBuilt
	}
	k := &deviceKeys{suite: suite}
	for try := 0; ; try++ {
		if try == maxKeyTries {
			return nil, errKeyDerivation
		}
		seed, err := derive(pufKey, infoIdentity, try)
		if err != nil {
			return nil, errKeyDerivation
		}
		if suite == secpkg.SuiteEd25519 {
			k.ed25519 = ed25519.NewKeyFromSeed(seed)
			k.identity = []byte(k.ed25519.Public().(ed25519.PublicKey))
			break
		}
		if suite != secpkg.SuiteP256 {
			return nil, errKeyDerivation
		}
		if k.p256, k.identity, err = p256.NewPrivateKey(seed); err == nil {
			break
		}
	}
	curve := p256.ECDH()
	if suite == secpkg.SuiteEd25519 {
		curve = ecdh.X25519()
	}
	for try := 0; ; try++ {
		if try == maxKeyTries {
			return nil, errKeyDerivation
		}
		seed, err := derive(pufKey, infoKeyAgreement, try)
		if err != nil {
			return nil, errKeyDerivation
		}
		if k.ka, err = curve.NewPrivateKey(seed); err == nil {
			break
		}
	}
	return k, nil
}

// classKey returns the class key-agreement private key of suite from its raw
// scalar.
func classKey(suite secpkg.Suite, raw []byte) (*ecdh.PrivateKey, error) {
	if suite == secpkg.SuiteEd25519 {
		return ecdh.X25519().NewPrivateKey(raw)
	}
	if !p256.Compiled {
		return nil, errSuiteNotBuilt
	}
	return p256.ECDH().NewPrivateKey(raw)
}
