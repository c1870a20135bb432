package vmcu

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/sbm-project/sbm/hal"
)

// Firmware is boot firmware: the code the device runs from power-on or
// reset. Boot runs until the device stops it; see PowerOn.
type Firmware interface {
	// Boot runs the firmware on hw. ctx is cancelled when the device is
	// reset, loses power or is shut down; firmware that blocks outside hal
	// calls (for example in an application runtime) should watch it.
	Boot(ctx context.Context, hw *hal.Hardware)
}

// FirmwareFunc adapts a function to the Firmware interface.
type FirmwareFunc func(ctx context.Context, hw *hal.Hardware)

// Boot calls f(ctx, hw).
func (f FirmwareFunc) Boot(ctx context.Context, hw *hal.Hardware) { f(ctx, hw) }

// StopReason tells why a power-on session ended.
type StopReason uint8

// Reasons a session ends.
const (
	// StopReturned: Boot returned on its own; the CPU is idle.
	StopReturned StopReason = iota + 1
	// StopReset: the firmware, the debug port or the control socket reset
	// the device.
	StopReset
	// StopPowerLoss: an armed power cut fired.
	StopPowerLoss
	// StopCanceled: the context was cancelled or the device closed.
	StopCanceled
	// StopCrashed: the firmware panicked (a hard fault).
	StopCrashed
)

// String returns a short name of the reason.
func (r StopReason) String() string {
	switch r {
	case StopReturned:
		return "returned"
	case StopReset:
		return "reset"
	case StopPowerLoss:
		return "power loss"
	case StopCanceled:
		return "canceled"
	case StopCrashed:
		return "crashed"
	}
	return "unknown"
}

// Stop describes how a power-on session ended.
type Stop struct {
	Reason StopReason
	// Recovery reports, for StopReset, whether the recovery pin is held
	// for the next boot.
	Recovery bool
	// Loss describes the power cut, for StopPowerLoss.
	Loss *PowerLoss
	// Panic and Stack describe the crash, for StopCrashed.
	Panic any
	Stack []byte
}

// stopSignal is the panic value that stops firmware for any reason other
// than power loss. It never escapes PowerOn.
type stopSignal struct {
	reason   StopReason
	recovery bool
	loss     *PowerLoss
}

// IsStopPanic reports whether v, a value recovered from a panic, is the
// simulator stopping the firmware (power loss, reset, shutdown). Firmware
// that recovers panics must re-panic such values.
func IsStopPanic(v any) bool {
	switch v.(type) {
	case *PowerLoss, stopSignal:
		return true
	}
	return false
}

// session is one power-on of the device.
type session struct {
	stopped  chan struct{}
	sig      stopSignal // valid once stopped is closed
	start    time.Time
	recovery bool
	puf      [hal.PUFResponseSize]byte
}

func (s *session) isStopped() bool {
	select {
	case <-s.stopped:
		return true
	default:
		return false
	}
}

// panicValue is what a hal call panics with once s has stopped.
func (s *session) panicValue() any {
	if s.sig.loss != nil {
		return s.sig.loss
	}
	return s.sig
}

// stopLocked stops the current session, if any.
func (d *Device) stopLocked(sig stopSignal) {
	s := d.sess
	if s == nil || s.isStopped() {
		return
	}
	s.sig = sig
	close(s.stopped)
}

// ErrPoweredOn is returned by PowerOn when the device is already on.
var ErrPoweredOn = errors.New("device is already powered on")

// PowerOnOptions configures one power-on.
type PowerOnOptions struct {
	// Recovery holds the recovery pin while the device comes up.
	Recovery bool
	// Warm keeps RAM contents (a reset rather than a power cycle).
	Warm bool
}

