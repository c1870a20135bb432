package sbm

import (
	"encoding/binary"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/internal/secpkg"
	"github.com/sbm-project/sbm/wire"
)

// update installs the package the application staged and asked for
// (Services.RequestUpdate). The whole package is authenticated — container,
// manifest, UPK (exactly the checks of an install over the UART), every
// chunk and the plaintext digest — before the primary slot is touched.
// Then the install engine of the UART path takes over: install-pending
// marker, primary written, one final commit that also clears the request
// and records the result. A rejection clears the request, records why in
// the retained RAM record (BootInfo's last update result) and leaves the
// old application; it commits nothing.
func (m *machine) update() {
	m.log("sbm: update requested: authenticating the staged package")
	var v verified
	m.stagedOK = false
	werr := m.stagedPackage(&v)
	if werr == nil {
		werr = m.authenticate(&v)
	}
	if werr != nil {
		// Recorded in RAM only: a rejection writes no flash, so an
		// application looping on requests wears nothing (docs/sbm.md).
		m.log("sbm: update rejected: ", werr.Error())
		m.st.updateRequested = false
		m.setRejected(werr)
		m.writeRetained()
		return
	}
	if m.install(&v) == nil {
		m.updated = true
	}
}

// stagedPackage finds the package in the staging slot and runs checkPackage
// on it (everything but the payload).
func (m *machine) stagedPackage(v *verified) *wire.Error {
	sr, ok := m.hw.Flash.Geometry().Region(hal.RegionStaging)
	if !ok {
		return wire.Errorf(wire.CodeInternal, "no staging slot")
	}
	size, werr := stagedSize(m.hw.Flash, sr)
	if werr != nil {
		return werr
	}
	return m.checkPackage(flashReader{m.hw.Flash, sr.Start, size}, size, v)
}

// stagedSize walks the record headers of the package at the start of the
// staging slot and returns its size: the end of the payload record. The
// container is parsed properly by checkPackage; this only bounds it.
func stagedSize(f hal.Flash, sr hal.Region) (uint32, *wire.Error) {
	var h [8]byte
	if f.Read(sr.Start, h[:]) != nil {
		return 0, wire.Errorf(wire.CodeFlash, "staging read failed")
	}
	if h != secpkg.Magic {
		return 0, wire.Errorf(wire.CodeFormat, "staging slot holds no package")
	}
	off := uint64(8)
	for range 2 + secpkg.MaxUPKs {
		if off+8 > uint64(sr.Size) || f.Read(sr.Start+uint32(off), h[:]) != nil {
			break
		}
		end := off + 8 + uint64(binary.LittleEndian.Uint32(h[4:8]))
		if end > uint64(sr.Size) {
			break
		}
		if h[0] == secpkg.RecordPayload {
			return uint32(end), nil
		}
		off = end
	}
	return 0, wire.Errorf(wire.CodeFormat, "staged package truncated or malformed")
}

// recoveryMagic marks a recovery request in the last bytes of RAM
// (Services.RequestRecovery). RAM survives a reset but not a power cycle.
var recoveryMagic = [8]byte{'S', 'B', 'M', 'R', 'E', 'C', 'O', 'V'}

// recoveryFlagAddr returns the RAM address of the recovery flag.
func (m *machine) recoveryFlagAddr() (uint32, bool) {
	ram := m.hw.RAM
	if ram == nil || ram.Size() < 2*mailboxReserve {
		return 0, false
	}
	return ram.Size() - uint32(len(recoveryMagic)), true
}

// mailboxReserve is RAM the recovery flag keeps clear of, so it never
// overlaps a provisioning mailbox frame.
const mailboxReserve = 12 + 8192

// setRecoveryFlag asks the next boot (after a reset) for recovery.
func (m *machine) setRecoveryFlag() {
	if a, ok := m.recoveryFlagAddr(); ok {
		m.hw.RAM.Write(a, recoveryMagic[:])
	}
}

// takeRecoveryFlag reports and clears a recovery request.
func (m *machine) takeRecoveryFlag() bool {
	a, ok := m.recoveryFlagAddr()
	if !ok {
		return false
	}
	var b [8]byte
	if m.hw.RAM.Read(a, b[:]) != nil || b != recoveryMagic {
		return false
	}
	clear(b[:])
	m.hw.RAM.Write(a, b[:])
	return true
}
