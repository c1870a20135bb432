package cose

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"testing"

	gocose "github.com/veraison/go-cose"
)

// TestGoCOSEInterop checks that messages signed by go-cose (which the host
// encoder uses) verify here, and that messages signed here verify with
// go-cose.
func TestGoCOSEInterop(t *testing.T) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecPub, _ := ecKey.PublicKey.Bytes()
	edPub, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		alg    int64
		goAlg  gocose.Algorithm
		key    crypto.Signer
		pub    crypto.PublicKey
		rawPub []byte
	}{
		{"ES256", AlgES256, gocose.AlgorithmES256, ecKey, &ecKey.PublicKey, ecPub},
		{"EdDSA", AlgEdDSA, gocose.AlgorithmEdDSA, edKey, edPub, edPub},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			kid := sha256.Sum256(c.rawPub)
			payload := []byte{0xa1, 0x01, 0x01}

			// go-cose -> this package.
			signer, err := gocose.NewSigner(c.goAlg, c.key)
			if err != nil {
				t.Fatal(err)
			}
			m := gocose.NewSign1Message()
			m.Headers.Protected.SetAlgorithm(c.goAlg)
			m.Headers.Protected[gocose.HeaderLabelContentType] = "application/vnd.sbm.manifest+cbor"
			m.Headers.Protected[gocose.HeaderLabelKeyID] = kid[:]
			m.Headers.Unprotected[int64(-65537)] = []byte("keycert")
			m.Payload = payload
			if err := m.Sign(rand.Reader, nil, signer); err != nil {
				t.Fatal(err)
			}
			msg, err := m.MarshalCBOR()
			if err != nil {
				t.Fatal(err)
			}
			s, err := DecodeSign1(msg)
			if err != nil {
				t.Fatalf("DecodeSign1(go-cose): %v", err)
			}
			h, err := ParseProtected(s.Protected)
			if err != nil || h.Alg != c.alg || h.KID != kid || string(h.ContentType) != "application/vnd.sbm.manifest+cbor" {
				t.Fatalf("ParseProtected(go-cose) = %+v, %v", h, err)
			}
			if v, err := s.UnprotectedBytes(-65537); err != nil || string(v) != "keycert" {
				t.Errorf("UnprotectedBytes = %q, %v", v, err)
			}
			if c.alg == AlgES256 && !IsLowS(s.Signature) {
				// go-cose does not normalise: this package refuses the
				// high-S signature (spec §2) and accepts its low-S twin.
				if err := s.Verify(c.alg, c.rawPub); !errors.Is(err, ErrHighS) {
					t.Errorf("Verify(go-cose high-S message): %v, want ErrHighS", err)
				}
				s.Signature = bytes.Clone(s.Signature)
				NormalizeLowS(s.Signature)
			}
			if err := s.Verify(c.alg, c.rawPub); err != nil {
				t.Errorf("Verify(go-cose message): %v", err)
			}

			// this package -> go-cose.
			prot := AppendProtected(nil, c.alg, "application/vnd.sbm.upk+cbor", kid[:])
			ours, err := Sign(nil, rand.Reader, c.key, c.alg, prot, nil, payload)
			if err != nil {
				t.Fatal(err)
			}
			var back gocose.Sign1Message
			if err := back.UnmarshalCBOR(ours); err != nil {
				t.Fatalf("go-cose cannot decode our message: %v", err)
			}
			verifier, err := gocose.NewVerifier(c.goAlg, c.pub)
			if err != nil {
				t.Fatal(err)
			}
			if err := back.Verify(nil, verifier); err != nil {
				t.Errorf("go-cose rejects our signature: %v", err)
			}
		})
	}
}