// PowerOn powers the device on and runs fw until it stops: Boot returns,
// the device is reset, power is cut, the firmware crashes, or ctx is
// cancelled. It returns how the session ended. Firmware runs on the
// calling goroutine and must call the hal interfaces only from it.
func (d *Device) PowerOn(ctx context.Context, fw Firmware, opt PowerOnOptions) (Stop, error) {
	d.mu.Lock()
	select {
	case <-d.closed:
		d.mu.Unlock()
		return Stop{}, ErrClosed
	default:
	}
	if d.sess != nil {
		d.mu.Unlock()
		return Stop{}, ErrPoweredOn
	}
	// A reset requested while the device was between sessions is this
	// power-on: its recovery pin holds for it (Run would otherwise boot
	// without the pin a reset asked for just after the last session ended).
	select {
	case r := <-d.resetReq:
		opt.Recovery = opt.Recovery || r
	default:
	}
	s := &session{stopped: make(chan struct{}), start: time.Now(), recovery: opt.Recovery}
	d.noisyPUFLocked(&s.puf)
	if !opt.Warm {
		clear(d.ram)
	}
	d.sess = s
	d.mu.Unlock()
	stopAfter := context.AfterFunc(ctx, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		d.stopLocked(stopSignal{reason: StopCanceled})
	})
	defer stopAfter()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.stopped:
			cancel()
		case <-sctx.Done():
		}
	}()
	st := d.boot(sctx, fw, d.hardware(s), s)
	d.mu.Lock()
	d.stopLocked(stopSignal{reason: st.Reason})
	d.sess = nil
	d.mu.Unlock()
	return st, nil
}

func (d *Device) boot(ctx context.Context, fw Firmware, hw *hal.Hardware, s *session) (st Stop) {
	defer func() {
		v := recover()
		if v == nil {
			st = Stop{Reason: StopReturned}
			if s.isStopped() {
				st = stopOf(s.sig)
			}
			return
		}
		switch v := v.(type) {
		case *PowerLoss:
			st = Stop{Reason: StopPowerLoss, Loss: v}
		case stopSignal:
			st = stopOf(v)
		default:
			st = Stop{Reason: StopCrashed, Panic: v, Stack: debug.Stack()}
		}
	}()
	fw.Boot(ctx, hw)
	return
}

func stopOf(sig stopSignal) Stop {
	return Stop{Reason: sig.reason, Recovery: sig.recovery, Loss: sig.loss}
}

// Reset resets the device: the running firmware is stopped and boots
// again, with the recovery pin held if recovery is true. A reset also
// resumes a halted CPU. If the firmware has returned (the CPU is idle), Run
// boots it again.
func (d *Device) Reset(recovery bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.resumeLocked()
	if d.sess != nil && !d.sess.isStopped() {
		d.stopLocked(stopSignal{reason: StopReset, recovery: recovery})
		return
	}
	select {
	case d.resetReq <- recovery:
	default:
	}
}

// Halt halts the CPU: the firmware stops at its next hal call until Resume
// or Reset.
func (d *Device) Halt() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.halted {
		d.halted = true
		d.resumeCh = make(chan struct{})
	}
}

// Resume resumes a halted CPU.
func (d *Device) Resume() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.resumeLocked()
}

func (d *Device) resumeLocked() {
	if d.halted {
		d.halted = false
		close(d.resumeCh)
	}
}

// Running reports whether a firmware session is in progress.
func (d *Device) Running() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.sess != nil
}

// Run runs fw until ctx is cancelled, as a board on a bench does: after a
// reset or a firmware crash the firmware boots again (keeping RAM); after a
// power cut power is restored at once (RAM cleared); if Boot returns, the
// device waits for a reset. Run logs these events on the console. It
// returns nil when ctx is cancelled or the device is closed.
func (d *Device) Run(ctx context.Context, fw Firmware, recovery bool) error {
	warm := false
	for {
		st, err := d.PowerOn(ctx, fw, PowerOnOptions{Recovery: recovery, Warm: warm})
		if errors.Is(err, ErrClosed) {
			return nil
		}
		if err != nil {
			return err
		}
		recovery, warm = false, true
		switch st.Reason {
		case StopCanceled:
			return nil
		case StopReset:
			recovery = st.Recovery
			if recovery {
				d.logf("vmcu: reset (recovery pin held)")
			} else {
				d.logf("vmcu: reset")
			}
		case StopPowerLoss:
			warm = false
			d.logf("vmcu: %v; power restored", st.Loss)
		case StopCrashed:
			d.logf("vmcu: firmware crashed: %v; resetting", st.Panic)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(100 * time.Millisecond):
			}
		case StopReturned:
			d.logf("vmcu: firmware stopped; waiting for reset")
			select {
			case <-ctx.Done():
				return nil
			case <-d.closed:
				return nil
			case recovery = <-d.resetReq:
			}
		}
	}
}

// logf writes a line on the console.
func (d *Device) logf(format string, a ...any) {
	d.mu.Lock()
	w := d.console
	d.mu.Unlock()
	fmt.Fprintf(w, format+"\n", a...)
}
