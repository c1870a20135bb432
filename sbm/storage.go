package sbm

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"

	"github.com/sbm-project/sbm/hal"
)

// Secure-storage record layout (little-endian; docs/sbm.md):
//
//	magic  4 bytes "SBMS"
//	seq    uint32  commit sequence number, higher is newer
//	length uint32  body length
//	body   TLV fields (state.encode)
//	check  32 bytes SHA-256 of magic ‖ seq ‖ length ‖ body
//
// padded with the erased value to the write granularity. The secure region
// is split into two banks (the first and second half of its sectors); a
// commit erases the bank that does not hold the newest valid record and
// programs the new record there in one program operation.
const (
	// MaxRecordSize is the largest secure-storage record.
	MaxRecordSize = 4096
	recordHeader  = 12
	recordCheck   = 32
)

var recordMagic = [4]byte{'S', 'B', 'M', 'S'}

// Storage errors.
var (
	// ErrNoSecureStorage is returned when the flash has no usable secure
	// region (it needs at least two sectors).
	ErrNoSecureStorage = errors.New("sbm: no usable secure storage region")
	// ErrStateTooLarge is returned when the state does not fit a bank.
	ErrStateTooLarge = errors.New("sbm: state does not fit secure storage")
	errNoRegion      = errors.New("sbm: flash region missing")
)

// bank is one half of the secure region.
type bank struct {
	start, size      uint32
	firstSec, numSec int
}

// storage is the A/B record store in the secure region.
type storage struct {
	f      hal.Flash
	banks  [2]bank
	newest int // bank holding the newest valid record, -1 if none
	buf    [MaxRecordSize]byte
}

// openStorage lays out the banks of the secure region of f.
func (s *storage) open(f hal.Flash) error {
	s.f = f
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

// readBank reads and checks the record of bank i into s.buf and returns
// its sequence number and body.
func (s *storage) readBank(i int) (uint32, []byte, bool) {
	b := s.banks[i]
	lim := min(b.size, MaxRecordSize)
	if s.f.Read(b.start, s.buf[:recordHeader]) != nil || [4]byte(s.buf[:4]) != recordMagic {
		return 0, nil, false
	}
	n := binary.LittleEndian.Uint32(s.buf[8:12])
	if n > lim-recordHeader-recordCheck {
		return 0, nil, false
	}
	total := recordHeader + n + recordCheck
	if s.f.Read(b.start, s.buf[:total]) != nil {
		return 0, nil, false
	}
	if sha256.Sum256(s.buf[:recordHeader+n]) != [32]byte(s.buf[recordHeader+n:total]) {
		return 0, nil, false
	}
	return binary.LittleEndian.Uint32(s.buf[4:8]), s.buf[recordHeader : recordHeader+n], true
}

// load sets st to the newest valid record, or to the blank state if there
// is none.
func (s *storage) load(st *state) {
	s.newest = -1
	var best uint32
	for i := range 2 {
		seq, body, ok := s.readBank(i)
		if ok && (s.newest < 0 || seq > best) && st.decode(body) == nil {
			s.newest, best = i, seq
		}
	}
	*st = state{}
	if s.newest >= 0 {
		_, body, _ := s.readBank(s.newest)
		st.decode(body)
		st.seq = best
	}
}

// commit writes st as the newest record: into the bank that does not hold
// the current newest record, with a sequence number one higher. On success
// st.seq is updated. A power cut at any point leaves either the old or the
// new record as the newest valid one.
func (s *storage) commit(st *state) error {
	body := st.encode(s.buf[recordHeader:recordHeader])
	n := uint32(len(body))
	target := 0
	if s.newest == 0 {
		target = 1
	}
	b := s.banks[target]
	ws := s.f.Geometry().WriteSize
	total := recordHeader + n + recordCheck
	padded := (total + ws - 1) / ws * ws
	if padded > MaxRecordSize || padded > b.size {
		return ErrStateTooLarge
	}
	seq := st.seq + 1
	copy(s.buf[:4], recordMagic[:])
	binary.LittleEndian.PutUint32(s.buf[4:8], seq)
	binary.LittleEndian.PutUint32(s.buf[8:12], n)
	sum := sha256.Sum256(s.buf[:recordHeader+n])
	copy(s.buf[recordHeader+n:], sum[:])
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
	if got, _, ok := s.readBank(target); !ok || got != seq {
		return hal.ErrFlashFailure
	}
	s.newest = target
	st.seq = seq
	return nil
}

// fits reports whether a record with a body of n bytes fits a bank.
func (s *storage) fits(n int) bool {
	ws := int(s.f.Geometry().WriteSize)
	padded := (recordHeader + n + recordCheck + ws - 1) / ws * ws
	return padded <= MaxRecordSize && padded <= int(s.banks[0].size)
}
