package sbm

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/internal/errs"
)

// Secure-storage record layout (little-endian; docs/sbm.md):
//
//	magic  4 bytes "SBM2"
//	seq    uint32  commit sequence number, higher is newer
//	length uint32  body length
//	body   TLV fields (state.encode)
//	check  32 bytes SHA-256 of magic ‖ seq ‖ length ‖ body
//	mac    32 bytes HMAC-SHA-256(K_mac, magic ‖ seq ‖ length ‖ body)
//
// padded with the erased value to the write granularity. K_mac is derived
// from the device's PUF key, which is recovered with the helper data the
// body carries (tag 9) and never stored: a record written by anyone but
// this device's SBM fails the MAC. The unkeyed check only tells a torn or
// corrupted record (silently skipped, as after any power cut) from a
// well-formed record whose MAC fails (forged, altered or from another
// device: refused and reported).
//
// The secure region is split into two banks (the first and second half of
// its sectors); a commit erases the bank that does not hold the newest
// valid record and programs the new record there in one program
// operation.
const (
	// MaxRecordSize is the largest secure-storage record.
	MaxRecordSize = 4096
	recordHeader  = 12
	recordCheck   = 32
	recordMAC     = 32
	recordTrailer = recordCheck + recordMAC
)

var recordMagic = [4]byte{'S', 'B', 'M', '2'}

// HKDF info strings of the secure-storage keys (docs/sbm.md).
const (
	infoStorageMAC = "sbm storage mac v1"
	infoStorageEnc = "sbm storage enc v1"
)

// Storage errors.
var (
	// ErrNoSecureStorage is returned when the flash has no usable secure
	// region (it needs at least two sectors).
	ErrNoSecureStorage = errs.New("sbm: no usable secure storage region")
	// ErrStateTooLarge is returned when the state does not fit a bank.
	ErrStateTooLarge = errs.New("sbm: state does not fit secure storage")
	// errNoKey is returned by commit when the PUF key of the state's
	// helper data cannot be recovered.
	errNoKey    = errs.New("sbm: puf key not recoverable: cannot authenticate secure storage")
	errNoRegion = errs.New("sbm: flash region missing")
)

// recordFault says why a bank's record was not loaded.
type recordFault uint8

const (
	faultNone      recordFault = iota // loaded
	faultEmpty                        // no record (erased or no magic)
	faultCorrupt                      // torn or corrupted: length or check fails
	faultMalformed                    // check passes, body malformed or lacks helper data
	faultForeign                      // helper data does not recover on this device's PUF
	faultForged                       // MAC fails: written by someone else, or altered
)

// String returns the reason for the boot log.
func (f recordFault) String() string {
	switch f {
	case faultCorrupt:
		return "torn or corrupted record"
	case faultMalformed:
		return "malformed record"
	case faultForeign:
		return "record from another device (its puf helper data does not match this device)"
	case faultForged:
		return "record not authentic (forged or altered: its mac does not verify)"
	}
	return "no record"
}

// bank is one half of the secure region.
type bank struct {
	start, size      uint32
	firstSec, numSec int
}

// storage is the A/B record store in the secure region.
type storage struct {
	f      hal.Flash
	puf    hal.PUF // nil: records are checked but not authenticated (host view)
	banks  [2]bank
	newest int // bank holding the newest valid record, -1 if none
	fault  [2]recordFault
	buf    [MaxRecordSize]byte

	// The keys of the helper data last recovered.
	keyed  bool
	helper [hal.PUFHelperSize]byte
	pufKey [32]byte
	macKey [32]byte
	encKey [32]byte
}

