package smallaes

import (
	"bytes"
	"crypto/aes"
	"encoding/hex"
	"math/rand/v2"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFIPS197 checks the example vectors of FIPS 197 Appendix C, both
// directions.
func TestFIPS197(t *testing.T) {
	pt := "00112233445566778899aabbccddeeff"
	for _, tc := range []struct{ name, key, ct string }{
		{"AES-128", "000102030405060708090a0b0c0d0e0f", "69c4e0d86a7b0430d8cdb78070b4c55a"},
		{"AES-192", "000102030405060708090a0b0c0d0e0f1011121314151617", "dda97ca4864cdfe06eaf70a0ec0d7191"},
		{"AES-256", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", "8ea2b7ca516745bfeafc49904b496089"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := NewCipher(unhex(t, tc.key))
			if err != nil {
				t.Fatal(err)
			}
			got := make([]byte, 16)
			b.Encrypt(got, unhex(t, pt))
			if !bytes.Equal(got, unhex(t, tc.ct)) {
				t.Fatalf("Encrypt = %x, want %s", got, tc.ct)
			}
			b.Decrypt(got, got) // in place
			if !bytes.Equal(got, unhex(t, pt)) {
				t.Fatalf("Decrypt = %x, want %s", got, pt)
			}
		})
	}
}

// TestAgainstStdlib compares both directions with crypto/aes on random
// keys and blocks of every key size.
func TestAgainstStdlib(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{16, 24, 32} {
		for i := 0; i < 200; i++ {
			key, in := make([]byte, n), make([]byte, 16)
			fill(rng, key)
			fill(rng, in)
			ours, err := NewCipher(key)
			if err != nil {
				t.Fatal(err)
			}
			std, _ := aes.NewCipher(key)
			got, want := make([]byte, 16), make([]byte, 16)
			ours.Encrypt(got, in)
			std.Encrypt(want, in)
			if !bytes.Equal(got, want) {
				t.Fatalf("AES-%d key %x: Encrypt(%x) = %x, crypto/aes %x", 8*n, key, in, got, want)
			}
			ours.Decrypt(got, in)
			std.Decrypt(want, in)
			if !bytes.Equal(got, want) {
				t.Fatalf("AES-%d key %x: Decrypt(%x) = %x, crypto/aes %x", 8*n, key, in, got, want)
			}
		}
	}
}

func TestKeySize(t *testing.T) {
	for _, n := range []int{0, 1, 15, 17, 23, 31, 33, 64} {
		if _, err := NewCipher(make([]byte, n)); err != ErrKeySize {
			t.Errorf("NewCipher(%d bytes) err = %v, want ErrKeySize", n, err)
		}
		if _, err := NewGCM(make([]byte, n)); err != ErrKeySize {
			t.Errorf("NewGCM(%d bytes) err = %v, want ErrKeySize", n, err)
		}
	}
}

// TestTables derives the S-box from its definition (FIPS 197 §5.1.1: the
// multiplicative inverse in GF(2^8), then the affine map) and checks both
// constants.
func TestTables(t *testing.T) {
	mul := func(a, b byte) (p byte) {
		for ; b != 0; b >>= 1 {
			if b&1 != 0 {
				p ^= a
			}
			a = a<<1 ^ (a>>7)*0x1b
		}
		return p
	}
	for i := 0; i < 256; i++ {
		var x byte
		for j := 1; i != 0 && j < 256; j++ {
			if mul(byte(i), byte(j)) == 1 {
				x = byte(j)
			}
		}
		rot := func(n int) byte { return x<<n | x>>(8-n) }
		s := x ^ rot(1) ^ rot(2) ^ rot(3) ^ rot(4) ^ 0x63
		if sbox[i] != s {
			t.Fatalf("sbox[%#x] = %#x, want %#x", i, sbox[i], s)
		}
		if invSbox[s] != byte(i) {
			t.Fatalf("invSbox[%#x] = %#x, want %#x", s, invSbox[s], i)
		}
	}
}

func fill(rng *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
}

func BenchmarkEncrypt(b *testing.B) {
	c, _ := NewCipher(make([]byte, 32))
	var blk [16]byte
	b.SetBytes(16)
	for b.Loop() {
		c.Encrypt(blk[:], blk[:])
	}
}

// BenchmarkEncryptStdlib is the same with crypto/aes, for the ratio.
func BenchmarkEncryptStdlib(b *testing.B) {
	c, _ := aes.NewCipher(make([]byte, 32))
	var blk [16]byte
	b.SetBytes(16)
	for b.Loop() {
		c.Encrypt(blk[:], blk[:])
	}
}
