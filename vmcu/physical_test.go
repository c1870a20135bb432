package vmcu

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/sbm-project/sbm/hal"
)

const allLocks = hal.LockDebug | hal.LockSBMWriteProtect | hal.LockSecureHidden

// TestFlashDumpRestoreExternal: on external flash the attacker reads and
// writes the whole array, SBM region included, after every lock is blown.
func TestFlashDumpRestoreExternal(t *testing.T) {
	b, _ := LookupBoard("small")
	g := b.Geometry
	d := NewMemory(b, 1)
	f := d.Flash(hal.PrivSBM)
	sbmR, _ := g.Region(hal.RegionSBM)
	if err := f.Program(sbmR.Start, pattern(64, g.Erased)); err != nil {
		t.Fatal(err)
	}
	if err := d.Fuses().ProgramWord(hal.FuseLocks, allLocks); err != nil {
		t.Fatal(err)
	}
	fusesBefore, opsBefore := d.fuses, d.OpCount()

	dump, err := d.DumpFlash()
	if err != nil {
		t.Fatalf("dump of a locked device with external flash: %v", err)
	}
	if len(dump) != int(g.Size) || !bytes.Equal(dump[:64], pattern(64, g.Erased)) {
		t.Fatalf("dump: %d bytes, starting %x", len(dump), dump[:8])
	}
	dump[0] ^= 0xFF // an attacker patches the SBM
	dump[g.Size-1] = 0x5A

	// A wrong size writes nothing.
	for _, n := range []int{0, int(g.Size) - 1, int(g.Size) + 1} {
		if err := d.RestoreFlash(make([]byte, n)); err == nil {
			t.Errorf("restore of %d bytes accepted", n)
		}
	}
	if w := d.Wear(); slices.Max(w) != 0 {
		t.Fatalf("refused restores changed the wear: %v", w)
	}

	if err := d.RestoreFlash(dump); err != nil {
		t.Fatalf("restore: %v", err)
	}
	got := make([]byte, g.Size)
	if err := f.Read(0, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, dump) {
		t.Error("flash differs from the restored image")
	}
	for i, w := range d.Wear() {
		if w != 1 {
			t.Fatalf("sector %d: wear %d after a restore, want 1", i, w)
		}
	}
	if d.fuses != fusesBefore {
		t.Error("restore changed the fuses")
	}
	if c := d.Counters(); c.Erases != 0 || c.Programs != 1 || d.OpCount() != opsBefore {
		t.Errorf("restore counted as operations: %+v, %d ops", c, d.OpCount())
	}

	// A bad sector stops the restore there.
	bad := g.Sectors[10]
	d.SetBadSector(bad.Start, true)
	if err := d.RestoreFlash(make([]byte, g.Size)); !errors.Is(err, hal.ErrFlashFailure) {
		t.Errorf("restore over a bad sector: %v", err)
	}
}

// TestFlashPhysicalInternal: internal flash is reachable only through the
// debug port, so its rules apply and the debug lock closes it.
func TestFlashPhysicalInternal(t *testing.T) {
	tests := []struct {
		name        string
		locks       uint32
		dumpErr     error
		restoreErr  error
		restoreDone bool
	}{
		{"unlocked", 0, nil, nil, true},
		{"secure hidden", hal.LockSecureHidden, nil, nil, true},
		{"sbm write-protected", hal.LockSBMWriteProtect, nil, hal.ErrWriteProtected, false},
		{"debug locked", hal.LockDebug, ErrFlashUnreachable, ErrFlashUnreachable, false},
		{"all locks", allLocks, ErrFlashUnreachable, ErrFlashUnreachable, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := LookupBoard("stm32f4")
			d := NewMemory(b, 1)
			if tt.locks != 0 {
				d.Fuses().ProgramWord(hal.FuseLocks, tt.locks)
			}
			dump, err := d.DumpFlash()
			if !errors.Is(err, tt.dumpErr) {
				t.Fatalf("dump: %v, want %v", err, tt.dumpErr)
			}
			if err == nil && len(dump) != int(b.Geometry.Size) {
				t.Fatalf("dump: %d bytes", len(dump))
			}
			img := pattern(int(b.Geometry.Size), b.Geometry.Erased)
			err = d.RestoreFlash(img)
			if !errors.Is(err, tt.restoreErr) {
				t.Fatalf("restore: %v, want %v", err, tt.restoreErr)
			}
			got := make([]byte, b.Geometry.Size)
			d.Flash(hal.PrivSBM).Read(0, got)
			if bytes.Equal(got, img) != tt.restoreDone {
				t.Errorf("restore done = %t, want %t", !tt.restoreDone, tt.restoreDone)
			}
			if err != nil && slices.Max(d.Wear()) != 0 {
				t.Errorf("refused restore changed the wear: %v", d.Wear())
			}
		})
	}
}

// TestFlashRestoreRefusedWhileRunning: the device must be off.
func TestFlashRestoreRefusedWhileRunning(t *testing.T) {
	b, _ := LookupBoard("small")
	d := NewMemory(b, 1)
	defer d.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.PowerOn(ctx, FirmwareFunc(func(ctx context.Context, hw *hal.Hardware) {
			close(started)
			<-ctx.Done()
		}), PowerOnOptions{})
	}()
	<-started
	if err := d.RestoreFlash(make([]byte, b.Geometry.Size)); !errors.Is(err, ErrPoweredOn) {
		t.Errorf("restore while powered on: %v", err)
	}
	if _, err := d.DumpFlash(); err != nil {
		t.Errorf("dump while powered on: %v", err)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("firmware did not stop")
	}
	if err := d.RestoreFlash(make([]byte, b.Geometry.Size)); err != nil {
		t.Errorf("restore after power-off: %v", err)
	}
}

// TestFlashRestorePersists: a restore of a device directory reaches its
// files (flash and wear), as every other change does.
func TestFlashRestorePersists(t *testing.T) {
	dir := newDir(t, "small")
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	b := d.Board()
	img := pattern(int(b.Geometry.Size), b.Geometry.Erased)
	if err := d.RestoreFlash(img); err != nil {
		t.Fatal(err)
	}
	d.Close()
	d, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	dump, err := d.DumpFlash()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dump, img) {
		t.Error("restored flash not persisted")
	}
	if w := d.Wear(); slices.Min(w) != 1 || slices.Max(w) != 1 {
		t.Errorf("wear after a restore and reopen: %v", w)
	}
}
