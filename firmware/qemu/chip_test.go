package qemu

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/sbm-project/sbm/firmware/mps2/chip"
	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/vmcu"
)

// TestDebugPort checks the chip file's debug port: NOR rules, RAM, fuses
// that only set bits, the SBM write protection and the debug lock.
func TestDebugPort(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "chip.img")
	id := [hal.IDSize]byte{1, 2, 3, 4}
	if err := CreateChip(path, id); err != nil {
		t.Fatal(err)
	}
	if err := CreateChip(path, id); err == nil {
		t.Fatal("CreateChip overwrote a chip file")
	}
	dp := &DebugPort{Chip: path}
	if got, err := dp.ID(ctx); err != nil || got != id {
		t.Fatalf("ID = %x, %v", got, err)
	}
	if b, err := dp.Board(ctx); err != nil || b.Geometry.Size != chip.FlashSize {
		t.Fatalf("Board = %+v, %v", b, err)
	}
	primary, _ := chip.Geometry().Region(hal.RegionPrimary)
	a := primary.Start
	if got, _ := dp.Read(ctx, a, 8); !bytes.Equal(got, bytes.Repeat([]byte{0xFF}, 8)) {
		t.Fatalf("blank flash reads %x", got)
	}
	data := []byte("8 bytes!")
	if err := dp.Program(ctx, a, data); err != nil {
		t.Fatal(err)
	}
	if got, _ := dp.Read(ctx, a, 8); !bytes.Equal(got, data) {
		t.Fatalf("programmed flash reads %q", got)
	}
	if err := dp.Program(ctx, a, data); !errors.Is(err, hal.ErrNotErased) {
		t.Fatalf("program over programmed flash: %v", err)
	}
	if err := dp.Program(ctx, a+4, data); !errors.Is(err, hal.ErrMisaligned) {
		t.Fatalf("misaligned program: %v", err)
	}
	if err := dp.Erase(ctx, a+8); !errors.Is(err, hal.ErrMisaligned) {
		t.Fatalf("erase inside a sector: %v", err)
	}
	if err := dp.Erase(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := dp.Program(ctx, a, data); err != nil {
		t.Fatalf("program after erase: %v", err)
	}
	if err := dp.Write(ctx, a, data); err == nil {
		t.Fatal("a RAM write to a flash address succeeded")
	}
	if err := dp.Write(ctx, chip.DebugRAMBase+16, data); err != nil {
		t.Fatal(err)
	}
	if got, _ := dp.Read(ctx, chip.DebugRAMBase+16, 8); !bytes.Equal(got, data) {
		t.Fatalf("RAM reads %q", got)
	}
	if err := PowerOn(path); err != nil {
		t.Fatal(err)
	}
	if got, _ := dp.Read(ctx, chip.DebugRAMBase+16, 8); !bytes.Equal(got, make([]byte, 8)) {
		t.Fatalf("RAM after power-on reads %x", got)
	}
	if _, err := dp.Read(ctx, chip.FlashSize-4, 8); !errors.Is(err, hal.ErrOutOfRange) {
		t.Fatalf("read past the flash: %v", err)
	}

	f := dp.Fuses(ctx)
	if err := f.ProgramWord(hal.FuseUser, 0x0F); err != nil {
		t.Fatal(err)
	}
	if err := f.ProgramWord(hal.FuseUser, 0xF0); err != nil {
		t.Fatal(err)
	}
	if w, _ := f.ReadWord(hal.FuseUser); w != 0xFF {
		t.Fatalf("fuse word %#x, want 0xff (bits only set)", w)
	}
	if err := hal.BlowLocks(f, hal.LockSBMWriteProtect); err != nil {
		t.Fatal(err)
	}
	if err := dp.Erase(ctx, 0); !errors.Is(err, hal.ErrWriteProtected) {
		t.Fatalf("erase of the protected SBM region: %v", err)
	}
	if err := dp.Program(ctx, a+8, data); err != nil {
		t.Fatalf("program outside the SBM region after write protect: %v", err)
	}
	if err := hal.BlowLocks(f, hal.LockDebug); err != nil {
		t.Fatal(err)
	}
	if _, err := dp.ID(ctx); !errors.Is(err, vmcu.ErrDebugLocked) {
		t.Fatalf("ID after the debug lock: %v", err)
	}
	if _, err := dp.Read(ctx, a, 8); !errors.Is(err, vmcu.ErrDebugLocked) {
		t.Fatalf("read after the debug lock: %v", err)
	}
	if w, err := ReadFuseWord(path, hal.FuseLocks); err != nil || w != hal.LockDebug|hal.LockSBMWriteProtect {
		t.Fatalf("lock word %#x, %v", w, err)
	}
}
