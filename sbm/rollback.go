package sbm

import (
	"strconv"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/wire"
)

// FuseSecurityCounter is the monotonic fuse counter (hal.ReadCounter) that
// holds the anti-rollback security counter. The secure-storage counter is
// its companion: restoring older flash content can bring back an older
// record, never a lower fuse value (docs/sbm.md, "Anti-rollback").
const FuseSecurityCounter = 0

// fuseCounter returns the anti-rollback fuse counter, read once per boot
// (only the SBM changes it, in syncFuses).
func (m *machine) fuseCounter() (uint32, *wire.Error) {
	if !m.fuseRead {
		v, err := hal.ReadCounter(m.hw.Fuses, FuseSecurityCounter)
		if err != nil {
			return 0, wire.Errorf(wire.CodeInternal, "cannot read the anti-rollback fuses")
		}
		m.fuse, m.fuseRead = uint32(v), true
	}
	return m.fuse, nil
}

// counterFloor returns the lowest security counter the device accepts: the
// higher of the stored and the fuse counter.
func (m *machine) counterFloor() (uint32, *wire.Error) {
	f, werr := m.fuseCounter()
	if werr != nil {
		return 0, werr
	}
	return max(f, m.st.counter), nil
}

// syncFuses advances the fuse counter to the stored counter when it is
// behind: after a commit that raised the counter (install), and at boot to
// complete an advance a power cut interrupted. Only an authentic record
// (secure storage is MACed with a PUF key) can raise it; nothing lowers it.
// It blows fuses only when the counter actually rises.
func (m *machine) syncFuses() {
	if !m.st.provisioned {
		return
	}
	f, werr := m.fuseCounter()
	want := min(m.st.counter, hal.CounterMax)
	if werr != nil || f >= want {
		return
	}
	m.fuseRead = false // read again, whatever the write did
	err := hal.AdvanceCounter(m.hw.Fuses, FuseSecurityCounter, int(want))
	m.fuseCounter()
	if err != nil {
		m.log("sbm: anti-rollback fuse write failed: ", err.Error())
		return
	}
	m.log("sbm: anti-rollback fuse counter advanced to ", strconv.Itoa(int(want)))
}

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
