//go:build tinygo && !sbmfw_p256 && !sbmfw_board

package main

import "crypto/ed25519"

// ed25519Check signs and verifies with Ed25519 (the Ed25519 suite's
// identity and verification primitive) and checks a forgery is refused.
func ed25519Check() bool {
	var seed [ed25519.SeedSize]byte
	for i := range seed {
		seed[i] = byte(i)
	}
	priv := ed25519.NewKeyFromSeed(seed[:])
	pub := priv.Public().(ed25519.PublicKey)
	sig := ed25519.Sign(priv, testBuffer)
	ok := ed25519.Verify(pub, testBuffer, sig)
	sig[0] ^= 1
	return check("Ed25519 sign, verify, refuse a forgery", ok && !ed25519.Verify(pub, testBuffer, sig))
}
