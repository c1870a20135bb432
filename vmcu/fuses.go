package vmcu

import (
	"encoding/binary"
	"fmt"
	"math/bits"

	"github.com/sbm-project/sbm/hal"
)

func (d *Device) fuseRangeLocked(op string, i int) error {
	if i < 0 || i >= hal.FuseWords {
		return fmt.Errorf("%s word %d: %w (want 0 to %d)", op, i, hal.ErrBadFuse, hal.FuseWords-1)
	}
	return nil
}

// readFuse returns fuse word i.
func (d *Device) readFuse(i int) (uint32, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.fuseRangeLocked("fuse read", i); err != nil {
		return 0, err
	}
	d.counters.FuseReads++
	return d.fuses[i], nil
}

// programFuse blows the bits set in v in word i. Programming no new bit is
// not an operation.
func (d *Device) programFuse(i int, v uint32) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.fuseRangeLocked("fuse program", i); err != nil {
		return err
	}
	old := d.fuses[i]
	if v&^old == 0 {
		return nil
	}
	cut, op := d.beginOpLocked(OpFuseProgram, uint32(i), 4)
	if cut != nil {
		if cut.Torn {
			d.fuses[i] = old | (v & cut.rng(op.Seq).Uint32())
			if err := d.persistFuseLocked(i); err != nil {
				return err
			}
		}
		return d.powerLostLocked(cut, op)
	}
	d.fuses[i] = old | v
	d.counters.FusePrograms++
	return d.persistFuseLocked(i)
}

func (d *Device) persistFuseLocked(i int) error {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], d.fuses[i])
	return persist(d.fusesF, b[:], int64(4*i))
}

// fuseView is a hal.Fuses without a firmware session.
type fuseView struct{ d *Device }

// Fuses returns the device's fuses for host-side use; like Device.Flash it
// returns power losses as errors.
func (d *Device) Fuses() hal.Fuses { return fuseView{d} }

func (f fuseView) Words() int                        { return hal.FuseWords }
func (f fuseView) ReadWord(i int) (uint32, error)    { return f.d.readFuse(i) }
func (f fuseView) ProgramWord(i int, v uint32) error { return f.d.programFuse(i, v) }

// Locks returns the lock-fuse word.
func (d *Device) Locks() uint32 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.fuses[hal.FuseLocks]
}

func countersOf(f *[hal.FuseWords]uint32) [hal.NumCounters]int {
	var c [hal.NumCounters]int
	for n := range c {
		for i := 0; i < hal.CounterWords; i++ {
			c[n] += bits.OnesCount32(f[hal.FuseCounters+n*hal.CounterWords+i])
		}
	}
	return c
}
