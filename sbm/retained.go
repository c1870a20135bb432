package sbm

import (
	"crypto/sha256"
	"encoding/binary"

	"github.com/sbm-project/sbm/wire"
)

// The retained record: the application's update request and the result
// of a rejected update, kept in RAM (which survives a reset but not a
// power cycle) instead of secure storage, so that no service an
// application can call causes a flash erase unless a genuine package
// installs (docs/sbm.md, "Wear"). It sits just below the recovery flag at
// the end of RAM:
//
//	magic  8 bytes "SBMRAM01"
//	flags  u8: bit 0 update requested, bit 1 a rejection is recorded
//	code   u8: the rejection's wire.Code
//	n      u8: detail length (≤ 64)
//	erases u32: staging sector erases the application caused since
//	       power-on or the last install (the staging wear budget)
//	detail 64 bytes
//	check  8 bytes: SHA-256 of the 79 bytes before, truncated
//
// RAM content at power-on is arbitrary on real parts; the check makes it
// read as no record.
const (
	retainedSize  = 88
	retainedBody  = 8 + 3 + 4 + maxDetail
	flagUpdateReq = 1 << 0
	flagRejected  = 1 << 1
)

var retainedMagic = [8]byte{'S', 'B', 'M', 'R', 'A', 'M', '0', '1'}

// retained is the decoded retained record.
type retained struct {
	flags     uint8
	code      wire.Code
	detail    [maxDetail]byte
	detailLen uint8
	erases    uint32
}

func (r *retained) updateRequested() bool { return r.flags&flagUpdateReq != 0 }
func (r *retained) rejected() bool        { return r.flags&flagRejected != 0 }
func (r *retained) detailText() string    { return string(r.detail[:r.detailLen]) }

// retainedAddr returns the RAM address of the retained record.
func (m *machine) retainedAddr() (uint32, bool) {
	a, ok := m.recoveryFlagAddr()
	if !ok {
		return 0, false
	}
	return a - retainedSize, true
}

// readRetained loads the retained record into m.ret (zero if none).
func (m *machine) readRetained() {
	m.ret = retained{}
	a, ok := m.retainedAddr()
	if !ok {
		return
	}
	var b [retainedSize]byte
	if m.hw.RAM.Read(a, b[:]) != nil || [8]byte(b[:8]) != retainedMagic {
		return
	}
	sum := sha256.Sum256(b[:retainedBody])
	if [8]byte(sum[:8]) != [8]byte(b[retainedBody:retainedBody+8]) || b[10] > maxDetail {
		return
	}
	m.ret.flags = b[8] & (flagUpdateReq | flagRejected)
	m.ret.code = wire.Code(b[9])
	m.ret.erases = binary.LittleEndian.Uint32(b[11:15])
	m.ret.detailLen = uint8(copy(m.ret.detail[:], b[15:15+int(b[10])]))
}

// writeRetained stores m.ret in RAM (an empty record when it is empty).
func (m *machine) writeRetained() {
	a, ok := m.retainedAddr()
	if !ok {
		return
	}
	var b [retainedSize]byte
	if m.ret.flags != 0 || m.ret.erases != 0 {
		copy(b[:8], retainedMagic[:])
		b[8] = m.ret.flags
		b[9] = byte(m.ret.code)
		b[10] = m.ret.detailLen
		binary.LittleEndian.PutUint32(b[11:15], m.ret.erases)
		copy(b[15:], m.ret.detail[:m.ret.detailLen])
		sum := sha256.Sum256(b[:retainedBody])
		copy(b[retainedBody:], sum[:8])
	}
	m.hw.RAM.Write(a, b[:])
}

// setRejected records a rejected update in the retained record.
func (m *machine) setRejected(werr *wire.Error) {
	m.ret.flags |= flagRejected
	m.ret.code = werr.Code
	m.ret.detailLen = uint8(copy(m.ret.detail[:], werr.Detail))
}

// StagingEraseRounds is the staging wear budget: the application may cause
// at most this many erases of each staging sector (counted over the whole
// slot) between two power-ups or genuine installs. A download erases each
// sector it uses once, so a few rounds leave room for retries, while an
// application looping on erase and reset cannot wear the staging slot out
// and block the OEM's next update (docs/sbm.md, "Wear").
const StagingEraseRounds = 4

// spendStagingErase charges one staging sector erase to the budget.
func (m *machine) spendStagingErase(sectors int) *wire.Error {
	if m.ret.erases >= uint32(StagingEraseRounds*sectors) {
		return wire.Errorf(wire.CodeState, "staging erase budget spent until a power cycle or an install")
	}
	m.ret.erases++
	m.writeRetained()
	return nil
}
