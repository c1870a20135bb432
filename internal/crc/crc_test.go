package crc

import (
	"hash/crc32"
	"math/rand/v2"
	"testing"
)

// TestAgainstHashCRC32 compares both checksums with hash/crc32 on random
// inputs of every length up to 300 bytes, and Castagnoli's update in
// pieces.
func TestAgainstHashCRC32(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	tab := crc32.MakeTable(crc32.Castagnoli)
	for n := 0; n < 300; n++ {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(rng.Uint32())
		}
		if got, want := Castagnoli(p), crc32.Checksum(p, tab); got != want {
			t.Fatalf("Castagnoli(%d bytes) = %#x, hash/crc32 %#x", n, got, want)
		}
		if got, want := IEEE(p), crc32.ChecksumIEEE(p); got != want {
			t.Fatalf("IEEE(%d bytes) = %#x, hash/crc32 %#x", n, got, want)
		}
		cut := n / 3
		if got, want := UpdateCastagnoli(Castagnoli(p[:cut]), p[cut:]), crc32.Checksum(p, tab); got != want {
			t.Fatalf("UpdateCastagnoli in two pieces (%d bytes) = %#x, want %#x", n, got, want)
		}
	}
}

// TestCheckValues checks the catalogued check values (the CRC of the
// ASCII digits "123456789").
func TestCheckValues(t *testing.T) {
	p := []byte("123456789")
	if got := Castagnoli(p); got != 0xe3069283 {
		t.Errorf("CRC-32C check = %#x, want 0xe3069283", got)
	}
	if got := IEEE(p); got != 0xcbf43926 {
		t.Errorf("CRC-32 check = %#x, want 0xcbf43926", got)
	}
}

func BenchmarkCastagnoli4KiB(b *testing.B) {
	p := make([]byte, 4096)
	b.SetBytes(4096)
	for b.Loop() {
		Castagnoli(p)
	}
}
