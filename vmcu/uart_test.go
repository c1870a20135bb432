package vmcu

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"go.bug.st/serial"

	"github.com/sbm-project/sbm/hal"
)

// echo is firmware that sends back what it receives.
var echo = FirmwareFunc(func(ctx context.Context, hw *hal.Hardware) {
	buf := make([]byte, 512)
	for {
		n, err := hw.UART.Read(buf, time.Second)
		if errors.Is(err, hal.ErrTimeout) {
			continue
		}
		hw.UART.Write(buf[:n])
	}
})

func startMemory(t *testing.T, fw Firmware) *Device {
	t.Helper()
	b, _ := LookupBoard("small")
	d := NewMemory(b, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx, fw, false) }()
	t.Cleanup(func() { cancel(); <-done; d.Close() })
	return d
}

func roundTrip(t *testing.T, rw io.ReadWriter, msg []byte) {
	t.Helper()
	if _, err := rw.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 0, len(msg))
	buf := make([]byte, 256)
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < len(msg) && time.Now().Before(deadline) {
		n, err := rw.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil && !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("echo = %q, want %q", got, msg)
	}
}

func TestUARTPipeAndTCP(t *testing.T) {
	d := startMemory(t, echo)
	roundTrip(t, d.UART().Pipe(), []byte("hello over a pipe"))
	addr, err := d.UART().ListenTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	big := pattern(20000, 0) // more than the receive FIFO: back-pressure, no loss
	roundTrip(t, c, big)
}

// TestUARTPTY opens the pseudo-terminal with go.bug.st/serial, as a real
// serial tool opens a USB-serial adapter.
func TestUARTPTY(t *testing.T) {
	d := startMemory(t, echo)
	link := filepath.Join(t.TempDir(), "ttyVMCU")
	name, err := d.UART().OpenPTY(link)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if target, _ := filepath.EvalSymlinks(link); target != name {
		t.Errorf("link points to %q, want %q", target, name)
	}
	port, err := serial.Open(link, &serial.Mode{BaudRate: 115200})
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	port.SetReadTimeout(5 * time.Second)
	roundTrip(t, port, []byte("hello over a pty\x00\xff\r\n binary-safe"))
	port.Close()
	// A second client can open it again.
	port2, err := serial.Open(link, &serial.Mode{BaudRate: 9600})
	if err != nil {
		t.Fatal(err)
	}
	defer port2.Close()
	port2.SetReadTimeout(5 * time.Second)
	roundTrip(t, port2, []byte("again"))
}

// TestUARTPacing measures both directions against the configured line
// rate (10 bits per byte) over more than a second each.
func TestUARTPacing(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 3 seconds")
	}
	const baud = 230400
	const n = baud / 10 * 6 / 5 // 1.2 s of line time
	type result struct {
		tx, rx float64
	}
	measure := func() result {
		var res result
		rxDone := make(chan float64, 1)
		send := make(chan struct{})
		fw := FirmwareFunc(func(ctx context.Context, hw *hal.Hardware) {
			<-send
			start := time.Now()
			hw.UART.Write(make([]byte, n))
			_ = start
			// Then receive n bytes and time them.
			buf := make([]byte, 4096)
			got := 0
			var t0 time.Time
			for got < n {
				k, _ := hw.UART.Read(buf, 10*time.Second)
				if got == 0 {
					t0 = time.Now()
				}
				got += k
			}
			rxDone <- float64(got-1) / time.Since(t0).Seconds()
			for {
				hw.System.Sleep(time.Hour)
			}
		})
		d := startMemory(t, fw)
		d.UART().SetBaud(baud)
		host := d.UART().Pipe()
		defer host.Close()
		got := 0
		buf := make([]byte, 4096)
		start := time.Now()
		close(send)
		for got < n {
			k, err := host.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			got += k
		}
		res.tx = float64(got) / time.Since(start).Seconds()
		go host.Write(make([]byte, n))
		res.rx = <-rxDone
		return res
	}
	want := float64(baud) / 10
	ok := func(r float64) bool { return r > want*0.95 && r < want*1.05 }
	res := measure()
	if !ok(res.tx) || !ok(res.rx) {
		t.Logf("first measurement tx %.0f rx %.0f B/s, want %.0f: retrying", res.tx, res.rx, want)
		res = measure()
	}
	if !ok(res.tx) || !ok(res.rx) {
		t.Errorf("measured tx %.0f rx %.0f B/s, want %.0f ±5%%", res.tx, res.rx, want)
	}
}

func TestPacerNoDrift(t *testing.T) {
	var p pacer
	p.setBaud(10000) // 1 ms per byte
	now := time.Unix(1000, 0)
	var last time.Time
	for i := range 1000 {
		last = p.reserve(1, now)
		// The caller wakes up late every time; the schedule does not slip.
		now = last.Add(500 * time.Microsecond)
		_ = i
	}
	if got := last.Sub(time.Unix(1000, 0)); got != time.Second {
		t.Errorf("1000 bytes at 10000 baud scheduled over %v, want 1s", got)
	}
	// After an idle period no credit is saved beyond the burst window.
	now = last.Add(time.Second)
	if d := p.reserve(100, now).Sub(now); d < 100*time.Millisecond-pacerBurst {
		t.Errorf("after idle, 100 bytes take %v", d)
	}
	p.setBaud(0)
	if !p.reserve(100, now).IsZero() {
		t.Error("unpaced reserve returned a deadline")
	}
}
