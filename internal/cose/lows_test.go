package cose

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/asn1"
	"errors"
	"io"
	"math/big"
	"testing"
)

func TestLowSConstants(t *testing.T) {
	n := elliptic.P256().Params().N
	if got := new(big.Int).SetBytes(p256Order[:]); got.Cmp(n) != 0 {
		t.Errorf("p256Order = %x, want %x", got, n)
	}
	if got := new(big.Int).SetBytes(p256HalfOrder[:]); got.Cmp(new(big.Int).Rsh(n, 1)) != 0 {
		t.Errorf("p256HalfOrder = %x, want %x", got, new(big.Int).Rsh(n, 1))
	}
}

// highS returns the other signature of the pair: r ‖ n − s.
func highS(sig []byte) []byte {
	n := elliptic.P256().Params().N
	s := new(big.Int).SetBytes(sig[32:])
	out := bytes.Clone(sig)
	new(big.Int).Sub(n, s).FillBytes(out[32:])
	return out
}

func TestNormalizeLowS(t *testing.T) {
	n := elliptic.P256().Params().N
	half := new(big.Int).Rsh(n, 1)
	sig := func(s *big.Int) []byte {
		b := make([]byte, 64)
		b[0] = 1
		s.FillBytes(b[32:])
		return b
	}
	one := big.NewInt(1)
	tests := []struct {
		name string
		s    *big.Int
		low  bool
		want *big.Int // after NormalizeLowS
	}{
		{"1", one, true, one},
		{"n/2", half, true, half},
		{"n/2+1", new(big.Int).Add(half, one), false, half},
		{"n-1", new(big.Int).Sub(n, one), false, one},
		{"n (invalid, unchanged)", n, false, n},
		{"2^256-1 (invalid, unchanged)", new(big.Int).Sub(new(big.Int).Lsh(one, 256), one), false, new(big.Int).Sub(new(big.Int).Lsh(one, 256), one)},
	}
	for _, tt := range tests {
		b := sig(tt.s)
		if got := IsLowS(b); got != tt.low {
			t.Errorf("%s: IsLowS = %v, want %v", tt.name, got, tt.low)
		}
		NormalizeLowS(b)
		if got := new(big.Int).SetBytes(b[32:]); got.Cmp(tt.want) != 0 || b[0] != 1 {
			t.Errorf("%s: NormalizeLowS gave s = %x, want %x", tt.name, got, tt.want)
		}
	}
	if IsLowS(make([]byte, 63)) {
		t.Error("IsLowS accepted a 63-byte signature")
	}
	for i := 0; i < 1000; i++ {
		b := make([]byte, 64)
		rand.Read(b)
		s := new(big.Int).SetBytes(b[32:])
		NormalizeLowS(b)
		got := new(big.Int).SetBytes(b[32:])
		switch {
		case s.Cmp(n) >= 0:
			if got.Cmp(s) != 0 {
				t.Fatalf("s ≥ n changed: %x", s)
			}
		case s.Cmp(half) > 0:
			if want := new(big.Int).Sub(n, s); got.Cmp(want) != 0 {
				t.Fatalf("n − %x = %x, want %x", s, got, want)
			}
		default:
			if got.Cmp(s) != 0 {
				t.Fatalf("low s %x changed", s)
			}
		}
	}
}

// highSigner returns, for ES256, always the high-S signature of the pair,
// as a crypto.Signer (an HSM, say) may.
type highSigner struct{ *ecdsa.PrivateKey }

func (h highSigner) Sign(r io.Reader, digest []byte, o crypto.SignerOpts) ([]byte, error) {
	der, err := h.PrivateKey.Sign(r, digest, o)
	if err != nil {
		return nil, err
	}
	var sig struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &sig); err != nil {
		return nil, err
	}
	n := elliptic.P256().Params().N
	if sig.S.Cmp(new(big.Int).Rsh(n, 1)) <= 0 {
		sig.S.Sub(n, sig.S)
	}
	return asn1.Marshal(sig)
}

// TestSignLowS signs many messages, with a random and with an always-high-S
// signer: every signature is low-S and verifies, and its high-S twin, which
// crypto/ecdsa accepts, is refused.
func TestSignLowS(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := key.PublicKey.Bytes()
	kid := sha256.Sum256(pub)
	prot := AppendProtected(nil, AlgES256, "text/plain", kid[:])
	for _, signer := range []crypto.Signer{key, highSigner{key}} {
		for i := 0; i < 200; i++ {
			payload := []byte{byte(i), byte(i >> 8)}
			msg, err := Sign(nil, rand.Reader, signer, AlgES256, prot, nil, payload)
			if err != nil {
				t.Fatal(err)
			}
			s, err := DecodeSign1(msg)
			if err != nil {
				t.Fatal(err)
			}
			if !IsLowS(s.Signature) {
				t.Fatalf("%T: signature %d is high-S", signer, i)
			}
			if err := s.Verify(AlgES256, pub); err != nil {
				t.Fatalf("%T: signature %d: %v", signer, i, err)
			}
			high := s
			high.Signature = highS(s.Signature)
			var der [maxDERSize]byte
			digest := sha256.Sum256(AppendSigStructure(nil, s.Protected, s.Payload))
			if !ecdsa.VerifyASN1(&key.PublicKey, digest[:], appendDER(der[:0], high.Signature)) {
				t.Fatal("the high-S twin does not verify with crypto/ecdsa: bad test")
			}
			if err := high.Verify(AlgES256, pub); !errors.Is(err, ErrHighS) || !errors.Is(err, ErrSignature) {
				t.Fatalf("high-S signature: %v, want ErrHighS and ErrSignature", err)
			}
		}
	}
}
