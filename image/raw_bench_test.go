package image

import (
	"crypto/aes"
	"crypto/cipher"
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
