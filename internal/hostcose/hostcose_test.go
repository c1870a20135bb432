package hostcose

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/asn1"
	"io"
	"math/big"
	"testing"

	"github.com/sbm-project/sbm/internal/cose"
)

// TestSign1VerifiesOnDevice signs with the host encoder and verifies with
// the device-side COSE code, for both suites; the signatures are
// deterministic.
func TestSign1VerifiesOnDevice(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	for _, tc := range []struct {
		name string
		sign func() ([]byte, error)
		alg  int64
		raw  func() ([]byte, error)
	}{
		{"p256", func() ([]byte, error) { return Sign1(ec, ContentTypeManifest, []byte("payload"), []byte("kc")) }, cose.AlgES256, func() ([]byte, error) { return RawPublicKey(&ec.PublicKey) }},
		{"ed25519", func() ([]byte, error) { return Sign1(ed, ContentTypeManifest, []byte("payload"), []byte("kc")) }, cose.AlgEdDSA, func() ([]byte, error) { return RawPublicKey(ed.Public()) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg, err := tc.sign()
			if err != nil {
				t.Fatal(err)
			}
			again, _ := tc.sign()
			if string(again) != string(msg) {
				t.Error("signatures are not deterministic")
			}
			s, err := cose.DecodeSign1(msg)
			if err != nil {
				t.Fatal(err)
			}
			h, err := cose.ParseProtected(s.Protected)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := tc.raw()
			if h.Alg != tc.alg || string(h.ContentType) != ContentTypeManifest || h.KID != sha256.Sum256(raw) {
				t.Fatalf("header = %+v", h)
			}
			if err := s.Verify(h.Alg, raw); err != nil {
				t.Fatalf("device-side verify: %v", err)
			}
			if kc, err := s.UnprotectedBytes(LabelKeyCert); err != nil || string(kc) != "kc" {
				t.Fatalf("key certificate label: %q, %v", kc, err)
			}
			if _, err := Parse(msg, ContentTypeUPK); err == nil {
				t.Fatal("Parse accepted the wrong content type")
			}
		})
	}
}

func TestRawPublicKey(t *testing.T) {
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if _, err := RawPublicKey(&p384.PublicKey); err == nil {
		t.Error("P-384 key accepted")
	}
	if _, err := Algorithm(&p384.PublicKey); err == nil {
		t.Error("P-384 algorithm accepted")
	}
	x, _ := ecdh.X25519().GenerateKey(rand.Reader)
	if raw, err := RawPublicKey(x.PublicKey()); err != nil || len(raw) != 32 {
		t.Errorf("X25519: %d bytes, %v", len(raw), err)
	}
	p, _ := ecdh.P256().GenerateKey(rand.Reader)
	if raw, err := RawPublicKey(p.PublicKey()); err != nil || len(raw) != 65 || raw[0] != 4 {
		t.Errorf("P-256 ECDH: %d bytes, %v", len(raw), err)
	}
}

// hsm stands in for an HSM behind crypto.Signer: it ignores the (nil)
// random source, so its ECDSA signatures are randomised, and it returns the
// high-S signature of the pair whenever it can, as some do.
type hsm struct{ key *ecdsa.PrivateKey }

func (h hsm) Public() crypto.PublicKey { return h.key.Public() }

func (h hsm) Sign(_ io.Reader, digest []byte, _ crypto.SignerOpts) ([]byte, error) {
	r, s, err := ecdsa.Sign(rand.Reader, h.key, digest)
	if err != nil {
		return nil, err
	}
	n := elliptic.P256().Params().N
	if s.Cmp(new(big.Int).Rsh(n, 1)) <= 0 {
		s.Sub(n, s)
	}
	return asn1.Marshal(struct{ R, S *big.Int }{r, s})
}

// TestSign1LowS checks that every ES256 signature Sign1 produces is low-S
// (spec §2), whatever the crypto.Signer returns, and verifies on the device.
func TestSign1LowS(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	raw, _ := RawPublicKey(&key.PublicKey)
	for _, signer := range []crypto.Signer{key, hsm{key}} {
		for i := 0; i < 200; i++ {
			msg, err := Sign1(signer, ContentTypeUPK, []byte{byte(i), byte(i >> 8)}, nil)
			if err != nil {
				t.Fatal(err)
			}
			s, err := cose.DecodeSign1(msg)
			if err != nil {
				t.Fatal(err)
			}
			if !cose.IsLowS(s.Signature) {
				t.Fatalf("%T: signature %d is high-S", signer, i)
			}
			if err := s.Verify(cose.AlgES256, raw); err != nil {
				t.Fatalf("%T: signature %d: %v", signer, i, err)
			}
		}
	}
}

// badSigner returns a fixed DER signature.
type badSigner struct {
	key *ecdsa.PrivateKey
	der []byte
}

func (b badSigner) Public() crypto.PublicKey { return b.key.Public() }
func (b badSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return b.der, nil
}

func TestSign1RejectsBadSignerOutput(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	n := elliptic.P256().Params().N
	for name, sig := range map[string]struct{ R, S *big.Int }{
		"s = 0":     {big.NewInt(1), big.NewInt(0)},
		"s = n":     {big.NewInt(1), n},
		"r < 0":     {big.NewInt(-1), big.NewInt(1)},
		"s > 2^256": {big.NewInt(1), new(big.Int).Lsh(big.NewInt(1), 256)},
	} {
		der, _ := asn1.Marshal(sig)
		if _, err := Sign1(badSigner{key, der}, ContentTypeUPK, []byte("x"), nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
