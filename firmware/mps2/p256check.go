//go:build tinygo && !sbmfw_ed25519 && !sbmfw_board

package main

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"math/big"
)

// p256Key returns an ECDSA P-256 key with a fixed scalar and its raw
// public key.
func p256Key() (*ecdsa.PrivateKey, []byte) {
	var seed [32]byte
	for i := range seed {
		seed[i] = byte(i + 1)
	}
	ka, err := ecdh.P256().NewPrivateKey(seed[:])
	if err != nil {
		return nil, nil
	}
	pub := ka.PublicKey().Bytes()
	return &ecdsa.PrivateKey{
		PublicKey: ecdsa.PublicKey{
			Curve: elliptic.P256(),
			X:     new(big.Int).SetBytes(pub[1:33]),
			Y:     new(big.Int).SetBytes(pub[33:65]),
		},
		D: new(big.Int).SetBytes(seed[:]),
	}, pub
}

// p256Check signs and verifies with ECDSA P-256 (the P-256 suite's
// identity and verification primitive) and checks a forgery is refused.
func p256Check() bool {
	key, _ := p256Key()
	if key == nil {
		return check("P-256 key", false)
	}
	h := sha256.Sum256(testBuffer)
	der, err := ecdsa.SignASN1(&counterRNG{}, key, h[:])
	if err != nil {
		return check("P-256 sign", false)
	}
	ok := ecdsa.VerifyASN1(&key.PublicKey, h[:], der)
	h[0] ^= 1
	return check("P-256 sign, verify, refuse a forgery", ok && !ecdsa.VerifyASN1(&key.PublicKey, h[:], der))
}
