//go:build !sbm_ed25519only

package p256

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"testing"
)

func TestSignVerify(t *testing.T) {
	d := sha256.Sum256([]byte("p256 test scalar"))
	k, pub, err := NewPrivateKey(d[:])
	if err != nil {
		t.Fatal(err)
	}
	ek, ok := k.Signer().(*ecdsa.PrivateKey)
	if !ok {
		t.Fatalf("Signer is %T", k.Signer())
	}
	want, _ := ek.PublicKey.ECDH()
	if !bytes.Equal(pub, want.Bytes()) || len(pub) != PublicKeySize {
		t.Fatal("raw public key differs from the private key's")
	}
	raw, ok, err := RawPublicKey(&ek.PublicKey)
	if !ok || err != nil || !bytes.Equal(raw, pub) {
		t.Fatalf("RawPublicKey: %x %v %v", raw, ok, err)
	}
	if !IsPublicKey(&ek.PublicKey) {
		t.Fatal("IsPublicKey false for a P-256 key")
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	if IsPublicKey(&p384.PublicKey) || IsPublicKey(edPub) {
		t.Fatal("IsPublicKey true for another key")
	}
	if _, ok, _ := RawPublicKey(edPub); ok {
		t.Fatal("RawPublicKey ok for an Ed25519 key")
	}

	h := sha256.Sum256([]byte("message"))
	sig, err := k.SignASN1(rand.Reader, h[:])
	if err != nil {
		t.Fatal(err)
	}
	pk, err := ParsePublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if !pk.VerifyASN1(h[:], sig) {
		t.Fatal("signature does not verify")
	}
	h[0] ^= 1
	if pk.VerifyASN1(h[:], sig) {
		t.Fatal("signature verifies for another digest")
	}
	if ECDH() == nil {
		t.Fatal("no ECDH curve")
	}
}

func TestParseRefuses(t *testing.T) {
	d := sha256.Sum256([]byte("p256 test scalar"))
	_, pub, _ := NewPrivateKey(d[:])
	off := bytes.Clone(pub)
	off[64] ^= 1 // not on the curve
	compressed := append([]byte{2 + pub[64]&1}, pub[1:33]...)
	inf := make([]byte, PublicKeySize)
	inf[0] = 4
	for name, raw := range map[string][]byte{
		"off the curve": off, "compressed": compressed, "infinity": inf,
		"truncated": pub[:64], "empty": nil,
	} {
		if _, err := ParsePublicKey(raw); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	var zero, n [32]byte
	copy(n[:], elliptic.P256().Params().N.Bytes())
	for name, d := range map[string][]byte{"zero": zero[:], "n": n[:], "short": d[:31]} {
		if _, _, err := NewPrivateKey(d); err == nil {
			t.Errorf("scalar %s: accepted", name)
		}
	}
}
