// Package aeskw implements the AES key wrap algorithm of RFC 3394 with the
// default initial value A6A6A6A6A6A6A6A6.
package aeskw

import (
	"crypto/subtle"
	"encoding/binary"

	"github.com/sbm-project/sbm/internal/errs"
)

var (
	// ErrInvalidLength means the input is not a multiple of 8 bytes or is
	// too short (plaintexts need at least 16 bytes, ciphertexts 24).
	ErrInvalidLength = errs.New("aeskw: invalid input length")
	// ErrIntegrity means the unwrapped initial value does not match: the
	// key-encryption key is wrong or the ciphertext was altered.
	ErrIntegrity = errs.New("aeskw: integrity check failed")
)

// defaultIV is the RFC 3394 §2.2.3.1 default initial value.
var defaultIV = [8]byte{0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6}

// maxLen bounds inputs so the 64-bit step counter t = n*j+i cannot
// overflow; it is far above any key size.
const maxLen = 1 << 20

// Wrap wraps plaintext (a key of at least 16 bytes, a multiple of 8) under
// kek (16, 24 or 32 bytes) and returns the len(plaintext)+8 byte ciphertext.
func Wrap(kek, plaintext []byte) ([]byte, error) {
	if len(plaintext) < 16 || len(plaintext)%8 != 0 || len(plaintext) > maxLen {
		return nil, ErrInvalidLength
	}
	block, err := newCipher(kek)
	if err != nil {
		return nil, err
	}
	n := len(plaintext) / 8
	out := make([]byte, len(plaintext)+8)
	copy(out[8:], plaintext)
	var b [16]byte
	copy(b[:8], defaultIV[:])
	for j := 0; j < 6; j++ {
		for i := 1; i <= n; i++ {
			r := out[8*i : 8*i+8]
			copy(b[8:], r)
			block.Encrypt(b[:], b[:])
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(b[:8], binary.BigEndian.Uint64(b[:8])^t)
			copy(r, b[8:])
		}
	}
	copy(out[:8], b[:8])
	return out, nil
}

// Unwrap unwraps ciphertext under kek and returns the key. It returns
// ErrIntegrity, after a constant-time comparison of the initial value, if
// kek is wrong or the ciphertext was modified.
func Unwrap(kek, ciphertext []byte) ([]byte, error) {
	if len(ciphertext) < 24 || len(ciphertext)%8 != 0 || len(ciphertext) > maxLen+8 {
		return nil, ErrInvalidLength
	}
	block, err := newCipher(kek)
	if err != nil {
		return nil, err
	}
	n := len(ciphertext)/8 - 1
	out := make([]byte, len(ciphertext)-8)
	copy(out, ciphertext[8:])
	var b [16]byte
	copy(b[:8], ciphertext[:8])
	for j := 5; j >= 0; j-- {
		for i := n; i >= 1; i-- {
			r := out[8*(i-1) : 8*i]
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(b[:8], binary.BigEndian.Uint64(b[:8])^t)
			copy(b[8:], r)
			block.Decrypt(b[:], b[:])
			copy(r, b[8:])
		}
	}
	if subtle.ConstantTimeCompare(b[:8], defaultIV[:]) != 1 {
		clear(out)
		return nil, ErrIntegrity
	}
	return out, nil
}
