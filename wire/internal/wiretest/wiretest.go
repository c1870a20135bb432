// Package wiretest holds test doubles for the connection protocol: an
// in-memory Target and a scripted UART with a fake clock.
package wiretest

import (
	"bytes"
	"sync"
	"time"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/wire"
)

// Target is an in-memory wire.Target. It stores the package bytes and can
// be told to fail at an offset or at Finish. It is safe for concurrent
// inspection while a Session drives it.
type Target struct {
	mu sync.Mutex

	// Settings; set them before the session starts.
	DeviceInfo wire.DeviceInfo
	Cert       []byte
	Capacity   uint32      // largest package Begin accepts; 0: 16 MiB
	FailAt     int64       // Write covering this offset fails with FailErr; -1: never
	FailErr    *wire.Error // the Write failure
	FinishErr  *wire.Error // the Finish failure, or nil

	// Violations counts calls that break the Target contract: Write
	// without a successful Begin, or out of order.
	Violations int

	buf       []byte
	size      uint32
	begun     bool
	writes    int
	begins    int
	aborts    int
	finishes  int
	installed []byte
}

// NewTarget returns a Target that never fails.
func NewTarget() *Target {
	return &Target{
		FailAt: -1,
		DeviceInfo: wire.DeviceInfo{
			ID: bytes.Repeat([]byte{0xA5}, 16), Lifecycle: wire.LifecycleLocked,
			SBMVersion: "1.0.0", AppVersion: "", StagingSize: 1 << 24,
		},
	}
}

// Info implements wire.Target.
func (t *Target) Info(dst []byte) []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.DeviceInfo.AppendCBOR(dst)
}

// Certificate implements wire.Target.
func (t *Target) Certificate() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.Cert
}

// Begin implements wire.Target.
func (t *Target) Begin(size uint32) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.begins++
	capacity := t.Capacity
	if capacity == 0 {
		capacity = 1 << 24
	}
	if size > capacity {
		return wire.Errorf(wire.CodeTooLarge, "package larger than the staging slot")
	}
	t.buf, t.size, t.begun = t.buf[:0], size, true
	return nil
}

// Write implements wire.Target; it checks the Session's ordering promise.
func (t *Target) Write(off uint32, p []byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.writes++
	if !t.begun {
		t.Violations++
		return wire.Errorf(wire.CodeInternal, "write before begin")
	}
	if int(off) != len(t.buf) || uint64(off)+uint64(len(p)) > uint64(t.size) {
		t.Violations++
		return wire.Errorf(wire.CodeInternal, "write out of order")
	}
	if t.FailAt >= 0 && int64(off) <= t.FailAt && t.FailAt < int64(off)+int64(len(p)) {
		t.begun = false
		return t.FailErr
	}
	t.buf = append(t.buf, p...)
	return nil
}

// Received implements wire.Target.
func (t *Target) Received() uint32 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return uint32(len(t.buf))
}

// Finish implements wire.Target.
func (t *Target) Finish() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.finishes++
	if !t.begun || uint32(len(t.buf)) != t.size {
		return wire.Errorf(wire.CodeInternal, "finish of an incomplete package")
	}
	t.begun = false
	if t.FinishErr != nil {
		return t.FinishErr
	}
	t.installed = append([]byte(nil), t.buf...)
	return nil
}

// Abort implements wire.Target.
func (t *Target) Abort() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.aborts++
	t.begun = false
}

// Contract returns the number of contract violations.
func (t *Target) Contract() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.Violations
}

// Stored returns a copy of the bytes written so far.
func (t *Target) Stored() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]byte(nil), t.buf...)
}

// Installed returns the package of the last successful Finish, or nil.
func (t *Target) Installed() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.installed
}

// Counts returns how many times Begin, Write, Abort and Finish were
// called.
func (t *Target) Counts() (begins, writes, aborts, finishes int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.begins, t.writes, t.aborts, t.finishes
}

// UART is a scripted hal.UART: Read returns the queued input in chunks of
// at most Chunk bytes, and when the input is exhausted advances the fake
// clock by the whole timeout and returns hal.ErrTimeout. Written bytes
// accumulate in Out. It also serves as the Session's Clock.
type UART struct {
	In    []byte
	Chunk int // 0: any size
	Out   []byte
	T     time.Duration
	// OnIdle, if set, is called when the input is exhausted, before the
	// timeout; it may queue more input in In.
	OnIdle func(u *UART)
}

// Read implements hal.UART.
func (u *UART) Read(p []byte, timeout time.Duration) (int, error) {
	if len(u.In) == 0 && u.OnIdle != nil {
		u.OnIdle(u)
	}
	if len(u.In) == 0 {
		u.T += timeout
		return 0, hal.ErrTimeout
	}
	n := len(p)
	if u.Chunk > 0 {
		n = min(n, u.Chunk)
	}
	n = copy(p[:n], u.In)
	u.In = u.In[n:]
	u.T += time.Microsecond
	return n, nil
}

// Write implements hal.UART.
func (u *UART) Write(p []byte) (int, error) {
	u.Out = append(u.Out, p...)
	return len(p), nil
}

// Now implements wire.Clock.
func (u *UART) Now() time.Duration { return u.T }

// Frames decodes every frame in b.
func Frames(b []byte) []wire.Frame {
	var r wire.FrameReader
	var out []wire.Frame
	for len(b) > 0 {
		n, f, ok := r.Push(b)
		b = b[n:]
		if ok {
			f.Body = append([]byte(nil), f.Body...)
			out = append(out, f)
		}
	}
	return out
}
