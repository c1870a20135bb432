//go:build tinygo

package main

import (
	"crypto/sha256"
	"device/arm"
	"time"

	"github.com/sbm-project/sbm/hal"
)

// Geometry of the in-RAM flash: 64 KiB of 4 KiB sectors.
const (
	flashSize  = 64 << 10
	sectorSize = 4 << 10
)

// ramFlash is NOR flash in RAM: erase sets a sector to 0xFF, a program may
// only clear bits of erased words.
type ramFlash struct {
	mem [flashSize]byte
	geo hal.Geometry
}

func newRAMFlash() *ramFlash {
	f := &ramFlash{}
	for i := range f.mem {
		f.mem[i] = 0xFF
	}
	f.geo = hal.Geometry{Size: flashSize, WriteSize: 4, Erased: 0xFF}
	for a := uint32(0); a < flashSize; a += sectorSize {
		f.geo.Sectors = append(f.geo.Sectors, hal.Sector{Start: a, Size: sectorSize})
	}
	f.geo.Regions = []hal.Region{
		{Kind: hal.RegionSBM, Start: 0, Size: 16 << 10},
		{Kind: hal.RegionSecure, Start: 16 << 10, Size: 8 << 10},
		{Kind: hal.RegionPrimary, Start: 24 << 10, Size: 20 << 10},
		{Kind: hal.RegionStaging, Start: 44 << 10, Size: 20 << 10},
	}
	return f
}

func (f *ramFlash) Geometry() hal.Geometry   { return f.geo }
func (f *ramFlash) Privilege() hal.Privilege { return hal.PrivSBM }

func (f *ramFlash) span(addr uint32, n int) bool {
	return uint64(addr)+uint64(n) <= flashSize
}

func (f *ramFlash) Read(addr uint32, p []byte) error {
	if !f.span(addr, len(p)) {
		return hal.ErrOutOfRange
	}
	copy(p, f.mem[addr:])
	return nil
}

func (f *ramFlash) Program(addr uint32, p []byte) error {
	if !f.span(addr, len(p)) {
		return hal.ErrOutOfRange
	}
	if addr%4 != 0 || len(p)%4 != 0 {
		return hal.ErrMisaligned
	}
	for i, b := range p {
		if f.mem[int(addr)+i] != 0xFF && b != 0xFF {
			return hal.ErrNotErased
		}
	}
	for i, b := range p {
		f.mem[int(addr)+i] &= b
	}
	return nil
}

func (f *ramFlash) Erase(addr uint32) error {
	if addr%sectorSize != 0 || addr >= flashSize {
		return hal.ErrMisaligned
	}
	for i := addr; i < addr+sectorSize; i++ {
		f.mem[i] = 0xFF
	}
	return nil
}

// ramFuses are one-time-programmable words: a program only sets bits.
type ramFuses [hal.FuseWords]uint32

func (f *ramFuses) Words() int { return len(f) }

func (f *ramFuses) ReadWord(i int) (uint32, error) {
	if i < 0 || i >= len(f) {
		return 0, hal.ErrBadFuse
	}
	return f[i], nil
}

func (f *ramFuses) ProgramWord(i int, v uint32) error {
	if i < 0 || i >= len(f) {
		return hal.ErrBadFuse
	}
	f[i] |= v
	return nil
}

// ramMemory is the RAM mailbox.
type ramMemory [4096]byte

func (m *ramMemory) Size() uint32 { return uint32(len(m)) }

func (m *ramMemory) Read(addr uint32, p []byte) error {
	if uint64(addr)+uint64(len(p)) > uint64(len(m)) {
		return hal.ErrOutOfRange
	}
	copy(p, m[addr:])
	return nil
}

func (m *ramMemory) Write(addr uint32, p []byte) error {
	if uint64(addr)+uint64(len(p)) > uint64(len(m)) {
		return hal.ErrOutOfRange
	}
	copy(m[addr:], p)
	return nil
}

// quietUART receives nothing and discards what it is sent.
type quietUART struct{}

func (quietUART) Read(p []byte, timeout time.Duration) (int, error) { return 0, hal.ErrTimeout }
func (quietUART) Write(p []byte) (int, error)                       { return len(p), nil }

// fixedPUF returns the same response at every power-up (emulation only).
type fixedPUF struct{}

func (fixedPUF) Response(p []byte) error {
	for i := range p {
		p[i] = byte(i*7 + 1)
	}
	return nil
}

// counterRNG is a deterministic stand-in for a TRNG: SHA-256 of a counter.
type counterRNG struct{ n uint32 }

func (r *counterRNG) Read(p []byte) (int, error) {
	for i := 0; i < len(p); i += sha256.Size {
		r.n++
		b := sha256.Sum256([]byte{byte(r.n), byte(r.n >> 8), byte(r.n >> 16), byte(r.n >> 24)})
		copy(p[i:], b[:])
	}
	return len(p), nil
}

// fakeSystem has a clock that advances one second per reading, so that
// timeouts expire at once, and a Reset that stops the boot.
type fakeSystem struct {
	now    time.Duration
	resets int
}

func (s *fakeSystem) Now() time.Duration    { s.now += time.Second; return s.now }
func (s *fakeSystem) Sleep(d time.Duration) { s.now += d }
func (s *fakeSystem) Reset()                { s.resets++; println("sbm: reset requested") }
func (s *fakeSystem) RecoveryPin() bool     { return false }

// consoleLog is the boot log on the semihosting console. When the SBM
// starts waiting for a programmer a second time (its first recovery
// session timed out), the board powers off.
type consoleLog struct{ waits int }

func (l *consoleLog) Write(p []byte) (int, error) {
	print(string(p))
	if string(p) == "sbm: recovery: waiting for a programmer on the UART\n" {
		if l.waits++; l.waits == 2 {
			powerOff()
		}
	}
	return len(p), nil
}

// poweredOK is the outcome of the self-checks run before the last boot.
var poweredOK bool

// powerOff ends the run: it reports the outcome and stops QEMU through
// semihosting (SYS_EXIT).
func powerOff() {
	if poweredOK {
		println("sbm core linked")
	} else {
		println("sbm firmware: FAIL")
	}
	arm.SemihostingCall(arm.SemihostingReportException, arm.SemihostingApplicationExit)
	for {
		arm.Asm("wfi")
	}
}

// newHardware returns the in-RAM hardware.
func newHardware() *hal.Hardware {
	f := newRAMFlash()
	return &hal.Hardware{
		Flash:    f,
		AppFlash: f,
		Fuses:    &ramFuses{},
		UART:     quietUART{},
		RNG:      &counterRNG{},
		PUF:      fixedPUF{},
		RAM:      &ramMemory{},
		System:   &fakeSystem{},
		Log:      &consoleLog{},
		ID:       [hal.IDSize]byte{0x51, 0xb1},
	}
}
