package cose_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"math/big"
	"testing"

	"github.com/sbm-project/sbm/attest"
	"github.com/sbm-project/sbm/internal/cose"
)

// TestAttestationTokenLowS checks the attestation token (which the SBM
// signs through this package, docs/spec/attestation.md): the tokens are
// low-S, and a token whose signature is turned into its high-S twin is
// refused by attest.Verify.
func TestAttestationTokenLowS(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := key.PublicKey.Bytes()
	claims := &attest.Claims{
		Nonce:     bytes.Repeat([]byte{7}, 16),
		DeviceID:  bytes.Repeat([]byte{0xd1}, 16),
		Lifecycle: attest.LifecycleLocked,
		SBM:       attest.Component{Type: attest.TypeSBM, Version: "0.1.0"},
	}
	for i := 0; i < 50; i++ {
		claims.Nonce[0] = byte(i)
		tok, err := attest.Append(nil, claims, key, cose.AlgES256)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := attest.Verify(tok, cose.AlgES256, pub); err != nil {
			t.Fatalf("token %d: %v", i, err)
		}
		s, err := cose.DecodeSign1(tok)
		if err != nil {
			t.Fatal(err)
		}
		if !cose.IsLowS(s.Signature) {
			t.Fatalf("token %d is high-S", i)
		}
		sig := bytes.Clone(s.Signature)
		n := elliptic.P256().Params().N
		new(big.Int).Sub(n, new(big.Int).SetBytes(sig[32:])).FillBytes(sig[32:])
		high := cose.AppendSign1(nil, s.Protected, s.Unprotected, s.Payload, sig)
		if _, err := attest.Verify(high, cose.AlgES256, pub); err == nil {
			t.Fatalf("high-S token %d accepted", i)
		}
		if err := cose.VerifySignature(cose.AlgES256, pub, s.Protected, s.Payload, sig); !errors.Is(err, cose.ErrHighS) {
			t.Fatalf("high-S token %d: %v", i, err)
		}
	}
}
