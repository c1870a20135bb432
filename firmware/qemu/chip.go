// Package qemu is the host side of the SBM firmware on QEMU's mps2-an385
// (docs/silicon.md): it makes the chip file the firmware boots from
// (CreateChip), runs QEMU on it (Machine), and gives programmer.Provision
// a debug port over the chip file (DebugPort), the stand-in for an SWD
// probe.
package qemu

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"github.com/sbm-project/sbm/firmware/mps2/chip"
	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/vmcu"
)

// BoardName is the board's name in production records.
const BoardName = "mps2-an385"

// CreateChip writes a new chip file at path: the unique ID id, a random
// PUF secret and RNG seed, blank fuses, erased flash, zeroed RAM. It is
// the emulated chip's manufacture; it refuses to overwrite a file.
func CreateChip(path string, id [hal.IDSize]byte) error {
	b := make([]byte, chip.FileSize)
	copy(b, chip.Magic)
	copy(b[chip.IDOffset:], id[:])
	if _, err := rand.Read(b[chip.PUFOffset : chip.RNGOffset+32]); err != nil {
		return err
	}
	for i := chip.FlashOffset; i < chip.RAMOffset; i++ {
		b[i] = chip.Erased
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Board returns the board description the provisioning tool uses.
func Board() *vmcu.Board {
	return &vmcu.Board{
		Name:        BoardName,
		Description: "QEMU mps2-an385 (Cortex-M3) running the TinyGo SBM firmware; 2 MiB emulated flash",
		Geometry:    chip.Geometry(),
		RAMSize:     chip.RAMSize,
		Runs:        []string{"bin"},
	}
}

// chipRead reads n bytes at offset off of the chip file.
func chipRead(path string, off int64, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		return nil, fmt.Errorf("chip file %s: %w", path, err)
	}
	return b, nil
}

// chipWrite writes p at offset off of the chip file.
func chipWrite(path string, off int64, p []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(p, off); err != nil {
		f.Close()
		return fmt.Errorf("chip file %s: %w", path, err)
	}
	return f.Close()
}

// ReadID returns the unique ID of the chip file at path.
func ReadID(path string) ([hal.IDSize]byte, error) {
	var id [hal.IDSize]byte
	h, err := chipRead(path, 0, chip.HeaderSize)
	if err != nil {
		return id, err
	}
	if string(h[:len(chip.Magic)]) != chip.Magic {
		return id, fmt.Errorf("%s: not a chip file", path)
	}
	copy(id[:], h[chip.IDOffset:])
	return id, nil
}

// ReadFuseWord returns fuse word i of the chip file at path.
func ReadFuseWord(path string, i int) (uint32, error) {
	if i < 0 || i >= hal.FuseWords {
		return 0, hal.ErrBadFuse
	}
	b, err := chipRead(path, int64(chip.FuseOffset+4*i), 4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

// PowerOn clears the chip's RAM, as a power cycle does (the RAM is kept
// across resets only).
func PowerOn(path string) error {
	return chipWrite(path, chip.RAMOffset, make([]byte, chip.RAMSize))
}

// DebugPort is the debug port of the chip: it reads and writes the chip
// file directly, as an SWD probe reads and writes a chip's flash, fuses
// and RAM, and refuses everything once the debug-lock fuse is blown
// (vmcu.ErrDebugLocked). A write halts the core (stops the Machine); Reset
// starts it again with the RAM kept. It implements programmer.DebugPort.
type DebugPort struct {
	// Chip is the chip file.
	Chip string
	// Machine, if set, is stopped before a write and started by Reset.
	Machine *Machine
}

// ErrNotErased and the other flash errors are hal's.
var errRAMOnly = errors.New("debug write: flash cannot be written, use program (and erase)")

func (p *DebugPort) open() error {
	locks, err := ReadFuseWord(p.Chip, hal.FuseLocks)
	if err != nil {
		return err
	}
	if locks&hal.LockDebug != 0 {
		return vmcu.ErrDebugLocked
	}
	return nil
}

// halt stops the core before the probe changes the chip.
func (p *DebugPort) halt() {
	if p.Machine != nil {
		p.Machine.Stop()
	}
}

// ID returns the chip's unique ID.
func (p *DebugPort) ID(ctx context.Context) ([hal.IDSize]byte, error) {
	if err := p.open(); err != nil {
		return [hal.IDSize]byte{}, err
	}
	return ReadID(p.Chip)
}

// Board returns the board description.
func (p *DebugPort) Board(ctx context.Context) (*vmcu.Board, error) {
	if err := p.open(); err != nil {
		return nil, err
	}
	return Board(), nil
}

// span maps a debug address to a chip file offset: flash at 0, RAM at
// chip.DebugRAMBase.
func span(addr uint32, n int) (int64, bool, error) {
	switch {
	case addr >= chip.DebugRAMBase && uint64(addr-chip.DebugRAMBase)+uint64(n) <= chip.RAMSize:
		return int64(chip.RAMOffset + addr - chip.DebugRAMBase), true, nil
	case uint64(addr)+uint64(n) <= chip.FlashSize:
		return int64(chip.FlashOffset + addr), false, nil
	}
	return 0, false, fmt.Errorf("debug access %#x+%d: %w", addr, n, hal.ErrOutOfRange)
}

// Read reads n bytes at addr.
func (p *DebugPort) Read(ctx context.Context, addr uint32, n int) ([]byte, error) {
	if err := p.open(); err != nil {
		return nil, err
	}
	off, _, err := span(addr, n)
	if err != nil {
		return nil, err
	}
	return chipRead(p.Chip, off, n)
}

// Write writes RAM.
func (p *DebugPort) Write(ctx context.Context, addr uint32, data []byte) error {
	if err := p.open(); err != nil {
		return err
	}
	off, ram, err := span(addr, len(data))
	if err != nil {
		return err
	}
	if !ram {
		return errRAMOnly
	}
	p.halt()
	return chipWrite(p.Chip, off, data)
}

// sbmProtected reports whether [addr, addr+n) touches the write-protected
// SBM region.
func (p *DebugPort) sbmProtected(addr uint32, n int) (bool, error) {
	locks, err := ReadFuseWord(p.Chip, hal.FuseLocks)
	if err != nil {
		return false, err
	}
	r, _ := chip.Geometry().Region(hal.RegionSBM)
	return locks&hal.LockSBMWriteProtect != 0 && r.Overlaps(addr, uint32(n)), nil
}

// Program programs flash with the NOR rules: whole words, erased bytes only.
func (p *DebugPort) Program(ctx context.Context, addr uint32, data []byte) error {
	if err := p.open(); err != nil {
		return err
	}
	off, ram, err := span(addr, len(data))
	if err != nil || ram {
		return fmt.Errorf("program %#x: %w", addr, hal.ErrOutOfRange)
	}
	if addr%chip.WriteSize != 0 || len(data)%chip.WriteSize != 0 {
		return fmt.Errorf("program %#x+%d: %w", addr, len(data), hal.ErrMisaligned)
	}
	if wp, err := p.sbmProtected(addr, len(data)); err != nil || wp {
		if err == nil {
			err = hal.ErrWriteProtected
		}
		return err
	}
	p.halt()
	cur, err := chipRead(p.Chip, off, len(data))
	if err != nil {
		return err
	}
	for i, b := range cur {
		if b != chip.Erased {
			return fmt.Errorf("program %#x: %w at %#x", addr, hal.ErrNotErased, addr+uint32(i))
		}
	}
	return chipWrite(p.Chip, off, data)
}

// Erase erases the sector at addr.
func (p *DebugPort) Erase(ctx context.Context, addr uint32) error {
	if err := p.open(); err != nil {
		return err
	}
	if addr%chip.SectorSize != 0 || addr >= chip.FlashSize {
		return fmt.Errorf("erase %#x: %w", addr, hal.ErrMisaligned)
	}
	if wp, err := p.sbmProtected(addr, chip.SectorSize); err != nil || wp {
		if err == nil {
			err = hal.ErrWriteProtected
		}
		return err
	}
	p.halt()
	b := make([]byte, chip.SectorSize)
	for i := range b {
		b[i] = chip.Erased
	}
	return chipWrite(p.Chip, int64(chip.FlashOffset+addr), b)
}

// Fuses returns the chip's fuses as seen through the debug port.
func (p *DebugPort) Fuses(ctx context.Context) hal.Fuses { return debugFuses{p} }

// Reset resets the chip: it starts the Machine again, keeping RAM.
func (p *DebugPort) Reset(ctx context.Context) error {
	if err := p.open(); err != nil {
		return err
	}
	if p.Machine == nil {
		return nil
	}
	p.Machine.Stop()
	return p.Machine.Start(ctx, nil)
}

type debugFuses struct{ p *DebugPort }

func (f debugFuses) Words() int { return hal.FuseWords }

func (f debugFuses) ReadWord(i int) (uint32, error) {
	if err := f.p.open(); err != nil {
		return 0, err
	}
	return ReadFuseWord(f.p.Chip, i)
}

// ProgramWord blows the bits set in v (OTP: bits are only ever set).
func (f debugFuses) ProgramWord(i int, v uint32) error {
	if err := f.p.open(); err != nil {
		return err
	}
	old, err := ReadFuseWord(f.p.Chip, i)
	if err != nil {
		return err
	}
	f.p.halt()
	return chipWrite(f.p.Chip, int64(chip.FuseOffset+4*i), binary.LittleEndian.AppendUint32(nil, old|v))
}
