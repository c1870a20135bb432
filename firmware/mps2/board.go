//go:build tinygo && mps2_an385 && sbmfw_board

package main

import (
	"crypto/sha256"
	"encoding/binary"
	"runtime/volatile"
	"time"
	"unsafe"

	"device/arm"

	"github.com/sbm-project/sbm/firmware/mps2/chip"
	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/sbm"
)

// The board's hal for QEMU's mps2-an385 (docs/silicon.md, "The board's
// hal"). What QEMU models is used as it is: the CMSDK APB UART0 (the
// connection protocol), the CMSDK APB timer 0 (instruction counts under
// -icount), the SCB (reset, vector table). What the board does not have
// -- flash with NOR rules, fuses, a PUF, a TRNG, a unique ID -- is
// emulated over the chip file (package chip) that QEMU's semihosting lets
// the firmware read at boot and write through at every change.

// Semihosting open modes (ARM semihosting SYS_OPEN).
const (
	shModeRB  = 1 // "rb"
	shModeRPB = 3 // "r+b"
)

// shCall makes a semihosting call with a block of word arguments.
func shCall(op int, args []uintptr) int {
	return arm.SemihostingCall(op, uintptr(unsafe.Pointer(&args[0])))
}

// shOpen opens a host file; it returns the handle or -1.
func shOpen(name string, mode uintptr) int {
	var buf [128]byte
	if len(name) >= len(buf) {
		return -1
	}
	copy(buf[:], name)
	return shCall(arm.SemihostingOpen, []uintptr{uintptr(unsafe.Pointer(&buf[0])), mode, uintptr(len(name))})
}

// shSeek sets the file position of fd.
func shSeek(fd int, pos uint32) bool {
	return shCall(arm.SemihostingSeek, []uintptr{uintptr(fd), uintptr(pos)}) == 0
}

// shRead reads len(p) bytes of fd at its position; it reports whether all
// were read.
func shRead(fd int, p []byte) bool {
	return shCall(arm.SemihostingRead, []uintptr{uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p))}) == 0
}

// shWrite writes p at fd's position; it reports whether all was written.
func shWrite(fd int, p []byte) bool {
	return shCall(arm.SemihostingWrite, []uintptr{uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p))}) == 0
}

// shElapsed returns the host's monotonic clock in nanoseconds (SYS_ELAPSED
// and SYS_TICKFREQ), or false if the host does not provide it.
func shElapsed() (time.Duration, bool) {
	var block [2]uint32
	if arm.SemihostingCall(arm.SemihostingElapsed, uintptr(unsafe.Pointer(&block[0]))) != 0 {
		return 0, false
	}
	ticks := uint64(block[0]) | uint64(block[1])<<32
	if tickFreq == 0 {
		f := arm.SemihostingCall(arm.SemihostingTickFreq, 0)
		if f <= 0 {
			return 0, false
		}
		tickFreq = uint64(f)
	}
	return time.Duration(ticks/tickFreq*1e9 + ticks%tickFreq*1e9/tickFreq), true
}

var tickFreq uint64

// cmdline returns the semihosting command line (QEMU's -semihosting-config
// arg=...), split at spaces.
func cmdline() []string {
	var buf [256]byte
	args := []uintptr{uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf))}
	if shCall(arm.SemihostingGetCmdline, args) != 0 {
		return nil
	}
	s := string(buf[:args[1]])
	var out []string
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] != ' ' {
			i++
		}
		if i > 0 {
			out = append(out, s[:i])
		}
		if i < len(s) {
			i++
		}
		s = s[i:]
	}
	return out
}

// halt reports a fatal board error and stops QEMU.
func halt(msg string) {
	println("sbm board:", msg)
	arm.SemihostingCall(arm.SemihostingReportException, arm.SemihostingRunTimeErrorUnknown)
	for {
		arm.Asm("wfi")
	}
}

// chipFile is the open chip file.
type chipFile struct{ fd int }

// persist writes p at offset off of the chip file; a failed write halts
// the board (its non-volatile state would be lost).
func (c *chipFile) persist(off uint32, p []byte) {
	if len(p) == 0 {
		return
	}
	if !shSeek(c.fd, off) || !shWrite(c.fd, p) {
		halt("chip file write failed")
	}
}

// flashMem is the flash array, mapped at chip.FlashBase in the code SSRAM.
var flashMem = (*[chip.FlashSize]byte)(unsafe.Pointer(uintptr(chip.FlashBase)))

