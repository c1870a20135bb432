package hostcose

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
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