// open lays out the banks of the secure region of f. Records are
// authenticated with keys from p; with a nil p they are only checked for
// integrity (a host tool's view; never the SBM's).
func (s *storage) open(f hal.Flash, p hal.PUF) error {
	s.f, s.puf = f, p
	s.newest = -1
	g := f.Geometry()
	r, ok := g.Region(hal.RegionSecure)
	if !ok {
		return ErrNoSecureStorage
	}
	first, ok1 := g.SectorAt(r.Start)
	last, ok2 := g.SectorAt(r.End() - 1)
	if !ok1 || !ok2 || last-first+1 < 2 {
		return ErrNoSecureStorage
	}
	half := (last - first + 1) / 2
	for i := range 2 {
		b := bank{firstSec: first + i*half, numSec: half}
		b.start = g.Sectors[b.firstSec].Start
		b.size = g.Sectors[b.firstSec+half-1].End() - b.start
		s.banks[i] = b
	}
	return nil
}

// keysFor makes the storage keys those of helper, recovering the PUF key
// if helper is not the one last recovered.
func (s *storage) keysFor(helper *[hal.PUFHelperSize]byte) bool {
	// (bytes.Equal, not ==: TinyGo unrolls a comparison of 756-byte
	// arrays into 10 KB of code.)
	if s.keyed && bytes.Equal(s.helper[:], helper[:]) {
		return true
	}
	s.keyed = false
	if s.puf == nil {
		return false
	}
	k, err := hal.RecoverPUFKey(s.puf, helper)
	if err != nil {
		return false
	}
	mk, err1 := hkdf.Key(sha256.New, k[:], nil, infoStorageMAC, 32)
	ek, err2 := hkdf.Key(sha256.New, k[:], nil, infoStorageEnc, 32)
	if err1 != nil || err2 != nil {
		clear(k[:])
		return false
	}
	s.pufKey, s.helper, s.keyed = k, *helper, true
	copy(s.macKey[:], mk)
	copy(s.encKey[:], ek)
	clear(k[:])
	clear(mk)
	clear(ek)
	return true
}

// key returns the PUF key of the helper data last recovered.
func (s *storage) key() (*[32]byte, bool) { return &s.pufKey, s.keyed }

// mac computes the record MAC of b with the current keys.
func (s *storage) mac(b []byte) [32]byte {
	h := hmac.New(sha256.New, s.macKey[:])
	h.Write(b)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// pad returns the one-time pad that encrypts the secret fields of the
// record with sequence number seq: HMAC-SHA-256(K_enc, "sbm secret v1" ‖
// seq). A new pad per commit; the MAC covers the ciphertext.
func (s *storage) pad(seq uint32) *[32]byte {
	var out [32]byte
	if !s.keyed {
		return nil
	}
	h := hmac.New(sha256.New, s.encKey[:])
	h.Write([]byte("sbm secret v1"))
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], seq)
	h.Write(b[:])
	h.Sum(out[:0])
	return &out
}

// readBank reads and checks the record of bank i into s.buf and returns
// its sequence number and body.
func (s *storage) readBank(i int) (uint32, []byte, recordFault) {
	b := s.banks[i]
	lim := min(b.size, MaxRecordSize)
	if s.f.Read(b.start, s.buf[:recordHeader]) != nil || [4]byte(s.buf[:4]) != recordMagic {
		return 0, nil, faultEmpty
	}
	n := binary.LittleEndian.Uint32(s.buf[8:12])
	if n > lim-recordHeader-recordTrailer {
		return 0, nil, faultCorrupt
	}
	signed := recordHeader + n
	total := signed + recordTrailer
	if s.f.Read(b.start, s.buf[:total]) != nil {
		return 0, nil, faultCorrupt
	}
	if sum := sha256.Sum256(s.buf[:signed]); !bytes.Equal(sum[:], s.buf[signed:signed+recordCheck]) {
		return 0, nil, faultCorrupt
	}
	body := s.buf[recordHeader:signed]
	helper, ok := findHelper(body)
	if !ok {
		return 0, nil, faultMalformed
	}
	if s.puf != nil {
		if !s.keysFor(helper) {
			return 0, nil, faultForeign
		}
		sum := s.mac(s.buf[:signed])
		if subtle.ConstantTimeCompare(sum[:], s.buf[signed+recordCheck:total]) != 1 {
			return 0, nil, faultForged
		}
	}
	return binary.LittleEndian.Uint32(s.buf[4:8]), body, faultNone
}

