package hal

import (
	"encoding/binary"
	"math/bits"

	"github.com/sbm-project/sbm/internal/errs"
)

// Fuses is one-time-programmable memory organised as 32-bit words.
//
// A fuse bit starts unblown (0) and can be blown (1) once; nothing can
// un-blow it. ProgramWord(i, v) blows the bits set in v: afterwards the word
// reads old|v. Bits clear in v are left as they are; this is not an error,
// because it cannot change a blown bit. Use ProgramFuseBytes to program a
// value and refuse when it conflicts with bits already blown.
type Fuses interface {
	// Words returns the number of fuse words.
	Words() int
	// ReadWord returns word i.
	ReadWord(i int) (uint32, error)
	// ProgramWord blows the bits set in v in word i.
	ProgramWord(i int, v uint32) error
}

// The fuse map: word indexes and sizes shared by the SBM and the virtual MCU.
const (
	// FuseWords is the number of fuse words (256 bytes).
	FuseWords = 64
	// FuseLocks is the word holding the lock bits.
	FuseLocks = 0
	// FuseUser is the first of 7 words (28 bytes) of OEM-defined OTP.
	FuseUser = 1
	// FuseUserWords is the number of OEM-defined OTP words.
	FuseUserWords = 7
	// FuseRootKeyHash is the first of 8 words holding the SHA-256 of the
	// root-of-trust key (root slot 0); byte i of the hash is byte i%4 of
	// word FuseRootKeyHash+i/4 in little-endian order.
	FuseRootKeyHash = 8
	// RootKeySlots is the number of root-key hash slots: slot i holds the
	// SHA-256 of the i-th root key at words FuseRootKeyHash+8i (8..31).
	// An OEM programs the hashes of its successor roots at birth; a
	// device moves to the next slot only through a statement signed by
	// the current root, and the last slot's root can never be revoked.
	RootKeySlots = 3
	// FuseCounters is the first word of the monotonic counters.
	FuseCounters = 32
	// NumCounters is the number of monotonic counters.
	NumCounters = 4
	// CounterWords is the number of words of each counter.
	CounterWords = 8
	// CounterMax is the largest value of a counter (one bit per step).
	CounterMax = CounterWords * 32
)

// Lock bits in word FuseLocks.
const (
	// LockDebug closes the debug port for good.
	LockDebug uint32 = 1 << 0
	// LockSBMWriteProtect makes the SBM region immutable at every privilege.
	LockSBMWriteProtect uint32 = 1 << 1
	// LockSecureHidden hides secure storage (and the SBM region) from the
	// application privilege.
	LockSecureHidden uint32 = 1 << 2
)

// ErrFuseConflict is returned by ProgramFuseBytes when the value would need
// a blown bit to be cleared.
var ErrFuseConflict = errs.New("fuse already programmed with another value")

// ReadLocks returns the lock word.
func ReadLocks(f Fuses) (uint32, error) { return f.ReadWord(FuseLocks) }

// BlowLocks blows the lock bits set in locks.
func BlowLocks(f Fuses, locks uint32) error { return f.ProgramWord(FuseLocks, locks) }

// ReadFuseBytes reads len(p) bytes (a multiple of 4) starting at word.
func ReadFuseBytes(f Fuses, word int, p []byte) error {
	if len(p)%4 != 0 || word < 0 || word+len(p)/4 > f.Words() {
		return ErrBadFuse
	}
	for i := 0; i < len(p); i += 4 {
		w, err := f.ReadWord(word + i/4)
		if err != nil {
			return err
		}
		binary.LittleEndian.PutUint32(p[i:], w)
	}
	return nil
}

// ProgramFuseBytes programs p (a multiple of 4 bytes) starting at word.
// It first checks every word and returns ErrFuseConflict, programming
// nothing, if a bit already blown is clear in p. Programming the value
// already there is a no-op.
func ProgramFuseBytes(f Fuses, word int, p []byte) error {
	if len(p)%4 != 0 || word < 0 || word+len(p)/4 > f.Words() {
		return ErrBadFuse
	}
	for i := 0; i < len(p); i += 4 {
		old, err := f.ReadWord(word + i/4)
		if err != nil {
			return err
		}
		if old&^binary.LittleEndian.Uint32(p[i:]) != 0 {
			return ErrFuseConflict
		}
	}
	for i := 0; i < len(p); i += 4 {
		w := word + i/4
		old, err := f.ReadWord(w)
		if err != nil {
			return err
		}
		v := binary.LittleEndian.Uint32(p[i:])
		if v == old {
			continue
		}
		if err := f.ProgramWord(w, v&^old); err != nil {
			return err
		}
	}
	return nil
}

// ReadRootKeyHash returns the root-of-trust key hash of slot 0; all zeroes
// means not programmed.
func ReadRootKeyHash(f Fuses) ([32]byte, error) { return ReadRootKeySlot(f, 0) }

// ProgramRootKeyHash programs the root-of-trust key hash of slot 0.
func ProgramRootKeyHash(f Fuses, h [32]byte) error { return ProgramRootKeySlot(f, 0, h) }

// ReadRootKeySlot returns the root-key hash of slot i (0 ≤ i <
// RootKeySlots); all zeroes means not programmed.
func ReadRootKeySlot(f Fuses, i int) ([32]byte, error) {
	var h [32]byte
	if i < 0 || i >= RootKeySlots {
		return h, ErrBadFuse
	}
	err := ReadFuseBytes(f, FuseRootKeyHash+8*i, h[:])
	return h, err
}

// ProgramRootKeySlot programs the root-key hash of slot i.
func ProgramRootKeySlot(f Fuses, i int, h [32]byte) error {
	if i < 0 || i >= RootKeySlots {
		return ErrBadFuse
	}
	return ProgramFuseBytes(f, FuseRootKeyHash+8*i, h[:])
}

// ReadCounter returns the value of monotonic counter n: the number of blown
// bits in its field. A counter torn by a power cut reads a value between
// the old and the new one; it never goes down.
func ReadCounter(f Fuses, n int) (int, error) {
	if n < 0 || n >= NumCounters {
		return 0, ErrBadFuse
	}
	v := 0
	for i := 0; i < CounterWords; i++ {
		w, err := f.ReadWord(FuseCounters + n*CounterWords + i)
		if err != nil {
			return 0, err
		}
		v += bits.OnesCount32(w)
	}
	return v, nil
}

// AdvanceCounter raises counter n to at least v by blowing bits 0..v-1 of
// its field. It is a no-op if the counter is already at v or more, and
// returns ErrBadFuse if v exceeds CounterMax.
func AdvanceCounter(f Fuses, n int, v int) error {
	if n < 0 || n >= NumCounters || v < 0 || v > CounterMax {
		return ErrBadFuse
	}
	for i := 0; i < CounterWords && v > i*32; i++ {
		want := uint32(0xFFFFFFFF)
		if rem := v - i*32; rem < 32 {
			want = 1<<uint(rem) - 1
		}
		w := FuseCounters + n*CounterWords + i
		old, err := f.ReadWord(w)
		if err != nil {
			return err
		}
		if old&want == want {
			continue
		}
		if err := f.ProgramWord(w, want&^old); err != nil {
			return err
		}
	}
	return nil
}
