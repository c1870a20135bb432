package secpkg

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"testing"
	"time"
)

const benchSize = 1 << 20

// benchFixture encrypts 1 MiB in 4 KiB chunks.
func benchFixture(b *testing.B) (*Manifest, [32]byte, [][]byte) {
	c := newCtx(b, SuiteEd25519)
	p := c.build(benchSize, 4096)
	m, err := VerifyManifest(c.anchors, p.manifest)
	if err != nil {
		b.Fatal(err)
	}
	return m, p.cek, encryptChunks(p.cek, m.NoncePrefix, 4096, p.plain)
}

func decryptOnce(b *testing.B, m *Manifest, cek *[32]byte, chunks [][]byte, buf []byte) {
	d, err := NewDecrypter(cek, m)
	if err != nil {
		b.Fatal(err)
	}
	for _, ch := range chunks {
		copy(buf, ch)
		if _, err := d.Open(buf[:0], buf[:len(ch)]); err != nil {
			b.Fatal(err)
		}
	}
	if err := d.Finish(); err != nil {
		b.Fatal(err)
	}
}

// rawOnce is the baseline: crypto/cipher AES-256-GCM over the same chunks
// plus SHA-256 of the plaintext, with no format logic.
func rawOnce(b *testing.B, aead cipher.AEAD, prefix [7]byte, chunks [][]byte, buf []byte) {
	h := sha256.New()
	var nonce [12]byte
	copy(nonce[:], prefix[:])
	for j, ch := range chunks {
		binary.BigEndian.PutUint32(nonce[7:], uint32(j))
		nonce[11] = 0
		if j == len(chunks)-1 {
			nonce[11] = 1
		}
		copy(buf, ch)
		out, err := aead.Open(buf[:0], nonce[:], buf[:len(ch)], nil)
		if err != nil {
			b.Fatal(err)
		}
		h.Write(out)
	}
	h.Sum(nil)
}

// BenchmarkDecrypt1MiB measures the Decrypter on 1 MiB in 4 KiB chunks and,
// in the same run, the raw AES-256-GCM + SHA-256 baseline; it reports the
// ratio of the two as x-raw.
func BenchmarkDecrypt1MiB(b *testing.B) {
	m, cek, chunks := benchFixture(b)
	block, _ := aes.NewCipher(cek[:])
	aead, _ := cipher.NewGCM(block)
	buf := make([]byte, 4096+16)

	b.Run("secpkg", func(b *testing.B) {
		b.SetBytes(benchSize)
		for b.Loop() {
			decryptOnce(b, m, &cek, chunks, buf)
		}
	})
	b.Run("raw", func(b *testing.B) {
		b.SetBytes(benchSize)
		for b.Loop() {
			rawOnce(b, aead, m.NoncePrefix, chunks, buf)
		}
	})
	b.Run("ratio", func(b *testing.B) {
		// Alternate both in one loop so they see the same machine load;
		// each iteration processes the megabyte twice.
		b.SetBytes(2 * benchSize)
		var ours, raw time.Duration
		for b.Loop() {
			t0 := time.Now()
			decryptOnce(b, m, &cek, chunks, buf)
			t1 := time.Now()
			rawOnce(b, aead, m.NoncePrefix, chunks, buf)
			ours += t1.Sub(t0)
			raw += time.Since(t1)
		}
		if raw > 0 {
			b.ReportMetric(float64(ours)/float64(raw), "x-raw")
		}
	})
}
