package pkcs8

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func testKey(t *testing.T) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestRoundTrip(t *testing.T) {
	der := testKey(t)
	enc, err := Encrypt(der, []byte("correct horse"), 1000)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(enc, der[len(der)-32:]) {
		t.Fatal("encrypted key contains plaintext key bytes")
	}
	got, err := Decrypt(enc, []byte("correct horse"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, der) {
		t.Fatal("round trip changed the key")
	}
}

func TestWrongPassphrase(t *testing.T) {
	enc, err := Encrypt(testKey(t), []byte("right"), 1000)
	if err != nil {
		t.Fatal(err)
	}
	// Try many wrong passphrases: padding alone passes ~1/256 of the time,
	// the structure check must catch the rest.
	for i := range 300 {
		_, err := Decrypt(enc, []byte{'w', byte(i), byte(i >> 8)})
		if !errors.Is(err, ErrWrongPassphrase) {
			t.Fatalf("wrong passphrase %d: err = %v, want ErrWrongPassphrase", i, err)
		}
	}
}

func TestMalformed(t *testing.T) {
	enc, err := Encrypt(testKey(t), []byte("pw"), 1000)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(enc); i += 7 {
		if _, err := Decrypt(enc[:i], []byte("pw")); err == nil {
			t.Fatalf("truncated to %d bytes: accepted", i)
		}
	}
	if _, err := Encrypt(testKey(t), nil, 1000); err == nil {
		t.Fatal("empty passphrase accepted")
	}
}

// TestOpenSSLInterop checks OpenSSL decrypts our keys and we decrypt OpenSSL's.
func TestOpenSSLInterop(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed (scripts/test.sh installs it)")
	}
	dir := t.TempDir()
	der := testKey(t)
	enc, err := Encrypt(der, []byte("s3cret"), 2048)
	if err != nil {
		t.Fatal(err)
	}
	ours := filepath.Join(dir, "ours.pem")
	os.WriteFile(ours, pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: enc}), 0o600)
	out, err := exec.Command(openssl, "pkcs8", "-topk8", "-nocrypt", "-in", ours, "-passin", "pass:s3cret", "-outform", "DER").Output()
	if err != nil {
		t.Fatalf("openssl cannot decrypt our key: %v", err)
	}
	if !sameKey(t, out, der) {
		t.Fatal("openssl decrypted a different key")
	}

	plain := filepath.Join(dir, "plain.der")
	os.WriteFile(plain, der, 0o600)
	theirs, err := exec.Command(openssl, "pkcs8", "-topk8", "-inform", "DER", "-in", plain, "-outform", "DER",
		"-v2", "aes-256-cbc", "-v2prf", "hmacWithSHA256", "-passout", "pass:s3cret").Output()
	if err != nil {
		t.Fatalf("openssl pkcs8 -topk8: %v", err)
	}
	got, err := Decrypt(theirs, []byte("s3cret"))
	if err != nil {
		t.Fatalf("decrypting openssl's key: %v", err)
	}
	if !sameKey(t, got, der) {
		t.Fatal("decrypted a different key from openssl's file")
	}
}

// sameKey reports whether two PKCS#8 encodings hold the same private key
// (OpenSSL may re-encode optional fields).
func sameKey(t *testing.T, a, b []byte) bool {
	t.Helper()
	ka, err := x509.ParsePKCS8PrivateKey(a)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.ParsePKCS8PrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return ka.(*ecdsa.PrivateKey).Equal(kb)
}

func FuzzDecrypt(f *testing.F) {
	enc, _ := Encrypt([]byte{0x30, 0x03, 0x02, 0x01, 0x00}, []byte("pw"), 1)
	f.Add(enc)
	f.Fuzz(func(t *testing.T, b []byte) {
		Decrypt(b, []byte("pw")) // must not panic
	})
}
