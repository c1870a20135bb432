// Package smallaes is AES (FIPS 197) and AES-GCM (NIST SP 800-38D) in
// little code, for the SBM firmware: the only tables are the 256-byte
// S-box and its inverse, MixColumns is computed on 32-bit words, and GHASH
// is a bit-serial multiply without tables. Go's crypto/aes, which the
// host uses, carries 8 KiB of round tables; this package is what the SBM
// links under TinyGo (docs/silicon.md "Sizes").
//
// Timing: every operation's sequence of instructions is independent of
// the key and the data, but SubBytes indexes the S-box with secret bytes,
// so on a CPU with a data cache the access pattern can leak through the
// cache. The Cortex-M3/M4/M33 parts the firmware targets have no data
// cache (flash accelerators cache instructions and literal pools, not
// data-dependent loads from a 256-byte table in a pattern an attacker can
// observe from the application); on a part with a data cache, use the
// part's AES engine or crypto/aes.
package smallaes

import (
	"crypto/cipher"
	"math/bits"

	"github.com/sbm-project/sbm/internal/errs"
)

// BlockSize is the AES block size in bytes.
const BlockSize = 16

// ErrKeySize is returned for a key that is not 16, 24 or 32 bytes long.
var ErrKeySize = errs.New("smallaes: invalid key size")

// A Block is an AES block cipher with an expanded key. It implements
// cipher.Block.
type Block struct {
	rk     [60]uint32 // round keys, column words, byte 0 in the low bits
	rounds int
}

var _ cipher.Block = (*Block)(nil)

// NewCipher returns the AES block cipher for key (AES-128, -192 or -256).
func NewCipher(key []byte) (*Block, error) {
	var b Block
	switch len(key) {
	case 16:
		b.rounds = 10
	case 24:
		b.rounds = 12
	case 32:
		b.rounds = 14
	default:
		return nil, ErrKeySize
	}
	expandKey(&b, key)
	return &b, nil
}

// expandKey is the key expansion of FIPS 197 §5.2.
func expandKey(b *Block, key []byte) {
	nk := len(key) / 4
	for i := 0; i < nk; i++ {
		b.rk[i] = uint32(key[4*i]) | uint32(key[4*i+1])<<8 | uint32(key[4*i+2])<<16 | uint32(key[4*i+3])<<24
	}
	rcon := uint32(1)
	for i := nk; i < 4*(b.rounds+1); i++ {
		t := b.rk[i-1]
		switch {
		case i%nk == 0:
			t = subWord(bits.RotateLeft32(t, -8)) ^ rcon
			rcon = xtime(rcon)
		case nk > 6 && i%nk == 4:
			t = subWord(t)
		}
		b.rk[i] = b.rk[i-nk] ^ t
	}
}

// BlockSize returns 16.
func (b *Block) BlockSize() int { return BlockSize }

// Encrypt encrypts the first block of src into dst (they may overlap
// exactly). A src or dst shorter than a block panics (index out of
// range), as cipher.Block requires.
func (b *Block) Encrypt(dst, src []byte) {
	_, _ = src[BlockSize-1], dst[BlockSize-1] // a short block is an index out of range
	var s [4]uint32
	load(&s, src)
	addRoundKey(&s, b.rk[0:4])
	for r := 1; r < b.rounds; r++ {
		s = subShift(s)
		for c := range s {
			s[c] = mixColumn(s[c])
		}
		addRoundKey(&s, b.rk[4*r:4*r+4])
	}
	s = subShift(s)
	addRoundKey(&s, b.rk[4*b.rounds:4*b.rounds+4])
	store(dst, &s)
}

// Decrypt decrypts the first block of src into dst (they may overlap
// exactly), with the inverse cipher of FIPS 197 §5.3.
func (b *Block) Decrypt(dst, src []byte) {
	_, _ = src[BlockSize-1], dst[BlockSize-1] // a short block is an index out of range
	var s [4]uint32
	load(&s, src)
	addRoundKey(&s, b.rk[4*b.rounds:4*b.rounds+4])
	for r := b.rounds - 1; r > 0; r-- {
		s = invSubShift(s)
		addRoundKey(&s, b.rk[4*r:4*r+4])
		for c := range s {
			s[c] = invMixColumn(s[c])
		}
	}
	s = invSubShift(s)
	addRoundKey(&s, b.rk[0:4])
	store(dst, &s)
}

func load(s *[4]uint32, src []byte) {
	for c := range s {
		s[c] = uint32(src[4*c]) | uint32(src[4*c+1])<<8 | uint32(src[4*c+2])<<16 | uint32(src[4*c+3])<<24
	}
}

func store(dst []byte, s *[4]uint32) {
	for c, w := range s {
		dst[4*c] = byte(w)
		dst[4*c+1] = byte(w >> 8)
		dst[4*c+2] = byte(w >> 16)
		dst[4*c+3] = byte(w >> 24)
	}
}

func addRoundKey(s *[4]uint32, k []uint32) {
	for c := range s {
		s[c] ^= k[c]
	}
}

// subWord applies the S-box to each byte of w.
func subWord(w uint32) uint32 {
	return uint32(sbox[byte(w)]) | uint32(sbox[byte(w>>8)])<<8 |
		uint32(sbox[byte(w>>16)])<<16 | uint32(sbox[byte(w>>24)])<<24
}

// subShift is SubBytes and ShiftRows: row r of column c comes from column
// c+r.
func subShift(s [4]uint32) (t [4]uint32) {
	for c := range t {
		t[c] = uint32(sbox[byte(s[c])]) |
			uint32(sbox[byte(s[(c+1)&3]>>8)])<<8 |
			uint32(sbox[byte(s[(c+2)&3]>>16)])<<16 |
			uint32(sbox[byte(s[(c+3)&3]>>24)])<<24
	}
	return t
}

// invSubShift is InvShiftRows and InvSubBytes: row r of column c comes
// from column c-r.
func invSubShift(s [4]uint32) (t [4]uint32) {
	for c := range t {
		t[c] = uint32(invSbox[byte(s[c])]) |
			uint32(invSbox[byte(s[(c+3)&3]>>8)])<<8 |
			uint32(invSbox[byte(s[(c+2)&3]>>16)])<<16 |
			uint32(invSbox[byte(s[(c+1)&3]>>24)])<<24
	}
	return t
}

// xtime multiplies each byte of w by x in GF(2^8) (FIPS 197 §4.2.1).
func xtime(w uint32) uint32 {
	return (w&0x7f7f7f7f)<<1 ^ ((w>>7)&0x01010101)*0x1b
}

// mixColumn is MixColumns on one column (byte i of w is row i):
// b_i = 2·a_i + 3·a_{i+1} + a_{i+2} + a_{i+3}.
func mixColumn(w uint32) uint32 {
	r1 := bits.RotateLeft32(w, -8) // a_{i+1} in byte i
	return xtime(w^r1) ^ r1 ^ bits.RotateLeft32(w, -16) ^ bits.RotateLeft32(w, -24)
}

// invMixColumn is InvMixColumns on one column, as MixColumns after adding
// 4·(a_i + a_{i+2}) to rows i and i+2 (the factorisation of the
// inverse matrix in "The Design of Rijndael", §4.1.3).
func invMixColumn(w uint32) uint32 {
	u := xtime(xtime(w ^ bits.RotateLeft32(w, -16)))
	return mixColumn(w ^ u)
}
