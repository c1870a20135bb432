package client_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sbm-project/sbm/wire"
	"github.com/sbm-project/sbm/wire/client"
	"github.com/sbm-project/sbm/wire/internal/wiretest"
)

func randomPackage(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestTransfer(t *testing.T) {
	ctx := testContext(t)
	tg := wiretest.NewTarget()
	tg.Cert = randomPackage(5000, 9) // several GET_CERT pieces
	dev := startDevice(t, tg, wire.Config{})
	c := client.New(dev.d.UART().Pipe())
	defer c.Close()

	p, err := c.Hello(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p.Version != 1 || p.MaxData != wire.DefaultMaxData || p.Window != 4*wire.DefaultMaxData {
		t.Fatalf("params %+v", p)
	}
	info, err := c.Info(ctx)
	if err != nil || info.SBMVersion != "1.0.0" || !bytes.Equal(info.ID, tg.DeviceInfo.ID) {
		t.Fatalf("Info = %+v, %v", info, err)
	}
	cert, err := c.Certificate(ctx)
	if err != nil || !bytes.Equal(cert, tg.Cert) {
		t.Fatalf("Certificate: %d bytes, %v", len(cert), err)
	}
	pkg := randomPackage(300_001, 1)
	var progress []int
	st, err := c.Send(ctx, pkg, client.SendOptions{Progress: func(sent, total int) { progress = append(progress, sent) }})
	if err != nil {
		t.Fatal(err)
	}
	if st.Bytes != len(pkg) || st.Frames != (len(pkg)+wire.DefaultMaxData-1)/wire.DefaultMaxData || st.Resent != 0 || st.Retries != 0 {
		t.Fatalf("stats %+v", st)
	}
	if len(progress) == 0 || progress[len(progress)-1] != len(pkg) {
		t.Fatalf("progress %v", progress)
	}
	if err := c.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(tg.Installed(), pkg) {
		t.Fatal("installed package differs from the one sent")
	}
	if err := c.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if end := dev.wait(t); end != wire.EndInstalled {
		t.Fatalf("session ended with %v", end)
	}
}

// TestWindow: the client keeps several DATA frames in flight before the
// first acknowledgement can reach it (a stop-and-wait sender would stall
// here and fail).
func TestWindow(t *testing.T) {
	ctx := testContext(t)
	tg := wiretest.NewTarget()
	dev := startDevice(t, tg, wire.Config{MaxData: 256, Window: 1024})
	open := make(chan struct{})
	var once sync.Once
	l := &link{Conn: dev.d.UART().Pipe()}
	c := client.New(l)
	defer c.Close()
	if _, err := c.Hello(ctx); err != nil {
		t.Fatal(err)
	}
	l.setGate(open, func(n int) {
		if n == 4 {
			once.Do(func() { close(open) })
		}
	})
	c.SetTimeout(time.Hour) // a stall would fail the test by its context
	pkg := randomPackage(10_000, 2)
	if _, err := c.Send(ctx, pkg, client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.Finish(ctx); err != nil || !bytes.Equal(tg.Installed(), pkg) {
		t.Fatalf("Finish: %v", err)
	}
}

func TestErrorsPropagate(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(tg *wiretest.Target)
		inSend bool
		code   wire.Code
		detail string
	}{
		{"manifest rejected", func(tg *wiretest.Target) {
			tg.FailAt, tg.FailErr = 5000, wire.Errorf(wire.CodeSignature, "manifest signature")
		}, true, wire.CodeSignature, "manifest signature"},
		{"too large", func(tg *wiretest.Target) { tg.Capacity = 100 }, true, wire.CodeTooLarge, "package larger than the staging slot"},
		{"digest", func(tg *wiretest.Target) {
			tg.FinishErr = wire.Errorf(wire.CodeDigest, "plaintext digest mismatch")
		}, false, wire.CodeDigest, "plaintext digest mismatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testContext(t)
			tg := wiretest.NewTarget()
			tt.setup(tg)
			dev := startDevice(t, tg, wire.Config{})
			c := client.New(dev.d.UART().Pipe())
			defer c.Close()
			_, err := c.Send(ctx, randomPackage(20_000, 3), client.SendOptions{})
			if !tt.inSend {
				if err != nil {
					t.Fatal(err)
				}
				err = c.Finish(ctx)
			}
			var we *wire.Error
			if !errors.As(err, &we) || we.Code != tt.code || we.Detail != tt.detail {
				t.Fatalf("error %v, want code %v detail %q", err, tt.code, tt.detail)
			}
			if tg.Installed() != nil {
				t.Fatal("package installed after an error")
			}
			// The session still works.
			if _, err := c.Info(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestLossyLink: dropped, duplicated and reordered DATA frames still give
// a byte-exact package, with writes in order only.
func TestLossyLink(t *testing.T) {
	tests := []struct {
		name   string
		policy func(n int) action
		resent bool
	}{
		{"drop every 7th", func(n int) action {
			if n%7 == 0 {
				return drop
			}
			return pass
		}, true},
		{"drop the last frames", func(n int) action {
			if n >= 48 && n <= 50 {
				return drop
			}
			return pass
		}, true},
		{"duplicate every 3rd", func(n int) action {
			if n%3 == 0 {
				return dup
			}
			return pass
		}, false},
		{"swap pairs", func(n int) action {
			if n%5 == 0 {
				return hold
			}
			return pass
		}, true},
		{"random mix", func() func(int) action {
			r := rand.New(rand.NewPCG(7, 8))
			var mu sync.Mutex
			return func(int) action {
				mu.Lock()
				defer mu.Unlock()
				switch r.IntN(10) {
				case 0:
					return drop
				case 1:
					return dup
				case 2:
					return hold
				}
				return pass
			}
		}(), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testContext(t)
			tg := wiretest.NewTarget()
			dev := startDevice(t, tg, wire.Config{MaxData: 1024})
			c := client.New(&link{Conn: dev.d.UART().Pipe(), policy: tt.policy})
			defer c.Close()
			c.SetTimeout(300 * time.Millisecond)
			pkg := randomPackage(50*1024, 4)
			st, err := c.Send(ctx, pkg, client.SendOptions{MaxRetries: 20})
			if err != nil {
				t.Fatal(err)
			}
			if tt.resent && st.Resent == 0 {
				t.Fatalf("nothing resent: %+v", st)
			}
			if err := c.Finish(ctx); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(tg.Installed(), pkg) {
				t.Fatal("installed package differs")
			}
			if tg.Contract() != 0 {
				t.Fatalf("%d target contract violations", tg.Contract())
			}
			t.Logf("%+v", st)
		})
	}
}

// TestResume: the link drops mid-transfer; the client redials a new link
// to the same Session and resumes from the device's received offset.
func TestResume(t *testing.T) {
	ctx := testContext(t)
	tg := wiretest.NewTarget()
	dev := startDevice(t, tg, wire.Config{MaxData: 1024})
	first := &link{Conn: dev.d.UART().Pipe(), policy: func(n int) action {
		if n == 20 {
			return cut
		}
		return pass
	}}
	c := client.New(first)
	defer c.Close()
	redials := 0
	pkg := randomPackage(100*1024, 5)
	st, err := c.Send(ctx, pkg, client.SendOptions{Redial: func(ctx context.Context) (io.ReadWriteCloser, error) {
		redials++
		if redials == 1 {
			return nil, errors.New("port busy") // the first redial fails
		}
		return dev.d.UART().Pipe(), nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if st.Reconnects != 1 || redials != 2 || st.Restarts != 0 {
		t.Fatalf("stats %+v after %d redials", st, redials)
	}
	// Resumed, not restarted: well under twice the frames.
	if st.Frames > 100+20 {
		t.Fatalf("%d frames for 100 KiB in 1 KiB frames", st.Frames)
	}
	if err := c.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(tg.Installed(), pkg) || tg.Contract() != 0 {
		t.Fatalf("installed package differs or contract broken (%d)", tg.Contract())
	}
}

// TestNoRedial: without Redial, a dropped link is an error, not a hang.
func TestNoRedial(t *testing.T) {
	ctx := testContext(t)
	dev := startDevice(t, wiretest.NewTarget(), wire.Config{MaxData: 1024})
	c := client.New(&link{Conn: dev.d.UART().Pipe(), policy: func(n int) action {
		if n == 5 {
			return cut
		}
		return pass
	}})
	defer c.Close()
	if _, err := c.Send(ctx, randomPackage(50_000, 6), client.SendOptions{}); err == nil {
		t.Fatal("Send succeeded over a cut link")
	}
}

func TestInactivityEndsSession(t *testing.T) {
	dev := startDevice(t, wiretest.NewTarget(), wire.Config{Inactivity: 50 * time.Millisecond})
	c := client.New(dev.d.UART().Pipe())
	defer c.Close()
	if _, err := c.Info(testContext(t)); err != nil {
		t.Fatal(err)
	}
	if end := dev.wait(t); end != wire.EndTimeout {
		t.Fatalf("session ended with %v", end)
	}
}

func TestClientErrors(t *testing.T) {
	ctx := testContext(t)
	// A device that never answers.
	a, b := netPipe()
	defer b.Close()
	go io.Copy(io.Discard, b)
	c := client.New(a)
	c.SetTimeout(20 * time.Millisecond)
	if _, err := c.Info(ctx); !errors.Is(err, client.ErrTimeout) {
		t.Fatalf("Info from a silent device: %v", err)
	}
	c.Close()
	if _, err := c.Info(ctx); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Info after Close: %v", err)
	}
	// Cancelled context.
	dev := startDevice(t, wiretest.NewTarget(), wire.Config{})
	c = client.New(dev.d.UART().Pipe())
	defer c.Close()
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Send(cctx, []byte{1}, client.SendOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Send with a cancelled context: %v", err)
	}
	if _, err := c.Send(ctx, nil, client.SendOptions{}); err == nil {
		t.Fatal("empty package accepted")
	}
	// Not provisioned.
	_, err := c.Certificate(ctx)
	var we *wire.Error
	if !errors.As(err, &we) || we.Code != wire.CodeNotProvisioned {
		t.Fatalf("Certificate of an unprovisioned device: %v", err)
	}
}

func TestDial(t *testing.T) {
	ctx := testContext(t)
	dev := startDevice(t, wiretest.NewTarget(), wire.Config{})
	addr, err := dev.d.UART().ListenTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "tty")
	if _, err := dev.d.UART().OpenPTY(link); err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	for _, port := range []string{"tcp:" + addr.String(), link} {
		c, err := client.DialOptions{Baud: 115200}.Dial(ctx, port)
		if err != nil {
			t.Fatalf("%s: %v", port, err)
		}
		info, err := c.Info(ctx)
		if err != nil || info.SBMVersion != "1.0.0" {
			t.Fatalf("%s: Info = %+v, %v", port, info, err)
		}
		c.Close()
	}
	for _, port := range []string{"", filepath.Join(t.TempDir(), "missing"), "tcp:127.0.0.1:1"} {
		if _, err := client.Dial(ctx, port); err == nil || !strings.HasPrefix(err.Error(), "wire/client:") {
			t.Fatalf("Dial(%q) = %v", port, err)
		}
	}
	_ = os.Remove(link)
}

// TestResumeAcrossClients: a programmer that was interrupted (its context
// cancelled mid-transfer, its connection closed) leaves the transfer in
// the device's session; a new Client with SendOptions.Resume continues it
// at the device's received offset, and one without begins again.
func TestResumeAcrossClients(t *testing.T) {
	pkg := randomPackage(100*1024, 11)
	tests := []struct {
		name       string
		second     []byte // the package the second client sends
		resume     bool
		wantResume bool
	}{
		{"resume", pkg, true, true},
		{"no resume", pkg, false, false},
		{"other size", pkg[:len(pkg)-1], true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testContext(t)
			tg := wiretest.NewTarget()
			dev := startDevice(t, tg, wire.Config{MaxData: 1024})
			c := client.New(dev.d.UART().Pipe())
			cctx, cancel := context.WithCancel(ctx)
			_, err := c.Send(cctx, pkg, client.SendOptions{Progress: func(sent, total int) {
				if sent >= 40*1024 {
					cancel()
				}
			}})
			cancel()
			c.Close()
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("interrupted Send: %v", err)
			}

			c = client.New(dev.d.UART().Pipe())
			defer c.Close()
			var first = -1
			st, err := c.Send(ctx, tt.second, client.SendOptions{Resume: tt.resume, Progress: func(sent, total int) {
				if first < 0 {
					first = sent
				}
			}})
			if err != nil {
				t.Fatal(err)
			}
			if got := st.ResumedAt > 0; got != tt.wantResume {
				t.Fatalf("ResumedAt = %d, want resumed %v", st.ResumedAt, tt.wantResume)
			}
			if tt.wantResume {
				if st.ResumedAt < 40*1024 || first != st.ResumedAt {
					t.Fatalf("resumed at %d, first progress %d", st.ResumedAt, first)
				}
				if want := (len(pkg) - st.ResumedAt + 1023) / 1024; st.Frames != want {
					t.Fatalf("%d frames after resuming at %d, want %d", st.Frames, st.ResumedAt, want)
				}
			}
			if err := c.Finish(ctx); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(tg.Installed(), tt.second) || tg.Contract() != 0 {
				t.Fatalf("installed package differs or contract broken (%d)", tg.Contract())
			}
		})
	}
}

// TestNoHello: nothing answering HELLO (a device running its application)
// is ErrNoHello, which is also a timeout.
func TestNoHello(t *testing.T) {
	a, b := netPipe()
	defer b.Close()
	go io.Copy(io.Discard, b)
	c := client.New(a)
	defer c.Close()
	c.SetTimeout(20 * time.Millisecond)
	_, err := c.Info(testContext(t))
	if !errors.Is(err, client.ErrNoHello) || !errors.Is(err, client.ErrTimeout) {
		t.Fatalf("Info from a silent line: %v", err)
	}
}
