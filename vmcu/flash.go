package vmcu

import (
	"encoding/binary"
	"fmt"

	"github.com/sbm-project/sbm/hal"
)

// Counters counts the operations of a device since it was opened (or
// created in memory). They are not persisted.
type Counters struct {
	Reads, Programs, Erases, FuseReads, FusePrograms uint64
	// BytesRead and BytesProgrammed count flash bytes.
	BytesRead, BytesProgrammed uint64
	// Faults counts refused accesses (access faults and write protection).
	Faults uint64
	// PowerCuts counts power cuts that fired.
	PowerCuts uint64
}

// Counters returns the operation counters.
func (d *Device) Counters() Counters {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.counters
}

// Wear returns the erase count of every sector (persisted). A sector whose
// count exceeds the board's endurance (Board.EnduranceCycles) is worn out:
// the erase that took it past the endurance failed, and every later erase
// or program of it fails, with an error wrapping hal.ErrFlashFailure. Reads
// still work.
func (d *Device) Wear() []uint32 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]uint32(nil), d.wear...)
}

func (d *Device) rangeLocked(op string, addr uint32, n int) error {
	if n < 0 || uint64(addr)+uint64(n) > uint64(d.board.Geometry.Size) {
		return fmt.Errorf("%s %#x+%d: %w (flash size %#x)", op, addr, n, hal.ErrOutOfRange, d.board.Geometry.Size)
	}
	return nil
}

// accessLocked applies the protections set by the lock fuses.
func (d *Device) accessLocked(op string, priv hal.Privilege, addr uint32, n int, write bool) error {
	locks := d.fuses[hal.FuseLocks]
	g := &d.board.Geometry
	if priv == hal.PrivApp && locks&hal.LockSecureHidden != 0 {
		for _, k := range []hal.RegionKind{hal.RegionSBM, hal.RegionSecure} {
			if r, ok := g.Region(k); ok && r.Overlaps(addr, uint32(n)) {
				d.counters.Faults++
				return fmt.Errorf("%s %#x+%d: %w: %s region is not accessible to the application", op, addr, n, hal.ErrFault, k)
			}
		}
	}
	if write && locks&hal.LockSBMWriteProtect != 0 {
		if r, ok := g.Region(hal.RegionSBM); ok && r.Overlaps(addr, uint32(n)) {
			d.counters.Faults++
			return fmt.Errorf("%s %#x+%d: %w: sbm region", op, addr, n, hal.ErrWriteProtected)
		}
	}
	return nil
}

// readFlash copies flash into p.
func (d *Device) readFlash(priv hal.Privilege, addr uint32, p []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.rangeLocked("read", addr, len(p)); err != nil {
		return err
	}
	if err := d.accessLocked("read", priv, addr, len(p), false); err != nil {
		return err
	}
	copy(p, d.flash[addr:])
	d.counters.Reads++
	d.counters.BytesRead += uint64(len(p))
	return nil
}

// programFlash programs p at addr.
func (d *Device) programFlash(priv hal.Privilege, addr uint32, p []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	g := &d.board.Geometry
	if err := d.rangeLocked("program", addr, len(p)); err != nil {
		return err
	}
	if len(p) == 0 {
		return nil
	}
	if addr%g.WriteSize != 0 || uint32(len(p))%g.WriteSize != 0 {
		return fmt.Errorf("program %#x+%d: %w: address and length must be multiples of %d", addr, len(p), hal.ErrMisaligned, g.WriteSize)
	}
	if err := d.accessLocked("program", priv, addr, len(p), true); err != nil {
		return err
	}
	dst := d.flash[addr : addr+uint32(len(p))]
	for i, b := range dst {
		if b != g.Erased {
			return fmt.Errorf("program %#x+%d: %w at %#x (reads %#02x)", addr, len(p), hal.ErrNotErased, addr+uint32(i), b)
		}
	}
	cut, op := d.beginOpLocked(OpProgram, addr, uint32(len(p)))
	if cut != nil {
		if cut.Torn {
			tearProgram(cut.rng(op.Seq), dst, p, int(g.WriteSize), g.Erased)
			if err := persist(d.flashF, dst, int64(addr)); err != nil {
				return err
			}
		}
		return d.powerLostLocked(cut, op)
	}
	for s := addr; s < addr+uint32(len(p)); {
		i, _ := g.SectorAt(s)
		if d.isBadLocked(g.Sectors[i].Start) {
			return fmt.Errorf("program %#x+%d: %w: bad sector %#x", addr, len(p), hal.ErrFlashFailure, g.Sectors[i].Start)
		}
		if d.wornLocked(i) {
			return d.wornErrLocked(fmt.Sprintf("program %#x+%d", addr, len(p)), i)
		}
		s = g.Sectors[i].End()
	}
	copy(dst, p)
	d.counters.Programs++
	d.counters.BytesProgrammed += uint64(len(p))
	return persist(d.flashF, dst, int64(addr))
}

