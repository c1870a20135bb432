package secpkg

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"hash"
)

// tagSize is the AES-GCM tag size.
const tagSize = 16

// An opener authenticates and decrypts one AES-GCM message: crypto/cipher
// on the host, internal/smallaes in the firmware (aead_*.go).
type opener interface {
	Open(dst []byte, nonce *[12]byte, ciphertext, additionalData []byte) ([]byte, error)
}

// A Decrypter authenticates and decrypts the chunk stream of spec §6, one
// chunk at a time, in order, hashing the plaintext. The caller reads
// NextChunkLen bytes, calls Open, and after the last chunk calls Finish,
// which checks the plaintext digest. Plaintext returned by Open is
// authentic as a chunk but MUST NOT be trusted until Finish returns nil.
// After any error the Decrypter refuses further input.
type Decrypter struct {
	aead      opener
	nonce     [12]byte
	chunkSize uint32
	size      uint32 // payload size
	count     uint32 // N
	next      uint32 // index of the next chunk
	hash      hash.Hash
	want      [32]byte
	err       error // sticky
}

// NewDecrypter returns a Decrypter for the payload described by m, under
// the content-encryption key cek.
func NewDecrypter(cek *[32]byte, m *Manifest) (*Decrypter, error) {
	if m.PayloadSize == 0 || m.ChunkSize < MinChunkSize || m.ChunkSize > MaxChunkSize || m.ChunkSize&(m.ChunkSize-1) != 0 {
		return nil, ErrMalformed
	}
	aead, err := newGCM(cek[:])
	if err != nil {
		return nil, err
	}
	d := &Decrypter{
		aead:      aead,
		chunkSize: m.ChunkSize,
		size:      m.PayloadSize,
		count:     m.NumChunks(),
		hash:      sha256.New(),
		want:      m.PayloadDigest,
	}
	copy(d.nonce[:7], m.NoncePrefix[:])
	return d, nil
}

// NumChunks returns the number of chunks N of the stream.
func (d *Decrypter) NumChunks() int { return int(d.count) }

// NextChunkLen returns the length of the next encrypted chunk (plaintext
// length + 16), or 0 when every chunk has been opened or after an error.
func (d *Decrypter) NextChunkLen() int {
	if d.err != nil || d.next >= d.count {
		return 0
	}
	return d.plainLen(d.next) + tagSize
}

// MaxChunkLen returns the largest encrypted chunk: the buffer size a
// caller needs.
func (d *Decrypter) MaxChunkLen() int { return int(d.chunkSize) + tagSize }

func (d *Decrypter) plainLen(i uint32) int {
	if i == d.count-1 {
		return int(d.size - i*d.chunkSize)
	}
	return int(d.chunkSize)
}

// Open authenticates and decrypts the next chunk, appends the plaintext to
// dst and returns the extended slice. dst may be chunk[:0] to decrypt in
// place. A chunk of the wrong length, one that fails authentication, or a
// chunk after the last one yields a *ChunkError with the chunk's index.
func (d *Decrypter) Open(dst, chunk []byte) ([]byte, error) {
	if d.err != nil {
		return nil, d.err
	}
	i := d.next
	if i >= d.count {
		return nil, d.fail(i, ErrTrailingData)
	}
	if want := d.plainLen(i) + tagSize; len(chunk) != want {
		if len(chunk) < want {
			return nil, d.fail(i, ErrTruncated)
		}
		return nil, d.fail(i, ErrTrailingData)
	}
	binary.BigEndian.PutUint32(d.nonce[7:11], i)
	d.nonce[11] = 0
	if i == d.count-1 {
		d.nonce[11] = 1
	}
	out, err := d.aead.Open(dst, &d.nonce, chunk, nil)
	if err != nil {
		return nil, d.fail(i, ErrChunk)
	}
	d.hash.Write(out[len(dst):])
	d.next++
	return out, nil
}

func (d *Decrypter) fail(i uint32, err error) error {
	d.err = &ChunkError{Index: int(i), Count: int(d.count), Err: err}
	return d.err
}

// Finish checks that every chunk was opened (a *ChunkError wrapping
// ErrTruncated otherwise) and that SHA-256 of the plaintext equals the
// manifest's payload digest (ErrDigest).
func (d *Decrypter) Finish() error {
	if d.err != nil {
		return d.err
	}
	if d.next < d.count {
		return d.fail(d.next, ErrTruncated)
	}
	var sum [32]byte
	if subtle.ConstantTimeCompare(d.hash.Sum(sum[:0]), d.want[:]) != 1 {
		d.err = ErrDigest
		return d.err
	}
	return nil
}