// boardFlash is NOR flash over flashMem: erase sets a 4 KiB sector to
// 0xFF; a program of whole 8-byte words needs every target byte erased.
// The lock bits are enforced as the virtual MCU does: the SBM region is
// write-protected at every privilege once LockSBMWriteProtect is blown;
// the SBM region and secure storage fault at application privilege once
// LockSecureHidden is blown.
type boardFlash struct {
	b    *board
	priv hal.Privilege
}

func (f *boardFlash) Geometry() hal.Geometry   { return f.b.geo }
func (f *boardFlash) Privilege() hal.Privilege { return f.priv }

// check validates an access of n bytes at addr.
func (f *boardFlash) check(addr uint32, n int, write bool) error {
	if uint64(addr)+uint64(n) > chip.FlashSize {
		return hal.ErrOutOfRange
	}
	locks := f.b.fuses[hal.FuseLocks]
	for _, r := range f.b.geo.Regions {
		if !r.Overlaps(addr, uint32(n)) {
			continue
		}
		hidden := r.Kind == hal.RegionSBM || r.Kind == hal.RegionSecure
		if f.priv == hal.PrivApp && hidden && locks&hal.LockSecureHidden != 0 {
			return hal.ErrFault
		}
		if write && r.Kind == hal.RegionSBM && locks&hal.LockSBMWriteProtect != 0 {
			return hal.ErrWriteProtected
		}
	}
	return nil
}

func (f *boardFlash) Read(addr uint32, p []byte) error {
	if err := f.check(addr, len(p), false); err != nil {
		return err
	}
	copy(p, flashMem[addr:])
	return nil
}

// Map returns the flash bytes in place (hal.Mapper): the flash is
// memory-mapped.
func (f *boardFlash) Map(addr, n uint32) ([]byte, error) {
	if err := f.check(addr, int(n), false); err != nil {
		return nil, err
	}
	return flashMem[addr : addr+n : addr+n], nil
}

func (f *boardFlash) Program(addr uint32, p []byte) error {
	if err := f.check(addr, len(p), true); err != nil {
		return err
	}
	if addr%chip.WriteSize != 0 || len(p)%chip.WriteSize != 0 {
		return hal.ErrMisaligned
	}
	dst := flashMem[addr : addr+uint32(len(p))]
	for _, b := range dst {
		if b != chip.Erased {
			return hal.ErrNotErased
		}
	}
	copy(dst, p)
	f.b.file.persist(chip.FlashOffset+addr, dst)
	return nil
}

func (f *boardFlash) Erase(addr uint32) error {
	if addr%chip.SectorSize != 0 {
		return hal.ErrMisaligned
	}
	if err := f.check(addr, chip.SectorSize, true); err != nil {
		return err
	}
	s := flashMem[addr : addr+chip.SectorSize]
	for i := range s {
		s[i] = chip.Erased
	}
	f.b.file.persist(chip.FlashOffset+addr, s)
	return nil
}

// boardFuses are the emulated OTP words: a program only sets bits.
type boardFuses struct{ b *board }

func (f boardFuses) Words() int { return hal.FuseWords }

func (f boardFuses) ReadWord(i int) (uint32, error) {
	if i < 0 || i >= hal.FuseWords {
		return 0, hal.ErrBadFuse
	}
	return f.b.fuses[i], nil
}

func (f boardFuses) ProgramWord(i int, v uint32) error {
	if i < 0 || i >= hal.FuseWords {
		return hal.ErrBadFuse
	}
	f.b.fuses[i] |= v
	var w [4]byte
	binary.LittleEndian.PutUint32(w[:], f.b.fuses[i])
	f.b.file.persist(chip.FuseOffset+uint32(i)*4, w[:])
	return nil
}

// boardRAM is the RAM shared with the debug port (hal.RAM), written
// through to the chip file so that the host's provisioning tool reads the
// SBM's mailbox answers there.
type boardRAM struct {
	b   *board
	mem [chip.RAMSize]byte
}

func (m *boardRAM) Size() uint32 { return chip.RAMSize }

func (m *boardRAM) Read(addr uint32, p []byte) error {
	if uint64(addr)+uint64(len(p)) > chip.RAMSize {
		return hal.ErrOutOfRange
	}
	copy(p, m.mem[addr:])
	return nil
}

func (m *boardRAM) Write(addr uint32, p []byte) error {
	if uint64(addr)+uint64(len(p)) > chip.RAMSize {
		return hal.ErrOutOfRange
	}
	copy(m.mem[addr:], p)
	m.b.file.persist(chip.RAMOffset+addr, p)
	return nil
}

