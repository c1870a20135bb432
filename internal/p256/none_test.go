//go:build sbm_ed25519only

package p256

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"testing"
)

// TestCompiledOut: with sbm_ed25519only every operation fails and no key
// is a P-256 key (go test -tags sbm_ed25519only ./internal/p256).
func TestCompiledOut(t *testing.T) {
	if Compiled {
		t.Fatal("Compiled is true")
	}
	d := sha256.Sum256([]byte("p256 test scalar"))
	if _, _, err := NewPrivateKey(d[:]); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("NewPrivateKey: %v", err)
	}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	e, _ := k.PublicKey.ECDH()
	if _, err := ParsePublicKey(e.Bytes()); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("ParsePublicKey: %v", err)
	}
	if IsPublicKey(&k.PublicKey) {
		t.Fatal("IsPublicKey true")
	}
	if _, ok, _ := RawPublicKey(&k.PublicKey); ok {
		t.Fatal("RawPublicKey ok")
	}
	if ECDH() != nil {
		t.Fatal("ECDH curve present")
	}
	var pk PublicKey
	if pk.VerifyASN1(d[:], []byte{0x30, 0}) {
		t.Fatal("VerifyASN1 true")
	}
	var sk PrivateKey
	if _, err := sk.SignASN1(rand.Reader, d[:]); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("SignASN1: %v", err)
	}
}