// findHelper returns the PUF helper data field of a record body.
func findHelper(b []byte) (*[hal.PUFHelperSize]byte, bool) {
	for len(b) >= 3 {
		n := int(binary.LittleEndian.Uint16(b[1:3]))
		if len(b) < 3+n {
			return nil, false
		}
		if b[0] == tagHelper {
			if n != hal.PUFHelperSize {
				return nil, false
			}
			return (*[hal.PUFHelperSize]byte)(b[3 : 3+n]), true
		}
		b = b[3+n:]
	}
	return nil, false
}

// load sets st to the newest valid record, or to the blank state if there
// is none. s.fault says why each bank was not loaded.
func (s *storage) load(st *state) {
	s.newest = -1
	var best uint32
	for i := range 2 {
		seq, body, fault := s.readBank(i)
		if fault == faultNone && st.decode(body, s.pad(seq)) != nil {
			fault = faultMalformed
		}
		s.fault[i] = fault
		if fault == faultNone && (s.newest < 0 || seq > best) {
			s.newest, best = i, seq
		}
	}
	*st = state{}
	if s.newest >= 0 {
		_, body, _ := s.readBank(s.newest)
		st.decode(body, s.pad(best))
		st.seq = best
	}
}

// refused returns the most serious reason a bank was refused at the last
// load: faultForeign or faultForged (an attack, reported at boot), else
// faultNone.
func (s *storage) refused() (int, recordFault) {
	for i, f := range s.fault {
		if f == faultForeign || f == faultForged {
			return i, f
		}
	}
	return 0, faultNone
}

// commit writes st as the newest record: into the bank that does not hold
// the current newest record, with a sequence number one higher. On success
// st.seq is updated. A power cut at any point leaves either the old or the
// new record as the newest valid one. Only a provisioned state (it carries
// the PUF helper data its keys come from) can be committed.
func (s *storage) commit(st *state) error {
	if !st.provisioned || !s.keysFor(&st.helper) {
		return errNoKey
	}
	seq := st.seq + 1
	body := st.encode(s.buf[recordHeader:recordHeader], s.pad(seq))
	n := uint32(len(body))
	target := 0
	if s.newest == 0 {
		target = 1
	}
	b := s.banks[target]
	ws := s.f.Geometry().WriteSize
	signed := recordHeader + n
	total := signed + recordTrailer
	padded := (total + ws - 1) / ws * ws
	if padded > MaxRecordSize || padded > b.size {
		return ErrStateTooLarge
	}
	copy(s.buf[:4], recordMagic[:])
	binary.LittleEndian.PutUint32(s.buf[4:8], seq)
	binary.LittleEndian.PutUint32(s.buf[8:12], n)
	sum := sha256.Sum256(s.buf[:signed])
	copy(s.buf[signed:], sum[:])
	tag := s.mac(s.buf[:signed])
	copy(s.buf[signed+recordCheck:], tag[:])
	erased := s.f.Geometry().Erased
	for i := total; i < padded; i++ {
		s.buf[i] = erased
	}
	g := s.f.Geometry()
	for i := range b.numSec {
		if err := s.f.Erase(g.Sectors[b.firstSec+i].Start); err != nil {
			return err
		}
	}
	if err := s.f.Program(b.start, s.buf[:padded]); err != nil {
		return err
	}
	if got, _, fault := s.readBank(target); fault != faultNone || got != seq {
		return hal.ErrFlashFailure
	}
	s.newest = target
	s.fault[target] = faultNone
	st.seq = seq
	return nil
}

// fits reports whether a record with a body of n bytes fits a bank.
func (s *storage) fits(n int) bool {
	ws := int(s.f.Geometry().WriteSize)
	padded := (recordHeader + n + recordTrailer + ws - 1) / ws * ws
	return padded <= MaxRecordSize && padded <= int(s.banks[0].size)
}