// The CMSDK APB UART0 registers.
type cmsdkUART struct {
	data    volatile.Register32
	state   volatile.Register32
	ctrl    volatile.Register32
	intstat volatile.Register32
	bauddiv volatile.Register32
}

const (
	uartTXFull = 1 << 0
	uartRXFull = 1 << 1
	uartTXEn   = 1 << 0
	uartRXEn   = 1 << 1
)

// UART0 carries the connection protocol; UART1 is the console (the boot
// log, and the application's output).
var (
	uart0 = (*cmsdkUART)(unsafe.Pointer(uintptr(0x40004000)))
	uart1 = (*cmsdkUART)(unsafe.Pointer(uintptr(0x40005000)))
)

// boardUART is hal.UART on UART0, polled (QEMU holds one received byte
// and backs the rest up in the host socket).
type boardUART struct{ b *board }

func (u boardUART) Read(p []byte, timeout time.Duration) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	deadline := u.b.Now() + timeout
	for uart0.state.Get()&uartRXFull == 0 {
		if u.b.Now() >= deadline {
			return 0, hal.ErrTimeout
		}
	}
	n := 0
	for n < len(p) {
		if uart0.state.Get()&uartRXFull == 0 {
			// Give the host a moment to hand over the next byte.
			spin := 0
			for uart0.state.Get()&uartRXFull == 0 && spin < 2000 {
				spin++
			}
			if spin == 2000 {
				break
			}
		}
		p[n] = byte(uart0.data.Get())
		n++
	}
	return n, nil
}

func (u boardUART) Write(p []byte) (int, error) {
	for _, c := range p {
		for uart0.state.Get()&uartTXFull != 0 {
		}
		uart0.data.Set(uint32(c))
	}
	return len(p), nil
}

// The CMSDK APB timer 0: a 32-bit down-counter at the 25 MHz system
// clock. Under qemu -icount shift=0 one instruction is one nanosecond of
// virtual time, so one tick is 40 instructions.
type cmsdkTimer struct {
	ctrl   volatile.Register32
	value  volatile.Register32
	reload volatile.Register32
}

var timer0 = (*cmsdkTimer)(unsafe.Pointer(uintptr(0x40000000)))

// timerHz is timer 0's clock; instrPerTick is the instruction count of
// one tick under -icount shift=0.
const (
	timerHz      = 25000000
	instrPerTick = 1000000000 / timerHz
)

// timerTicks returns the ticks counted since the timer started.
func timerTicks() uint32 { return 0xFFFFFFFF - timer0.value.Get() }

// board is the mps2-an385 hal.
type board struct {
	geo       hal.Geometry
	file      chipFile
	fuses     [hal.FuseWords]uint32
	ram       boardRAM
	id        [hal.IDSize]byte
	pufKey    [32]byte
	rng       [32]byte // DRBG state
	rngN      uint32
	pin       bool
	measure   bool
	start     time.Duration // the host clock at boot (SYS_ELAPSED): part of the RNG seed
	ticks     uint64        // timer 0 ticks since boot (Now)
	lastTicks uint32
}

// Now is the time since the firmware started, from timer 0 (QEMU's
// virtual clock: real time, or instructions under -icount). The 32-bit
// counter wraps every 171 s; Now extends it, so it must be called more
// often than that (the SBM polls it while it waits). It makes no
// semihosting call (no host trap per poll of the UART), and under -icount
// it counts instructions like the rest of the machine.
func (b *board) Now() time.Duration {
	v := timerTicks()
	b.ticks += uint64(v - b.lastTicks)
	b.lastTicks = v
	return time.Duration(b.ticks * 1e9 / timerHz)
}

func (b *board) Sleep(d time.Duration) {
	end := b.Now() + d
	for b.Now() < end {
	}
}

// Reset requests a system reset: SCB AIRCR = VECTKEY | SYSRESETREQ.
func (b *board) Reset() { arm.SystemReset() }

// RecoveryPin is the emulated recovery button: held when QEMU was started
// with the semihosting argument "recovery-pin".
func (b *board) RecoveryPin() bool { return b.pin }

// Response returns the emulated PUF response: SHA-256 in counter mode
// over the chip's PUF secret (stable, no noise; see docs/silicon.md).
func (b *board) Response(p []byte) error {
	var blk [4 + 32]byte
	copy(blk[4:], b.pufKey[:])
	for i := 0; i < len(p); i += sha256.Size {
		binary.LittleEndian.PutUint32(blk[:4], uint32(i))
		s := sha256.Sum256(blk[:])
		copy(p[i:], s[:])
	}
	return nil
}

