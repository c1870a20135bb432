package vmcu

import (
	"errors"
	"fmt"
	"time"

	"github.com/sbm-project/sbm/hal"
)

// hardware returns the hal interfaces for session s. Every call first
// checks the session: once it has stopped (reset, power loss, shutdown)
// the call panics with the stop value instead of returning, and while the
// CPU is halted the call waits.
func (d *Device) hardware(s *session) *hal.Hardware {
	return &hal.Hardware{
		Flash:    fwFlash{d, s, hal.PrivSBM},
		AppFlash: fwFlash{d, s, hal.PrivApp},
		Fuses:    fwFuses{d, s},
		UART:     fwUART{d, s},
		RNG:      fwRNG{d, s},
		PUF:      fwPUF{d, s},
		RAM:      fwRAM{d, s},
		System:   fwSystem{d, s},
		Log:      fwLog{d, s},
		ID:       d.silicon.id,
	}
}

// enter gates a hal call: it panics if s has stopped and waits while the
// CPU is halted.
func (d *Device) enter(s *session) {
	for {
		if s.isStopped() {
			panic(s.panicValue())
		}
		d.mu.Lock()
		halted, ch := d.halted, d.resumeCh
		d.mu.Unlock()
		if !halted {
			return
		}
		select {
		case <-ch:
		case <-s.stopped:
		}
	}
}

// leave turns a power loss into the firmware-stopping panic.
func leave(err error) error {
	var pl *PowerLoss
	if errors.As(err, &pl) {
		panic(pl)
	}
	return err
}

type fwFlash struct {
	d    *Device
	s    *session
	priv hal.Privilege
}

func (f fwFlash) Geometry() hal.Geometry   { return f.d.board.Geometry }
func (f fwFlash) Privilege() hal.Privilege { return f.priv }

func (f fwFlash) Read(addr uint32, p []byte) error {
	f.d.enter(f.s)
	return leave(f.d.readFlash(f.priv, addr, p))
}

func (f fwFlash) Program(addr uint32, p []byte) error {
	f.d.enter(f.s)
	return leave(f.d.programFlash(f.priv, addr, p))
}

func (f fwFlash) Erase(addr uint32) error {
	f.d.enter(f.s)
	return leave(f.d.eraseFlash(f.priv, addr))
}

type fwFuses struct {
	d *Device
	s *session
}

func (f fwFuses) Words() int { return hal.FuseWords }

func (f fwFuses) ReadWord(i int) (uint32, error) {
	f.d.enter(f.s)
	return f.d.readFuse(i)
}

func (f fwFuses) ProgramWord(i int, v uint32) error {
	f.d.enter(f.s)
	return leave(f.d.programFuse(i, v))
}

type fwUART struct {
	d *Device
	s *session
}

func (u fwUART) Read(p []byte, timeout time.Duration) (int, error) {
	u.d.enter(u.s)
	n, err := u.d.uart.read(p, timeout, u.s.stopped)
	if errors.Is(err, errStopped) {
		panic(u.s.panicValue())
	}
	return n, err
}

func (u fwUART) Write(p []byte) (int, error) {
	u.d.enter(u.s)
	n, err := u.d.uart.write(p, u.s.stopped)
	if errors.Is(err, errStopped) {
		panic(u.s.panicValue())
	}
	return n, err
}

type fwRNG struct {
	d *Device
	s *session
}

func (r fwRNG) Read(p []byte) (int, error) {
	r.d.enter(r.s)
	r.d.mu.Lock()
	defer r.d.mu.Unlock()
	r.d.randReadLocked(p)
	return len(p), nil
}

type fwPUF struct {
	d *Device
	s *session
}

func (f fwPUF) Response(p []byte) error {
	f.d.enter(f.s)
	if len(p) != hal.PUFResponseSize {
		return fmt.Errorf("puf response: buffer of %d bytes, want %d", len(p), hal.PUFResponseSize)
	}
	copy(p, f.s.puf[:])
	return nil
}

type fwRAM struct {
	d *Device
	s *session
}

func (r fwRAM) Size() uint32 { return uint32(len(r.d.ram)) }

func (r fwRAM) Read(addr uint32, p []byte) error {
	r.d.enter(r.s)
	return r.d.ramAccess(addr, p, false)
}

func (r fwRAM) Write(addr uint32, p []byte) error {
	r.d.enter(r.s)
	return r.d.ramAccess(addr, p, true)
}

// ramAccess copies between p and RAM at addr (an offset into RAM).
func (d *Device) ramAccess(addr uint32, p []byte, write bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if uint64(addr)+uint64(len(p)) > uint64(len(d.ram)) {
		return fmt.Errorf("ram %#x+%d: %w (ram size %#x)", addr, len(p), hal.ErrOutOfRange, len(d.ram))
	}
	if write {
		copy(d.ram[addr:], p)
	} else {
		copy(p, d.ram[addr:])
	}
	return nil
}

type fwSystem struct {
	d *Device
	s *session
}

func (y fwSystem) Now() time.Duration { return time.Since(y.s.start) }

func (y fwSystem) Sleep(d time.Duration) {
	y.d.enter(y.s)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-y.s.stopped:
		panic(y.s.panicValue())
	}
}

func (y fwSystem) Reset() {
	y.d.enter(y.s)
	y.d.mu.Lock()
	y.d.resumeLocked()
	y.d.stopLocked(stopSignal{reason: StopReset})
	y.d.mu.Unlock()
	panic(y.s.panicValue())
}

func (y fwSystem) RecoveryPin() bool { return y.s.recovery }

type fwLog struct {
	d *Device
	s *session
}

func (l fwLog) Write(p []byte) (int, error) {
	l.d.enter(l.s)
	l.d.mu.Lock()
	w := l.d.console
	l.d.mu.Unlock()
	return w.Write(p)
}

// Map implements hal.Mapper: the flash array in place (execute-in-place),
// read-only by contract.
func (f fwFlash) Map(addr, n uint32) ([]byte, error) {
	f.d.enter(f.s)
	return f.d.mapFlash(f.priv, addr, n)
}
