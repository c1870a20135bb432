package image

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"testing"

	"github.com/sbm-project/sbm/internal/secpkg"
)

// rawOpener returns a function doing only the raw work of verifying a
// payload: AES-256-GCM open of each chunk and SHA-256 of the plaintext.
func rawOpener(b *testing.B, cek *[32]byte, manifest, payload []byte) func() {
	m, err := secpkg.DecodeManifest(manifest)
	if err != nil {
		b.Fatal(err)
	}
	block, _ := aes.NewCipher(cek[:])
	gcm, _ := cipher.NewGCM(block)
	chunk := int(m.ChunkSize) + 16
	buf := make([]byte, 0, chunk)
	nonce := make([]byte, 12)
	copy(nonce, m.NoncePrefix[:])
	return func() {
		h := sha256.New()
		n := (len(payload) + chunk - 1) / chunk
		for i := range n {
			binary.BigEndian.PutUint32(nonce[7:], uint32(i))
			nonce[11] = 0
			end := (i + 1) * chunk
			if i == n-1 {
				nonce[11] = 1
				end = len(payload)
			}
			pt, err := gcm.Open(buf[:0], nonce, payload[i*chunk:end], nil)
			if err != nil {
				b.Fatal(err)
			}
			h.Write(pt)
		}
		h.Sum(nil)
	}
}

// rawSealer returns a function doing only the raw work of creating a
// package: AES-256-GCM seal of each chunk of data, SHA-256 of data, and one
// signature with the image-signing key over a manifest-sized message.
func rawSealer(b *testing.B, signer crypto.Signer, ed25519 bool, data []byte, chunk int) func() {
	var cek [32]byte
	block, _ := aes.NewCipher(cek[:])
	gcm, _ := cipher.NewGCM(block)
	buf := make([]byte, 0, chunk+16)
	nonce := make([]byte, 12)
	msg := make([]byte, 400)
	return func() {
		h := sha256.New()
		n := (len(data) + chunk - 1) / chunk
		for i := range n {
			binary.BigEndian.PutUint32(nonce[7:], uint32(i))
			nonce[11] = 0
			end := (i + 1) * chunk
			if i == n-1 {
				nonce[11] = 1
				end = len(data)
			}
			buf = gcm.Seal(buf[:0], nonce, data[i*chunk:end], nil)
			h.Write(data[i*chunk : end])
		}
		copy(msg, h.Sum(nil))
		var err error
		if ed25519 {
			_, err = signer.Sign(nil, msg, crypto.Hash(0))
		} else {
			d := sha256.Sum256(msg)
			_, err = signer.Sign(rand.Reader, d[:], crypto.SHA256)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}
