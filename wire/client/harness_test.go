package client_test

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/vmcu"
	"github.com/sbm-project/sbm/wire"
	"github.com/sbm-project/sbm/wire/internal/wiretest"
)

// device is a virtual MCU running a wire.Session for a fake Target.
type device struct {
	d      *vmcu.Device
	tg     *wiretest.Target
	cancel context.CancelFunc
	done   chan struct{}
	end    wire.EndReason
	err    error
	stats  wire.SessionStats
}

func startDevice(tb testing.TB, tg *wiretest.Target, cfg wire.Config) *device {
	tb.Helper()
	b, err := vmcu.LookupBoard("small")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	dev := &device{d: vmcu.NewMemory(b, 1), tg: tg, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(dev.done)
		dev.d.PowerOn(ctx, vmcu.FirmwareFunc(func(ctx context.Context, hw *hal.Hardware) {
			s := wire.NewSession(hw.UART, hw.System, tg, cfg)
			dev.end, dev.err = s.Serve()
			dev.stats = s.Stats()
		}), vmcu.PowerOnOptions{})
	}()
	tb.Cleanup(func() {
		cancel()
		<-dev.done
		dev.d.Close()
	})
	return dev
}

// wait waits for the session to end and returns how.
func (dev *device) wait(tb testing.TB) wire.EndReason {
	tb.Helper()
	select {
	case <-dev.done:
	case <-time.After(30 * time.Second):
		tb.Fatal("session did not end")
	}
	return dev.end
}

// link wraps the host end of a connection: it sees every frame the client
// writes (the client writes one frame per Write) and can drop, duplicate
// or hold back DATA frames, or cut the link.
type link struct {
	net.Conn
	mu     sync.Mutex
	n      int // DATA frames seen
	policy func(n int) action
	held   [][]byte
	// gate, if set (setGate), holds back bytes received after the first
	// DATA frame was sent until it is closed.
	gate <-chan struct{}
	// onData is called with the count after each DATA frame is written.
	onData func(n int)
}

type action int

const (
	pass action = iota
	drop
	dup
	hold // send after the next frame (reorder)
	cut  // close the link instead of sending
)

func (l *link) Write(p []byte) (int, error) {
	frames := wiretest.Frames(p)
	if len(frames) != 1 || frames[0].Type != wire.TypeData || l.policy == nil {
		if len(frames) == 1 && frames[0].Type == wire.TypeData {
			return l.data(p)
		}
		return l.Conn.Write(p)
	}
	return l.data(p)
}

func (l *link) data(p []byte) (int, error) {
	l.mu.Lock()
	l.n++
	n := l.n
	a := pass
	if l.policy != nil {
		a = l.policy(n)
	}
	held := l.held
	l.held = nil
	if a == hold {
		l.held = append(l.held, append([]byte(nil), p...))
	}
	onData := l.onData
	l.mu.Unlock()
	var err error
	switch a {
	case pass:
		_, err = l.Conn.Write(p)
	case dup:
		if _, err = l.Conn.Write(p); err == nil {
			_, err = l.Conn.Write(p)
		}
	case cut:
		l.Conn.Close()
		return 0, io.ErrClosedPipe
	}
	for _, h := range held {
		if err == nil {
			_, err = l.Conn.Write(h)
		}
	}
	if onData != nil {
		onData(n)
	}
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

func (l *link) Read(p []byte) (int, error) {
	n, err := l.Conn.Read(p)
	l.mu.Lock()
	gate := l.gate
	if l.n == 0 {
		gate = nil // hold back only what follows the first DATA frame
	}
	l.mu.Unlock()
	if gate != nil {
		<-gate
	}
	return n, err
}

func (l *link) setGate(gate <-chan struct{}, onData func(n int)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gate, l.onData = gate, onData
}
