package smallaes

import (
	"crypto/subtle"
	"encoding/binary"

	"github.com/sbm-project/sbm/internal/errs"
)

// GCM sizes: the only nonce and tag sizes this package supports.
const (
	NonceSize = 12
	TagSize   = 16
)

// ErrOpen is returned by Open when the tag does not authenticate the
// ciphertext and additional data.
var ErrOpen = errs.New("smallaes: message authentication failed")

// A GCM is AES in Galois/Counter Mode with a 96-bit nonce and a 128-bit
// tag. Its methods are those of cipher.AEAD with the nonce as an array
// and Seal's limit as an error, so that nothing in it panics.
type GCM struct {
	block  *Block
	h1, h0 uint64 // the hash key H = E(K, 0^128), big-endian halves
}

// ErrTooLarge is returned by Seal for a plaintext over GCM's limit of
// 2^32 − 2 blocks (64 GiB − 32 bytes).
var ErrTooLarge = errs.New("smallaes: message too large for GCM")

// maxPlaintext is GCM's plaintext limit in bytes (SP 800-38D §5.2.1.1).
const maxPlaintext = (1<<32 - 2) * BlockSize

// NewGCM returns AES-GCM under key (16, 24 or 32 bytes).
func NewGCM(key []byte) (*GCM, error) {
	b, err := NewCipher(key)
	if err != nil {
		return nil, err
	}
	var h [BlockSize]byte
	b.Encrypt(h[:], h[:])
	return &GCM{block: b, h1: binary.BigEndian.Uint64(h[:8]), h0: binary.BigEndian.Uint64(h[8:])}, nil
}

// Seal encrypts and authenticates plaintext and additional data and
// appends the ciphertext and tag to dst. To reuse plaintext's storage for
// the output, use plaintext[:0] as dst.
func (g *GCM) Seal(dst []byte, nonce *[NonceSize]byte, plaintext, additionalData []byte) ([]byte, error) {
	if uint64(len(plaintext)) > maxPlaintext {
		return nil, ErrTooLarge
	}
	ret, out := sliceForAppend(dst, len(plaintext)+TagSize)
	j0 := counter0(nonce)
	g.ctr(out[:len(plaintext)], plaintext, &j0)
	g.tag(out[len(plaintext):], &j0, additionalData, out[:len(plaintext)])
	return ret, nil
}

// Open authenticates ciphertext (which ends with the tag) and additional
// data and, only if the tag is correct, appends the plaintext to dst. On
// failure it returns ErrOpen and writes nothing. To reuse ciphertext's
// storage for the plaintext, use ciphertext[:0] as dst.
func (g *GCM) Open(dst []byte, nonce *[NonceSize]byte, ciphertext, additionalData []byte) ([]byte, error) {
	if len(ciphertext) < TagSize || uint64(len(ciphertext)) > maxPlaintext+TagSize {
		return nil, ErrOpen
	}
	ct, tag := ciphertext[:len(ciphertext)-TagSize], ciphertext[len(ciphertext)-TagSize:]
	j0 := counter0(nonce)
	var want [TagSize]byte
	g.tag(want[:], &j0, additionalData, ct)
	if subtle.ConstantTimeCompare(want[:], tag) != 1 {
		return nil, ErrOpen
	}
	ret, out := sliceForAppend(dst, len(ct))
	g.ctr(out, ct, &j0)
	return ret, nil
}

// counter0 is J0 = nonce || 0^31 || 1 (SP 800-38D §7.1 step 2).
func counter0(nonce *[NonceSize]byte) (j0 [BlockSize]byte) {
	copy(j0[:], nonce[:])
	j0[15] = 1
	return j0
}

// ctr XORs src with the key stream E(K, inc32^i(J0)), i = 1, 2, …, into
// dst (SP 800-38D §6.5, GCTR from inc32(J0)).
func (g *GCM) ctr(dst, src []byte, j0 *[BlockSize]byte) {
	counter := *j0
	n := binary.BigEndian.Uint32(counter[12:])
	var ks [BlockSize]byte
	for len(src) > 0 {
		n++
		binary.BigEndian.PutUint32(counter[12:], n)
		g.block.Encrypt(ks[:], counter[:])
		k := subtle.XORBytes(dst, src, ks[:])
		dst, src = dst[k:], src[k:]
	}
}

// tag writes E(K, J0) xor GHASH(A, C) (SP 800-38D §7.1 steps 5–6).
func (g *GCM) tag(out []byte, j0 *[BlockSize]byte, aad, ct []byte) {
	var y1, y0 uint64
	y1, y0 = g.ghash(y1, y0, aad)
	y1, y0 = g.ghash(y1, y0, ct)
	y1, y0 = g.mul(y1^uint64(len(aad))*8, y0^uint64(len(ct))*8)
	var s [BlockSize]byte
	g.block.Encrypt(s[:], j0[:])
	binary.BigEndian.PutUint64(out[:8], binary.BigEndian.Uint64(s[:8])^y1)
	binary.BigEndian.PutUint64(out[8:], binary.BigEndian.Uint64(s[8:])^y0)
}

// ghash absorbs data, zero-padded to whole blocks, into the GHASH state
// (y1, y0).
func (g *GCM) ghash(y1, y0 uint64, data []byte) (uint64, uint64) {
	for len(data) > 0 {
		var b [BlockSize]byte
		n := copy(b[:], data)
		data = data[n:]
		y1, y0 = g.mul(y1^binary.BigEndian.Uint64(b[:8]), y0^binary.BigEndian.Uint64(b[8:]))
	}
	return y1, y0
}

// mul returns X·H in GF(2^128) with GCM's bit order (SP 800-38D §6.3,
// Algorithm 1), without branches or tables on X or H.
func (g *GCM) mul(x1, x0 uint64) (uint64, uint64) {
	var z1, z0 uint64
	v1, v0 := g.h1, g.h0
	for i := 0; i < 128; i++ {
		var bit uint64
		if i < 64 {
			bit = x1 >> (63 - i) & 1
		} else {
			bit = x0 >> (127 - i) & 1
		}
		m := -bit
		z1 ^= v1 & m
		z0 ^= v0 & m
		r := -(v0 & 1) // V·x: shift right, reduce by R = 0xE1 || 0^120
		v0 = v0>>1 | v1<<63
		v1 = v1>>1 ^ 0xe100000000000000&r
	}
	return z1, z0
}

// sliceForAppend extends in by n bytes and returns the whole slice and
// the n new bytes (the idiom of crypto/cipher).
func sliceForAppend(in []byte, n int) (head, tail []byte) {
	if total := len(in) + n; cap(in) >= total {
		head = in[:total]
	} else {
		head = make([]byte, total)
		copy(head, in)
	}
	tail = head[len(in):]
	return
}
