package secpkg

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"testing"
)

// streamFixture is a verified manifest with its CEK and encrypted chunks.
type streamFixture struct {
	m      *Manifest
	cek    [32]byte
	chunks [][]byte
	plain  []byte
}

func newStream(t *testing.T, size int, chunkSize uint32) *streamFixture {
	t.Helper()
	c := newCtx(t, SuiteEd25519)
	p := c.build(size, chunkSize)
	m, err := VerifyManifest(c.anchors, p.manifest)
	if err != nil {
		t.Fatal(err)
	}
	var prefix [7]byte
	copy(prefix[:], m.NoncePrefix[:])
	return &streamFixture{m: m, cek: p.cek, chunks: encryptChunks(p.cek, prefix, int(chunkSize), p.plain), plain: p.plain}
}

// feed opens the given chunks in order and finishes.
func (f *streamFixture) feed(chunks [][]byte) ([]byte, error) {
	d, err := NewDecrypter(&f.cek, f.m)
	if err != nil {
		return nil, err
	}
	var out []byte
	for _, ch := range chunks {
		out, err = d.Open(out, ch)
		if err != nil {
			return nil, err
		}
	}
	return out, d.Finish()
}

func chunkErr(t *testing.T, name string, err error, index int, kind error) {
	t.Helper()
	var ce *ChunkError
	if !errors.As(err, &ce) || ce.Index != index || !errors.Is(err, kind) {
		t.Errorf("%s: error %v, want chunk %d: %v", name, err, index, kind)
	}
}

func TestDecrypter(t *testing.T) {
	f := newStream(t, 5*1024+100, 1024) // 6 chunks, the last of 100 bytes
	if len(f.chunks) != 6 || len(f.chunks[5]) != 116 {
		t.Fatalf("fixture: %d chunks", len(f.chunks))
	}
	out, err := f.feed(f.chunks)
	if err != nil || !bytes.Equal(out, f.plain) {
		t.Fatalf("valid stream: %v", err)
	}
	d, _ := NewDecrypter(&f.cek, f.m)
	if d.NumChunks() != 6 || d.NextChunkLen() != 1040 || d.MaxChunkLen() != 1040 {
		t.Errorf("NumChunks %d NextChunkLen %d", d.NumChunks(), d.NextChunkLen())
	}

	// Every flipped bit position class in every chunk.
	for j := range f.chunks {
		for _, pos := range []int{0, len(f.chunks[j]) / 2, len(f.chunks[j]) - 17, len(f.chunks[j]) - 1} {
			chunks := append([][]byte(nil), f.chunks...)
			chunks[j] = bytes.Clone(chunks[j])
			chunks[j][pos] ^= 0x04
			_, err := f.feed(chunks)
			chunkErr(t, "flip", err, j, ErrChunk)
		}
	}
	msg := ""
	if _, err := f.feed(append([][]byte{f.chunks[0], bytes.Repeat([]byte{1}, 1040)}, f.chunks[2:]...)); err != nil {
		msg = err.Error()
	}
	if msg != "secpkg: chunk 1 of 6: authentication failed" {
		t.Errorf("message %q", msg)
	}

	swap := append([][]byte(nil), f.chunks...)
	swap[1], swap[2] = swap[2], swap[1]
	_, err = f.feed(swap)
	chunkErr(t, "reordered", err, 1, ErrChunk)

	dup := append([][]byte{f.chunks[0], f.chunks[0]}, f.chunks[1:]...)
	_, err = f.feed(dup)
	chunkErr(t, "duplicated", err, 1, ErrChunk)

	_, err = f.feed(f.chunks[:5])
	chunkErr(t, "last chunk dropped", err, 5, ErrTruncated)

	// The second-to-last chunk presented as last: wrong length, and with
	// a forged length it would fail authentication (last flag).
	_, err = f.feed(append(append([][]byte(nil), f.chunks[:4]...), f.chunks[5]))
	chunkErr(t, "chunk 4 dropped", err, 4, ErrTruncated)

	cut := append(append([][]byte(nil), f.chunks[:5]...), f.chunks[5][:50])
	_, err = f.feed(cut)
	chunkErr(t, "cut mid-chunk", err, 5, ErrTruncated)

	_, err = f.feed(append(append([][]byte(nil), f.chunks...), f.chunks[5]))
	chunkErr(t, "extra trailing chunk", err, 6, ErrTrailingData)

	long := append(append([][]byte(nil), f.chunks[:5]...), append(bytes.Clone(f.chunks[5]), 0))
	_, err = f.feed(long)
	chunkErr(t, "long last chunk", err, 5, ErrTrailingData)

	// After an error, the decrypter stays failed.
	d, _ = NewDecrypter(&f.cek, f.m)
	d.Open(nil, f.chunks[1])
	if _, err := d.Open(nil, f.chunks[0]); err == nil || d.NextChunkLen() != 0 || d.Finish() == nil {
		t.Error("decrypter recovered after an error")
	}

	// Wrong key.
	var other [32]byte
	rand.Read(other[:])
	g := *f
	g.cek = other
	_, err = g.feed(f.chunks)
	chunkErr(t, "wrong key", err, 0, ErrChunk)

	// Authentic chunks but a manifest with another digest.
	mm := *f.m
	mm.PayloadDigest = sha256.Sum256([]byte("other"))
	g = *f
	g.m = &mm
	_, err = g.feed(f.chunks)
	if !errors.Is(err, ErrDigest) {
		t.Errorf("digest mismatch: %v", err)
	}
}

func TestDecrypterShapes(t *testing.T) {
	for _, tc := range []struct {
		size  int
		chunk uint32
		n     int
	}{{1, 256, 1}, {256, 256, 1}, {257, 256, 2}, {4096, 4096, 1}, {70000, 65536, 2}} {
		f := newStream(t, tc.size, tc.chunk)
		if len(f.chunks) != tc.n || int(f.m.NumChunks()) != tc.n || f.m.EncryptedSize() != int64(tc.size+16*tc.n) {
			t.Errorf("size %d chunk %d: %d chunks", tc.size, tc.chunk, len(f.chunks))
		}
		out, err := f.feed(f.chunks)
		if err != nil || !bytes.Equal(out, f.plain) {
			t.Errorf("size %d chunk %d: %v", tc.size, tc.chunk, err)
		}
	}
	var cek [32]byte
	if _, err := NewDecrypter(&cek, &Manifest{PayloadSize: 10, ChunkSize: 100}); !errors.Is(err, ErrMalformed) {
		t.Errorf("bad chunk size: %v", err)
	}
}
