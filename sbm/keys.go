package sbm

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"math/big"
	"strconv"

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

var errKeyDerivation = errors.New("sbm: key derivation failed")

// deviceKeys are the device's private keys, derived from the PUF key at
// every boot that needs them and never stored.
type deviceKeys struct {
	suite    secpkg.Suite
	ecdsa    *ecdsa.PrivateKey  // SuiteP256 identity key
	ed25519  ed25519.PrivateKey // SuiteEd25519 identity key
	ka       *ecdh.PrivateKey   // key-agreement key
	identity []byte             // raw identity public key (spec §2)
}

// derive returns 32 bytes of HKDF-SHA-256 output for info and a retry
// counter.
func derive(pufKey *[32]byte, info string, try int) ([]byte, error) {
	return hkdf.Key(sha256.New, pufKey[:], nil, info+" "+strconv.Itoa(try), 32)
}

// deriveKeys derives the identity and key-agreement keys of suite from the
// PUF key with HKDF-SHA-256 and distinct info strings.
func deriveKeys(suite secpkg.Suite, pufKey *[32]byte) (*deviceKeys, error) {
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
		if k.ecdsa, k.identity, err = p256Key(seed); err == nil {
			break
		}
	}
	curve := ecdh.P256()
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

// p256Key returns the P-256 private key with scalar seed and its raw public
// key (the 65-byte uncompressed point), or an error if seed is not a valid
// scalar (32 bytes, in [1, n-1]): what ecdsa.ParseRawPrivateKey and
// PublicKey.Bytes do, written with APIs that Go 1.24 (the firmware
// toolchain, docs/silicon.md) also has.
func p256Key(seed []byte) (*ecdsa.PrivateKey, []byte, error) {
	ka, err := ecdh.P256().NewPrivateKey(seed)
	if err != nil {
		return nil, nil, err
	}
	pub := ka.PublicKey().Bytes()
	return &ecdsa.PrivateKey{
		PublicKey: ecdsa.PublicKey{
			Curve: elliptic.P256(),
			X:     new(big.Int).SetBytes(pub[1:33]),
			Y:     new(big.Int).SetBytes(pub[33:65]),
		},
		D: new(big.Int).SetBytes(seed),
	}, pub, nil
}

// classKey returns the class key-agreement private key of suite from its raw
// scalar.
func classKey(suite secpkg.Suite, raw []byte) (*ecdh.PrivateKey, error) {
	if suite == secpkg.SuiteEd25519 {
		return ecdh.X25519().NewPrivateKey(raw)
	}
	return ecdh.P256().NewPrivateKey(raw)
}