// eraseFlash erases the sector starting at addr.
func (d *Device) eraseFlash(priv hal.Privilege, addr uint32) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	g := &d.board.Geometry
	if err := d.rangeLocked("erase", addr, 1); err != nil {
		return err
	}
	i, _ := g.SectorAt(addr)
	sec := g.Sectors[i]
	if sec.Start != addr {
		return fmt.Errorf("erase %#x: %w: not the start of a sector (sector %d starts at %#x)", addr, hal.ErrMisaligned, i, sec.Start)
	}
	if err := d.accessLocked("erase", priv, addr, int(sec.Size), true); err != nil {
		return err
	}
	dst := d.flash[sec.Start:sec.End()]
	cut, op := d.beginOpLocked(OpErase, addr, sec.Size)
	if cut != nil {
		if cut.Torn && !d.wornLocked(i) {
			tearErase(cut.rng(op.Seq), dst, g.Erased)
			if err := d.wearLocked(i); err != nil {
				return err
			}
			if err := persist(d.flashF, dst, int64(addr)); err != nil {
				return err
			}
		}
		return d.powerLostLocked(cut, op)
	}
	if d.isBadLocked(sec.Start) {
		return fmt.Errorf("erase %#x: %w: bad sector", addr, hal.ErrFlashFailure)
	}
	if err := d.eraseCycleLocked(fmt.Sprintf("erase %#x", addr), i); err != nil {
		return err
	}
	for j := range dst {
		dst[j] = g.Erased
	}
	d.counters.Erases++
	return persist(d.flashF, dst, int64(addr))
}

// wornLocked reports whether sector i is worn out: it has been erased more
// times than the board's endurance.
func (d *Device) wornLocked(i int) bool {
	return d.wear[i] > d.board.EnduranceCycles()
}

// eraseCycleLocked counts an erase of sector i in its wear and reports an
// error if the sector is worn out or this erase wears it out. The erase
// that goes past the endurance is counted (it is what wore the sector out,
// and the count then marks the sector worn out for good); later ones are
// not.
func (d *Device) eraseCycleLocked(op string, i int) error {
	if d.wornLocked(i) {
		return d.wornErrLocked(op, i)
	}
	if err := d.wearLocked(i); err != nil {
		return err
	}
	if d.wornLocked(i) {
		return d.wornErrLocked(op, i)
	}
	return nil
}

// wornErrLocked is the error of an operation op on the worn-out sector i.
func (d *Device) wornErrLocked(op string, i int) error {
	return fmt.Errorf("%s: %w: sector %d (%#x) is worn out: erased %d times, endurance %d cycles",
		op, hal.ErrFlashFailure, i, d.board.Geometry.Sectors[i].Start, d.wear[i], d.board.EnduranceCycles())
}

func (d *Device) wearLocked(i int) error {
	d.wear[i]++
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], d.wear[i])
	return persist(d.wearF, b[:], int64(4*i))
}

// flashView is a hal.Flash on the device at one privilege, without a
// firmware session (used by the debug port and host tools).
type flashView struct {
	d    *Device
	priv hal.Privilege
}

// Flash returns the device's flash at privilege priv, for host-side use
// (tests, tools). Unlike the views given to firmware, its methods return
// power-loss errors (*PowerLoss) instead of stopping the caller.
func (d *Device) Flash(priv hal.Privilege) hal.Flash { return flashView{d, priv} }

func (f flashView) Geometry() hal.Geometry              { return f.d.board.Geometry }
func (f flashView) Privilege() hal.Privilege            { return f.priv }
func (f flashView) Read(addr uint32, p []byte) error    { return f.d.readFlash(f.priv, addr, p) }
func (f flashView) Program(addr uint32, p []byte) error { return f.d.programFlash(f.priv, addr, p) }
func (f flashView) Erase(addr uint32) error             { return f.d.eraseFlash(f.priv, addr) }

// mapFlash returns the bytes [addr, addr+n) of the flash array itself (an
// execute-in-place view), after the range and access checks of a read.
func (d *Device) mapFlash(priv hal.Privilege, addr, n uint32) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.rangeLocked("map", addr, int(n)); err != nil {
		return nil, err
	}
	if err := d.accessLocked("map", priv, addr, int(n), false); err != nil {
		return nil, err
	}
	return d.flash[addr : addr+n : addr+n], nil
}

// Map implements hal.Mapper: the flash array in place, read-only by
// contract.
func (f flashView) Map(addr, n uint32) ([]byte, error) { return f.d.mapFlash(f.priv, addr, n) }
