package smallaes

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"math/rand/v2"
	"testing"
)

// TestGCMVectors checks test cases 1–4 and 13–16 of "The Galois/Counter
// Mode of Operation" (McGrew and Viega, the vectors NIST's GCM
// validation uses), sealing and opening.
func TestGCMVectors(t *testing.T) {
	const (
		k4  = "feffe9928665731c6d6a8f9467308308"
		iv4 = "cafebabefacedbaddecaf888"
		p4  = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39"
		a4  = "feedfacedeadbeeffeedfacedeadbeefabaddad2"
	)
	zero := func(n int) string { return string(bytes.Repeat([]byte("0"), 2*n)) }
	for _, tc := range []struct{ name, key, iv, pt, aad, ct, tag string }{
		{"1", zero(16), zero(12), "", "", "", "58e2fccefa7e3061367f1d57a4e7455a"},
		{"2", zero(16), zero(12), zero(16), "", "0388dace60b6a392f328c2b971b2fe78", "ab6e47d42cec13bdf53a67b21257bddf"},
		{"3", k4, iv4, p4 + "1aafd255", "",
			"42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985",
			"4d5c2af327cd64a62cf35abd2ba6fab4"},
		{"4", k4, iv4, p4, a4,
			"42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091",
			"5bc94fbc3221a5db94fae95ae7121a47"},
		{"13", zero(32), zero(12), "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"},
		{"14", zero(32), zero(12), zero(16), "", "cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919"},
		{"15", k4 + k4, iv4, p4 + "1aafd255", "",
			"522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad",
			"b094dac5d93471bdec1a502270e3cc6c"},
		{"16", k4 + k4, iv4, p4, a4,
			"522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
			"76fc6ece0f4e1768cddf8853bb2d551b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := NewGCM(unhex(t, tc.key))
			if err != nil {
				t.Fatal(err)
			}
			iv, pt, aad := (*[12]byte)(unhex(t, tc.iv)), unhex(t, tc.pt), unhex(t, tc.aad)
			want := unhex(t, tc.ct+tc.tag)
			got, err := g.Seal(nil, iv, pt, aad)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("Seal = %x, want %x", got, want)
			}
			back, err := g.Open(nil, iv, want, aad)
			if err != nil || !bytes.Equal(back, pt) {
				t.Fatalf("Open = %x, %v; want %x", back, err, pt)
			}
		})
	}
}

// TestGCMAgainstStdlib seals random messages of every length up to three
// blocks and beyond with both implementations, and opens each message
// with one bit of its ciphertext, tag or additional data flipped:
// both must refuse, and Open must leave dst untouched.
func TestGCMAgainstStdlib(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{16, 32} {
		key := make([]byte, n)
		fill(rng, key)
		ours, _ := NewGCM(key)
		blk, _ := aes.NewCipher(key)
		std, _ := cipher.NewGCM(blk)
		for size := 0; size < 70; size++ {
			var nonce [12]byte
			pt, aad := make([]byte, size), make([]byte, size%21)
			fill(rng, nonce[:])
			fill(rng, pt)
			fill(rng, aad)
			sealed, _ := ours.Seal(nil, &nonce, pt, aad)
			if want := std.Seal(nil, nonce[:], pt, aad); !bytes.Equal(sealed, want) {
				t.Fatalf("AES-%d size %d: Seal = %x, crypto/cipher %x", 8*n, size, sealed, want)
			}
			// In place, as the SBM decrypts a chunk in its buffer.
			buf := append([]byte(nil), sealed...)
			out, err := ours.Open(buf[:0], &nonce, buf, aad)
			if err != nil || !bytes.Equal(out, pt) {
				t.Fatalf("AES-%d size %d: in-place Open = %x, %v", 8*n, size, out, err)
			}
			for bit := 0; bit < 8*(len(sealed)+len(aad)); bit += 1 + bit/8 {
				ct, a := append([]byte(nil), sealed...), append([]byte(nil), aad...)
				if i := bit / 8; i < len(ct) {
					ct[i] ^= 1 << (bit % 8)
				} else {
					a[i-len(ct)] ^= 1 << (bit % 8)
				}
				dst := []byte("prefix")
				got, err := ours.Open(dst, &nonce, ct, a)
				if err != ErrOpen || got != nil || string(dst) != "prefix" {
					t.Fatalf("AES-%d size %d bit %d flipped: Open = %x, %v; want ErrOpen", 8*n, size, bit, got, err)
				}
				if _, err := std.Open(nil, nonce[:], ct, a); err == nil {
					t.Fatalf("crypto/cipher accepted bit %d flipped", bit)
				}
			}
		}
	}
}

func TestGCMShort(t *testing.T) {
	g, _ := NewGCM(make([]byte, 16))
	for n := 0; n < TagSize; n++ {
		if _, err := g.Open(nil, new([12]byte), make([]byte, n), nil); err != ErrOpen {
			t.Errorf("Open of %d bytes: err = %v, want ErrOpen", n, err)
		}
	}
}

// FuzzGCMOpen opens arbitrary bytes under an arbitrary key and nonce with
// both implementations: they must agree on the result (a random input
// almost never authenticates, so the seed corpus includes sealed ones).
func FuzzGCMOpen(f *testing.F) {
	key := make([]byte, 32)
	g, _ := NewGCM(key)
	sealed, _ := g.Seal(nil, new([12]byte), []byte("chunk"), nil)
	f.Add(key, make([]byte, 12), sealed, []byte{})
	f.Add(key[:16], []byte("nonce-nonce-"), []byte("short"), []byte("aad"))
	f.Fuzz(func(t *testing.T, key, nonce, ct, aad []byte) {
		if len(nonce) != 12 {
			return
		}
		ours, err := NewGCM(key)
		blk, err2 := aes.NewCipher(key)
		if (err == nil) != (err2 == nil) {
			t.Fatalf("key of %d bytes: NewGCM %v, crypto/aes %v", len(key), err, err2)
		}
		if err != nil {
			return
		}
		std, _ := cipher.NewGCM(blk)
		got, err := ours.Open(nil, (*[12]byte)(nonce), ct, aad)
		want, err2 := std.Open(nil, nonce, ct, aad)
		if (err == nil) != (err2 == nil) || !bytes.Equal(got, want) {
			t.Fatalf("Open = %x, %v; crypto/cipher %x, %v", got, err, want, err2)
		}
		// Tamper with an accepted message's first byte.
		if err == nil && len(ct) > 0 {
			ct[0] ^= 0x80
			if _, err := ours.Open(nil, (*[12]byte)(nonce), ct, aad); err != ErrOpen {
				t.Fatalf("tampered message: err = %v", err)
			}
		}
	})
}

func BenchmarkGCMOpen4KiB(b *testing.B) {
	g, _ := NewGCM(make([]byte, 32))
	sealed, _ := g.Seal(nil, new([12]byte), make([]byte, 4096), nil)
	out := make([]byte, 0, 4096)
	b.SetBytes(4096)
	for b.Loop() {
		if _, err := g.Open(out, new([12]byte), sealed, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGCMOpen4KiBStdlib is the same with crypto/cipher, for the
// ratio.
func BenchmarkGCMOpen4KiBStdlib(b *testing.B) {
	blk, _ := aes.NewCipher(make([]byte, 32))
	g, _ := cipher.NewGCM(blk)
	sealed := g.Seal(nil, make([]byte, 12), make([]byte, 4096), nil)
	out := make([]byte, 0, 4096)
	b.SetBytes(4096)
	for b.Loop() {
		if _, err := g.Open(out, make([]byte, 12), sealed, nil); err != nil {
			b.Fatal(err)
		}
	}
}
