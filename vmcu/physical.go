package vmcu

import (
	"errors"
	"fmt"

	"github.com/sbm-project/sbm/hal"
)

// ErrFlashUnreachable is returned by DumpFlash and RestoreFlash on a board
// whose flash is internal to the MCU once the debug-lock fuse is blown.
var ErrFlashUnreachable = errors.New("flash is internal to the MCU and the debug port is locked: not reachable")

// DumpFlash returns a copy of the whole flash array (exactly the board's
// flash size), read the way a physical attacker reads it.
//
// It models an attacker with the board in hand. On a board whose flash is
// external (FlashExternal) it is a test clip on the flash chip's pins: it
// bypasses the MCU entirely — no debug port, no lock fuses, no privilege
// checks — and works on a locked device. On a board whose flash is internal
// (FlashInternal) the only way in is the MCU's debug port, so it fails with
// ErrFlashUnreachable once LockDebug is blown and is allowed before.
//
// It is not an operation: it is neither recorded nor counted, and cannot be
// power-cut. It may be called while firmware runs.
func (d *Device) DumpFlash() ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.physicalAccessLocked("dump flash"); err != nil {
		return nil, err
	}
	return append([]byte(nil), d.flash...), nil
}

// RestoreFlash writes data, which must be exactly the board's flash size,
// over the whole flash array, the way a physical attacker writes it; with a
// wrong size it fails and writes nothing. Reachability is as for DumpFlash;
// on internal flash it also obeys the debug port's rules, so it fails with
// hal.ErrWriteProtected, writing nothing, once LockSBMWriteProtect is
// blown (it must erase the SBM region). On external flash it writes every
// region, the SBM region included.
//
// Like a clip programmer, it erases and programs every sector in address
// order: each sector's erase counts in its wear (Wear), and a bad or
// worn-out sector stops the restore with an error wrapping
// hal.ErrFlashFailure, the sectors before it rewritten. It changes nothing
// else: fuses, RAM, bad-sector marks and any armed power cut are untouched,
// and it is not an operation (not recorded, counted or power-cut). The
// device must be powered off (no firmware session): otherwise it fails with
// ErrPoweredOn.
func (d *Device) RestoreFlash(data []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	g := &d.board.Geometry
	if d.sess != nil {
		return fmt.Errorf("restore flash: %w: power the device off first", ErrPoweredOn)
	}
	if err := d.physicalAccessLocked("restore flash"); err != nil {
		return err
	}
	if len(data) != int(g.Size) {
		return fmt.Errorf("restore flash: image is %d bytes, want exactly the flash size of board %s, %d bytes", len(data), d.board.Name, g.Size)
	}
	if d.board.FlashLocation == FlashInternal && d.fuses[hal.FuseLocks]&hal.LockSBMWriteProtect != 0 {
		return fmt.Errorf("restore flash: %w: the sbm region cannot be erased through the debug port", hal.ErrWriteProtected)
	}
	for i, sec := range g.Sectors {
		op := fmt.Sprintf("restore flash: erase %#x", sec.Start)
		if d.isBadLocked(sec.Start) {
			return fmt.Errorf("%s: %w: bad sector", op, hal.ErrFlashFailure)
		}
		if err := d.eraseCycleLocked(op, i); err != nil {
			return err
		}
		dst := d.flash[sec.Start:sec.End()]
		copy(dst, data[sec.Start:sec.End()])
		if err := persist(d.flashF, dst, int64(sec.Start)); err != nil {
			return err
		}
	}
	return nil
}

// physicalAccessLocked reports whether a physical attacker reaches the
// flash: always for external flash, through the debug port for internal
// flash.
func (d *Device) physicalAccessLocked(op string) error {
	if d.board.FlashLocation == FlashInternal && d.fuses[hal.FuseLocks]&hal.LockDebug != 0 {
		return fmt.Errorf("%s: %w", op, ErrFlashUnreachable)
	}
	return nil
}
