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
// installs (docs/sbm.md, "Wear"). It also counts the boots since power-on
// and holds the install reports' epoch and count (docs/spec/report.md). It
// sits just below the recovery flag at the end of RAM:
//
//	magic   8 bytes "SBMRAM02"
//	flags   u8: bit 0 update requested, bit 1 a rejection is recorded,
//	        bit 2 the rejected package's manifest digest is recorded,
//	        bit 3 the report epoch is set
//	code    u8: the rejection's wire.Code
//	n       u8: detail length (≤ 64)
//	erases  u32: staging sector erases the application caused since
//	        power-on or the last install (the staging wear budget)
//	detail  64 bytes
//	boots   u32: boots since power-on
//	epoch   u32: report epoch (the secure-storage sequence number of the
//	        commit that opened it)
//	reports u32: reports signed in this epoch
//	package 32 bytes: manifest digest of the rejected package
//	check   8 bytes: SHA-256 of the 123 bytes before, truncated
//
// RAM content at power-on is arbitrary on real parts; the check makes it
// read as no record.
const (
	retainedSize   = retainedBody + 8
	retainedBody   = 8 + 3 + 4 + maxDetail + 4 + 4 + 4 + 32
	flagUpdateReq  = 1 << 0
	flagRejected   = 1 << 1
	flagPackage    = 1 << 2
	flagEpoch      = 1 << 3
	retainedFlags  = flagUpdateReq | flagRejected | flagPackage | flagEpoch
	retainedDetail = 15 // offset of detail
	retainedBoots  = retainedDetail + maxDetail
)

var retainedMagic = [8]byte{'S', 'B', 'M', 'R', 'A', 'M', '0', '2'}

// retained is the decoded retained record.
type retained struct {
	flags     uint8
	code      wire.Code
	detail    [maxDetail]byte
	detailLen uint8
	erases    uint32
	boots     uint32   // boots since power-on
	epoch     uint32   // report epoch, valid with flagEpoch
	reports   uint32   // reports signed in the epoch
	pkg       [32]byte // rejected package's manifest digest, with flagPackage
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
	m.ret.flags = b[8] & retainedFlags
	m.ret.code = wire.Code(b[9])
	m.ret.erases = binary.LittleEndian.Uint32(b[11:15])
	m.ret.detailLen = uint8(copy(m.ret.detail[:], b[retainedDetail:retainedDetail+int(b[10])]))
	m.ret.boots = binary.LittleEndian.Uint32(b[retainedBoots:])
	m.ret.epoch = binary.LittleEndian.Uint32(b[retainedBoots+4:])
	m.ret.reports = binary.LittleEndian.Uint32(b[retainedBoots+8:])
	copy(m.ret.pkg[:], b[retainedBoots+12:retainedBody])
}

// writeRetained stores m.ret in RAM (an empty record when it is empty).
func (m *machine) writeRetained() {
	a, ok := m.retainedAddr()
	if !ok {
		return
	}
	var b [retainedSize]byte
	if m.ret.flags != 0 || m.ret.erases != 0 || m.ret.boots != 0 {
		copy(b[:8], retainedMagic[:])
		b[8] = m.ret.flags
		b[9] = byte(m.ret.code)
		b[10] = m.ret.detailLen
		binary.LittleEndian.PutUint32(b[11:15], m.ret.erases)
		copy(b[retainedDetail:], m.ret.detail[:m.ret.detailLen])
		binary.LittleEndian.PutUint32(b[retainedBoots:], m.ret.boots)
		binary.LittleEndian.PutUint32(b[retainedBoots+4:], m.ret.epoch)
		binary.LittleEndian.PutUint32(b[retainedBoots+8:], m.ret.reports)
		copy(b[retainedBoots+12:retainedBody], m.ret.pkg[:])
		sum := sha256.Sum256(b[:retainedBody])
		copy(b[retainedBody:], sum[:8])
	}
	m.hw.RAM.Write(a, b[:])
}

// setRejected records a rejected update in the retained record, with the
// manifest digest of the staged package if the SBM got as far as reading
// its manifest.
func (m *machine) setRejected(werr *wire.Error) {
	m.ret.flags |= flagRejected
	m.ret.flags &^= flagPackage
	m.ret.code = werr.Code
	m.ret.detailLen = uint8(copy(m.ret.detail[:], werr.Detail))
	if m.stagedOK {
		m.ret.flags |= flagPackage
		m.ret.pkg = m.staged
	}
}

// countBoot counts this boot in the retained record (boots since
// power-on; saturating).
func (m *machine) countBoot() {
	if m.ret.boots < ^uint32(0) {
		m.ret.boots++
	}
	m.writeRetained()
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