// Read is the emulated RNG: a SHA-256 hash chain seeded from the chip's
// RNG seed and the host clock at boot (not a TRNG; see docs/silicon.md).
func (b *board) Read(p []byte) (int, error) {
	var blk [4 + 32]byte
	copy(blk[4:], b.rng[:])
	for i := 0; i < len(p); i += sha256.Size {
		b.rngN++
		binary.LittleEndian.PutUint32(blk[:4], b.rngN)
		s := sha256.Sum256(blk[:])
		copy(p[i:], s[:])
	}
	// Ratchet the state so earlier output cannot be recomputed from it.
	b.rngN++
	binary.LittleEndian.PutUint32(blk[:4], b.rngN)
	b.rng = sha256.Sum256(blk[:])
	return len(p), nil
}

// consoleWriter is the boot log: on the console UART (UART1) and on the
// semihosting console.
type consoleWriter struct{}

func (consoleWriter) Write(p []byte) (int, error) {
	for _, c := range p {
		for uart1.state.Get()&uartTXFull != 0 {
		}
		uart1.data.Set(uint32(c))
		putc(c)
	}
	return len(p), nil
}

func putc(c byte) {
	arm.SemihostingCall(arm.SemihostingWriteByte, uintptr(unsafe.Pointer(&c)))
}

// theBoard is the one board; it is a global so that the runtime services
// the application calls (services.go) reach it.
var theBoard board

// bootBoard loads the chip file and runs the SBM on the board.
func bootBoard() {
	timer0.ctrl.Set(0)
	timer0.reload.Set(0xFFFFFFFF)
	timer0.value.Set(0xFFFFFFFF)
	timer0.ctrl.Set(1)
	b := &theBoard
	b.ram.b = b
	b.start, _ = shElapsed()
	path := "chip.img"
	for _, a := range cmdline() {
		switch {
		case a == "recovery-pin":
			b.pin = true
		case a == "measure":
			b.measure = true
		case len(a) > 5 && a[:5] == "chip=":
			path = a[5:]
		}
	}
	b.file.fd = shOpen(path, shModeRPB)
	if b.file.fd < 0 {
		halt("cannot open the chip file " + path + " (create it with the host tools)")
	}
	var hdr [chip.HeaderSize]byte
	if !shSeek(b.file.fd, 0) || !shRead(b.file.fd, hdr[:]) || string(hdr[:len(chip.Magic)]) != chip.Magic {
		halt("not a chip file: " + path)
	}
	var fuses [chip.FuseSize]byte
	if !shRead(b.file.fd, fuses[:]) || !shRead(b.file.fd, flashMem[:]) || !shRead(b.file.fd, b.ram.mem[:]) {
		halt("short chip file: " + path)
	}
	for i := range b.fuses {
		b.fuses[i] = binary.LittleEndian.Uint32(fuses[4*i:])
	}
	copy(b.id[:], hdr[chip.IDOffset:])
	copy(b.pufKey[:], hdr[chip.PUFOffset:])
	seed := sha256.New()
	seed.Write(hdr[chip.RNGOffset : chip.RNGOffset+32])
	var t [8]byte
	binary.LittleEndian.PutUint64(t[:], uint64(b.start))
	seed.Write(t[:])
	binary.LittleEndian.PutUint32(t[:4], uint32(arm.SemihostingCall(arm.SemihostingTime, 0)))
	seed.Write(t[:4])
	seed.Sum(b.rng[:0])
	b.geo = chip.Geometry()
	hw := &hal.Hardware{
		Flash:    &boardFlash{b: b, priv: hal.PrivSBM},
		AppFlash: &boardFlash{b: b, priv: hal.PrivApp},
		Fuses:    boardFuses{b},
		UART:     boardUART{b},
		RNG:      b,
		PUF:      b,
		RAM:      &b.ram,
		System:   b,
		Log:      consoleWriter{},
		ID:       b.id,
	}
	uart0.bauddiv.Set(16)
	uart0.ctrl.Set(uartTXEn | uartRXEn)
	uart1.bauddiv.Set(16)
	uart1.ctrl.Set(uartTXEn)
	bootTicks = timerTicks()
	sbm.Boot(hw, &sbm.Options{Launch: launch, Runs: []string{"bin"}})
	// Nothing the SBM can do (no descriptor, no secure storage): the core
	// idles, as a real part would, until the debug port resets it.
	println("sbm board: the SBM stopped; idle until reset")
	for {
		arm.Asm("wfi")
	}
}

// bootTicks is the timer when sbm.Boot was entered.
var bootTicks uint32
