package hal

import (
	"crypto/sha256"
	"crypto/subtle"
	"io"

	"github.com/sbm-project/sbm/internal/errs"
)

// PUF is a physically unclonable function: a device-unique response that
// reads slightly differently at every power-up (a few percent of its bits
// are noisy). Use EnrollPUF and RecoverPUFKey to derive a stable key.
type PUF interface {
	// Response copies this power-up's raw response into p, which must be
	// PUFResponseSize bytes long.
	Response(p []byte) error
}

// Parameters of the fuzzy extractor.
//
// The extractor is the code-offset construction with a repetition code:
// a random secret s of PUFKeyBits bits is encoded by repeating every bit
// PUFRepetition times into a codeword c of PUFResponseSize*8 bits; the
// helper data is w XOR c, where w is the enrolment response. At recovery,
// (w' XOR helper) = c XOR noise is decoded by majority vote per block,
// which gives back c and thus w = helper XOR c exactly. The key is
// SHA-256 over a domain separator and w; a 16-byte check value (another
// domain-separated SHA-256 of w) in the helper data detects a wrong
// recovery instead of returning a wrong key.
//
// With independent bit errors at rate p = 5%, a block of 23 fails when 12
// or more of its bits flip: about 2e-10 per block, 5e-8 per recovery.
// The helper data reveals w XOR c; as c has 2^256 possible values, w keeps
// 256 bits of entropy (for an unbiased response) given the helper data.
const (
	// PUFKeyBits is the number of secret bits (blocks of the code).
	PUFKeyBits = 256
	// PUFRepetition is the length of the repetition code.
	PUFRepetition = 23
	// PUFResponseSize is the size of a PUF response in bytes.
	PUFResponseSize = PUFKeyBits * PUFRepetition / 8
	// PUFHelperSize is the size of the helper data in bytes.
	PUFHelperSize = 4 + PUFResponseSize + 16
)

var pufMagic = [4]byte{'P', 'U', 'F', '1'}

// errShortRandom is returned when the RNG fails.
var errShortRandom = errs.New("puf enrolment: random source failed")

// EnrollPUF enrols the PUF: it draws a random secret from rng, writes the
// helper data into helper and returns the key. The helper data is not
// secret but must be stored (in secure storage or OTP) to recover the key.
func EnrollPUF(p PUF, rng io.Reader, helper *[PUFHelperSize]byte) ([32]byte, error) {
	var w [PUFResponseSize]byte
	if err := p.Response(w[:]); err != nil {
		return [32]byte{}, err
	}
	var s [PUFKeyBits / 8]byte
	if _, err := io.ReadFull(rng, s[:]); err != nil {
		return [32]byte{}, errShortRandom
	}
	copy(helper[:4], pufMagic[:])
	off := helper[4 : 4+PUFResponseSize]
	copy(off, w[:])
	xorCodeword(off, &s)
	clear(s[:])
	check := pufHash("sbm puf check v1", &w)
	copy(helper[4+PUFResponseSize:], check[:16])
	return pufHash("sbm puf key v1", &w), nil
}

// RecoverPUFKey reads the PUF and recovers the key enrolled with helper.
// It returns ErrPUFHelper if the helper data is malformed, belongs to
// another device, or the response was too noisy to correct.
func RecoverPUFKey(p PUF, helper *[PUFHelperSize]byte) ([32]byte, error) {
	if [4]byte(helper[:4]) != pufMagic {
		return [32]byte{}, ErrPUFHelper
	}
	var w [PUFResponseSize]byte
	if err := p.Response(w[:]); err != nil {
		return [32]byte{}, err
	}
	off := helper[4 : 4+PUFResponseSize]
	for i := range w {
		w[i] ^= off[i] // now c XOR noise
	}
	// Majority vote per block of PUFRepetition bits, without branches on
	// the bits: s gets 1 where more than half of the block's bits are 1.
	var s [PUFKeyBits / 8]byte
	ones := 0
	for b := 0; b < PUFResponseSize*8; b++ {
		ones += int(w[b/8] >> (b % 8) & 1)
		if b%PUFRepetition == PUFRepetition-1 {
			j := b / PUFRepetition
			s[j/8] |= byte(uint32(int32(PUFRepetition-2*ones))>>31) << (j % 8)
			ones = 0
		}
	}
	copy(w[:], off)
	xorCodeword(w[:], &s) // now the enrolment response
	clear(s[:])
	check := pufHash("sbm puf check v1", &w)
	if subtle.ConstantTimeCompare(check[:16], helper[4+PUFResponseSize:]) != 1 {
		return [32]byte{}, ErrPUFHelper
	}
	return pufHash("sbm puf key v1", &w), nil
}

// xorCodeword XORs the repetition-code codeword of s (every bit of s
// repeated PUFRepetition times, least significant bit first) into dst,
// PUFResponseSize bytes. One loop over the codeword's bits, without
// branches on s: a nested loop over blocks was unrolled by the firmware
// compiler into 13 KB of code.
func xorCodeword(dst []byte, s *[PUFKeyBits / 8]byte) {
	for b := 0; b < PUFResponseSize*8; b++ {
		j := b / PUFRepetition
		dst[b/8] ^= (s[j/8] >> (j % 8) & 1) << (b % 8)
	}
}

func pufHash(domain string, w *[PUFResponseSize]byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(domain))
	h.Write(w[:])
	var out [32]byte
	h.Sum(out[:0])
	return out
}
