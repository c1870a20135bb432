package sbm

import (
	"strconv"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/internal/secpkg"
	"github.com/sbm-project/sbm/wire"
)

// The monotonic fuse counters (hal.ReadCounter) the SBM uses. Each has a
// companion in secure storage: restoring older flash content can bring
// back an older record, never a lower fuse value (docs/sbm.md,
// "Anti-rollback" and "Key epochs and revocation").
const (
	// FuseSecurityCounter holds the anti-rollback security counter.
	FuseSecurityCounter = 0
	// FuseImageEpoch holds the lowest image-signing key epoch accepted.
	FuseImageEpoch = 1
	// FuseUpdateEpoch holds the lowest update-authority key epoch accepted.
	FuseUpdateEpoch = 2
	// FuseRootIndex holds the root-key fuse slot of the current root key
	// (hal.RootKeySlots): the roots of the slots below it are revoked.
	FuseRootIndex = 3
)

// fuseOfRole is the epoch counter of each secpkg.Role.
var fuseOfRole = [3]int{-1, FuseImageEpoch, FuseUpdateEpoch}

// fuseValue returns fuse counter n, read once per boot (only the SBM
// changes the counters, in syncFuses).
func (m *machine) fuseValue(n int) (uint32, *wire.Error) {
	if !m.fuseRead {
		for i := range m.fuse {
			v, err := hal.ReadCounter(m.hw.Fuses, i)
			if err != nil {
				return 0, wire.Errorf(wire.CodeInternal, "cannot read the anti-rollback fuses")
			}
			m.fuse[i] = uint32(v)
		}
		m.fuseRead = true
	}
	return m.fuse[n], nil
}

// fuseCounter returns the anti-rollback fuse counter.
func (m *machine) fuseCounter() (uint32, *wire.Error) { return m.fuseValue(FuseSecurityCounter) }

// counterFloor returns the lowest security counter the device accepts: the
// higher of the stored and the fuse counter.
func (m *machine) counterFloor() (uint32, *wire.Error) {
	f, werr := m.fuseCounter()
	if werr != nil {
		return 0, werr
	}
	return max(f, m.st.counter), nil
}

// epochFloor returns the lowest key epoch the device accepts for role: the
// higher of the stored floor and its fuse counter.
func (m *machine) epochFloor(role secpkg.Role) (uint8, *wire.Error) {
	f, werr := m.fuseValue(fuseOfRole[role])
	if werr != nil {
		return 0, werr
	}
	return max(uint8(min(f, secpkg.MaxEpoch)), m.st.epochFloor[role]), nil
}

// syncFuses advances each fuse counter to its stored companion when it is
// behind: after a commit that raised one (install), and at boot to
// complete an advance a power cut interrupted. Only an authentic record
// (secure storage is MACed with a PUF key) can raise them; nothing lowers
// them. Fuses are blown only when a value actually rises.
func (m *machine) syncFuses() {
	if !m.st.provisioned {
		return
	}
	want := [hal.NumCounters]uint32{FuseSecurityCounter: min(m.st.counter, hal.CounterMax)}
	want[FuseImageEpoch] = uint32(m.st.epochFloor[secpkg.RoleImageSigning])
	want[FuseUpdateEpoch] = uint32(m.st.epochFloor[secpkg.RoleUpdateAuthority])
	want[FuseRootIndex] = uint32(m.st.rootSlot)
	for n, w := range want {
		f, werr := m.fuseValue(n)
		if werr != nil || f >= w {
			continue
		}
		m.fuseRead = false // read again, whatever the write did
		err := hal.AdvanceCounter(m.hw.Fuses, n, int(w))
		m.fuseValue(n)
		if err != nil {
			m.log("sbm: fuse counter write failed: ", err.Error())
			continue
		}
		m.log("sbm: fuse counter ", counterName[n], " advanced to ", strconv.Itoa(int(w)))
	}
}

var counterName = [hal.NumCounters]string{"anti-rollback", "image-signing epoch", "update-authority epoch", "root index"}

// checkRollback refuses a signature-table entry below the fuse counter:
// the secure storage is older than the device (restored flash).
func (m *machine) checkRollback() *wire.Error {
	f, werr := m.fuseCounter()
	if werr != nil {
		return werr
	}
	if m.st.app.counter < f || m.st.counter < f {
		return wire.Errorf(wire.CodeDowngrade, "counter "+strconv.Itoa(int(m.st.app.counter))+
			" below the anti-rollback fuse "+strconv.Itoa(int(f))+": restored flash?")
	}
	return nil
}
