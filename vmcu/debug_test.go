package vmcu

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sbm-project/sbm/hal"
)

// runDevice opens dir, serves its sockets and runs fw until the test ends.
func runDevice(t *testing.T, dir string, fw Firmware) *Device {
	t.Helper()
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	stopServe, err := d.Serve()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.Run(ctx, fw, false)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		stopServe()
		d.Close()
	})
	return d
}

func TestDebugPortOverSocket(t *testing.T) {
	dir := newDir(t, "small")
	ctx := context.Background()
	if _, err := DialDebug(ctx, dir); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("dial a stopped device: %v", err)
	}
	d := runDevice(t, dir, Placeholder())
	p, err := DialDebug(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	id, err := p.ID(ctx)
	if err != nil || id != d.ID() {
		t.Fatalf("ID = %x, %v", id, err)
	}
	b, err := p.Board(ctx)
	if err != nil || b.Name != "small" {
		t.Fatalf("Board = %v, %v", b, err)
	}
	data := pattern(100<<10, 0xFF) // more than one transfer
	if err := p.Program(ctx, 0xA000, data); err != nil {
		t.Fatal(err)
	}
	got, err := p.Read(ctx, 0xA000, len(data))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back: %v", err)
	}
	if err := p.Program(ctx, 0xA000, data[:8]); !errors.Is(err, hal.ErrNotErased) {
		t.Errorf("program over data: %v", err)
	}
	if err := p.Erase(ctx, 0xA000); err != nil {
		t.Fatal(err)
	}
	if err := p.Write(ctx, RAMBase+16, []byte("mailbox")); err != nil {
		t.Fatal(err)
	}
	if m, err := p.Read(ctx, RAMBase+16, 7); err != nil || string(m) != "mailbox" {
		t.Errorf("RAM read: %q, %v", m, err)
	}
	if err := p.Write(ctx, 0x100, []byte{1}); !errors.Is(err, ErrBadRequest) {
		t.Errorf("write to flash: %v", err)
	}
	if err := hal.AdvanceCounter(p.Fuses(ctx), 3, 7); err != nil {
		t.Fatal(err)
	}
	if v, err := hal.ReadCounter(p.Fuses(ctx), 3); v != 7 || err != nil {
		t.Errorf("counter over the debug port: %d, %v", v, err)
	}
	if _, err := p.ReadFuse(ctx, hal.FuseWords); !errors.Is(err, hal.ErrBadFuse) {
		t.Errorf("fuse out of range: %v", err)
	}
	if err := p.Halt(ctx); err != nil {
		t.Fatal(err)
	}
	if running, halted, err := p.Status(ctx); !running || !halted || err != nil {
		t.Errorf("status after halt: %v %v %v", running, halted, err)
	}
	if err := p.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Reset(ctx); err != nil {
		t.Fatal(err)
	}

	// Lock the port: every request kind is refused from now on.
	if err := hal.BlowLocks(p.Fuses(ctx), hal.LockDebug); err != nil {
		t.Fatal(err)
	}
	checkLocked(t, p)
	// Fresh connections too; the control socket still works.
	p2, err := DialDebug(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	checkLocked(t, p2)
	c, err := DialControl(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Reset(ctx, true); err != nil {
		t.Errorf("control reset after lock: %v", err)
	}
	if s, err := c.Status(ctx); err != nil || !strings.Contains(s, "running=") {
		t.Errorf("status: %q %v", s, err)
	}
}

func checkLocked(t *testing.T, p *DebugPort) {
	t.Helper()
	ctx := context.Background()
	for op := byte(dbgID); op <= dbgStatus; op++ {
		r := debugRequest{op: op, addr: 0x1000, n: 4, data: make([]byte, 8)}
		if _, err := p.do(ctx, r); !errors.Is(err, ErrDebugLocked) || err.Error() != "debug port locked" {
			t.Errorf("opcode %#x after lock: %v", op, err)
		}
	}
	if _, err := p.do(ctx, debugRequest{op: 0x77}); !errors.Is(err, ErrDebugLocked) {
		t.Errorf("unknown opcode after lock: %v", err)
	}
}

// TestDebugPortBadRequests sends malformed frames on the socket: each gets
// a clear error, nothing changes, the device keeps running.
func TestDebugPortBadRequests(t *testing.T) {
	dir := newDir(t, "small")
	d := runDevice(t, dir, Placeholder())
	before := bytes.Clone(d.flash)
	conn, err := net.Dial("unix", filepath.Join(dir, DebugSocket))
	if err != nil {
		t.Skipf("socket path too long to dial directly: %v", err)
	}
	defer conn.Close()
	u32 := func(v ...uint32) []byte {
		var b []byte
		for _, x := range v {
			b = binary.BigEndian.AppendUint32(b, x)
		}
		return b
	}
	tests := []struct {
		name string
		body []byte
		want byte
	}{
		{"unknown opcode", []byte{0x42}, stBadRequest},
		{"id with argument", []byte{dbgID, 0}, stBadRequest},
		{"read short", append([]byte{dbgRead}, 0, 0, 0), stBadRequest},
		{"read zero length", append([]byte{dbgRead}, u32(0, 0)...), stBadRequest},
		{"read too long", append([]byte{dbgRead}, u32(0, DebugMaxTransfer+1)...), stBadRequest},
		{"read out of range", append([]byte{dbgRead}, u32(0x3FFFF, 2)...), stOutOfRange},
		{"read unmapped", append([]byte{dbgRead}, u32(0x1000_0000, 2)...), stOutOfRange},
		{"read past RAM", append([]byte{dbgRead}, u32(RAMBase+64<<10-1, 2)...), stOutOfRange},
		{"program no data", append([]byte{dbgProgram}, u32(0)...), stBadRequest},
		{"program misaligned", append([]byte{dbgProgram}, u32(1, 0, 0)...), stMisaligned},
		{"program out of range", append([]byte{dbgProgram}, u32(0x40000, 0, 0)...), stOutOfRange},
		{"erase inside sector", append([]byte{dbgErase}, u32(8)...), stMisaligned},
		{"erase out of range", append([]byte{dbgErase}, u32(0xFFFFFFFF)...), stOutOfRange},
		{"erase long", append([]byte{dbgErase}, u32(0, 0)...), stBadRequest},
		{"fuse read out of range", append([]byte{dbgFuseRead}, u32(64)...), stBadFuse},
		{"fuse program short", append([]byte{dbgFuseProgram}, u32(1)...), stBadRequest},
		{"fuse program out of range", append([]byte{dbgFuseProgram}, u32(1<<31, 1)...), stBadFuse},
		{"write to flash", append([]byte{dbgWrite}, u32(0, 1)...), stBadRequest},
		{"write unmapped", append([]byte{dbgWrite}, u32(0x100000, 1)...), stOutOfRange},
	}
	for _, tt := range tests {
		conn.Write(appendFrame(nil, tt.body))
		resp, err := readFrame(conn)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if resp[0] != tt.want || len(resp) < 5 {
			t.Errorf("%s: status %d %q, want %d", tt.name, resp[0], resp[1:], tt.want)
		}
	}
	if !bytes.Equal(before, d.flash) || d.Locks() != 0 {
		t.Error("bad requests changed the device")
	}
	// A frame length out of bounds gets an error and the connection closes.
	conn.Write(u32(maxFrame + 1))
	if resp, err := readFrame(conn); err != nil || resp[0] != stBadRequest {
		t.Errorf("oversized frame: %v %v", resp, err)
	}
	if _, err := readFrame(conn); err == nil {
		t.Error("connection still open after an oversized frame")
	}
	// The device still serves.
	p, err := DialDebug(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.ID(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestDebugPortOffline(t *testing.T) {
	dir := newDir(t, "small")
	ctx := context.Background()
	p, err := ConnectDebug(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if p.Online() {
		t.Error("offline port reports online")
	}
	if err := p.Reset(ctx); !errors.Is(err, ErrNotRunning) {
		t.Errorf("offline reset: %v", err)
	}
	if err := p.Program(ctx, 0, []byte("12345678")); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenDebug(dir); !errors.Is(err, ErrBusy) {
		t.Errorf("second offline open: %v", err)
	}
	hal.BlowLocks(p.Fuses(ctx), hal.LockDebug)
	checkLocked(t, p)
	p.Close()
	// Persisted: a new offline session is locked too.
	p, err = OpenDebug(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.ID(ctx); !errors.Is(err, ErrDebugLocked) {
		t.Errorf("after reopen: %v", err)
	}
}

func FuzzDebugRequest(f *testing.F) {
	f.Add([]byte{dbgID})
	f.Add([]byte{dbgRead, 0, 0, 0, 0, 0, 0, 0, 16})
	f.Add([]byte{dbgProgram, 0, 0, 0x40, 0, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Add([]byte{dbgErase, 0, 0, 8, 0})
	f.Add([]byte{dbgFuseProgram, 0, 0, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF})
	f.Add([]byte{dbgWrite, 0x20, 0, 0, 0, 1})
	b, _ := LookupBoard("small")
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := decodeDebugRequest(body)
		if err == nil {
			if !bytes.Equal(r.encode(), body) {
				t.Fatalf("re-encoding %x gives %x", body, r.encode())
			}
		} else if !errors.Is(err, ErrBadRequest) {
			t.Fatalf("decode error %v is not ErrBadRequest", err)
		}
		// Executing it never panics, and always answers with a status.
		d := NewMemory(b, 1)
		resp := d.handleDebug(body, false)
		if len(resp) == 0 || (resp[0] != stOK && len(resp) < 2) {
			t.Fatalf("response %x", resp)
		}
		if resp[0] == stInternal {
			t.Fatalf("internal error: %s", resp[1:])
		}
	})
}

func TestRunResetAndPowerLoss(t *testing.T) {
	b, _ := LookupBoard("small")
	d := NewMemory(b, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var log bytes.Buffer
	d.SetConsole(&syncWriter{w: &log})
	boots := make(chan bool, 10)
	sawLoss := false
	fw := FirmwareFunc(func(ctx context.Context, hw *hal.Hardware) {
		boots <- hw.System.RecoveryPin()
		defer func() {
			if v := recover(); v != nil {
				if !IsStopPanic(v) {
					t.Errorf("unexpected panic %v", v)
				}
				panic(v)
			}
		}()
		for {
			if err := hw.Flash.Erase(0x4000); err != nil {
				sawLoss = true // must never be reached for a power loss
			}
			hw.UART.Read(make([]byte, 1), 20*time.Millisecond)
		}
	})
	done := make(chan error)
	go func() { done <- d.Run(ctx, fw, false) }()
	if <-boots {
		t.Error("first boot with recovery pin")
	}
	d.Reset(true)
	if !<-boots {
		t.Error("reset with recovery: pin not seen")
	}
	d.ArmPowerCut(PowerCut{At: 1})
	if <-boots {
		t.Error("boot after power loss with recovery pin")
	}
	// Halt: no flash operations while halted.
	d.Halt()
	time.Sleep(50 * time.Millisecond)
	n := d.OpCount()
	time.Sleep(100 * time.Millisecond)
	if d.OpCount() != n {
		t.Error("operations while halted")
	}
	d.Resume()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if sawLoss {
		t.Error("firmware saw the power loss as an error return")
	}
	if s := log.String(); !strings.Contains(s, "reset (recovery pin held)") || !strings.Contains(s, "power lost before operation") {
		t.Errorf("console:\n%s", s)
	}
	if d.Counters().PowerCuts != 1 {
		t.Error("power cut not counted")
	}
}

func TestFirmwareResetAndCrash(t *testing.T) {
	b, _ := LookupBoard("small")
	d := NewMemory(b, 1)
	ctx := context.Background()
	st, _ := d.PowerOn(ctx, FirmwareFunc(func(ctx context.Context, hw *hal.Hardware) {
		hw.RAM.Write(0, []byte("warm"))
		hw.System.Reset()
		t.Error("Reset returned")
	}), PowerOnOptions{})
	if st.Reason != StopReset {
		t.Errorf("stop = %v", st.Reason)
	}
	var ram [4]byte
	d.PowerOn(ctx, FirmwareFunc(func(ctx context.Context, hw *hal.Hardware) { hw.RAM.Read(0, ram[:]) }), PowerOnOptions{Warm: true})
	if string(ram[:]) != "warm" {
		t.Errorf("RAM after warm reset: %q", ram)
	}
	d.PowerOn(ctx, FirmwareFunc(func(ctx context.Context, hw *hal.Hardware) { hw.RAM.Read(0, ram[:]) }), PowerOnOptions{})
	if ram != [4]byte{} {
		t.Errorf("RAM after power cycle: %q", ram)
	}
	st, _ = d.PowerOn(ctx, FirmwareFunc(func(ctx context.Context, hw *hal.Hardware) { panic("oops") }), PowerOnOptions{})
	if st.Reason != StopCrashed || st.Panic != "oops" {
		t.Errorf("crash: %+v", st)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	st, _ = d.PowerOn(cctx, FirmwareFunc(func(ctx context.Context, hw *hal.Hardware) {
		hw.UART.Read(make([]byte, 1), time.Hour)
	}), PowerOnOptions{})
	if st.Reason != StopCanceled {
		t.Errorf("cancelled: %v", st.Reason)
	}
}

// TestResetBetweenSessions resets the device with the recovery pin while
// no firmware is running (between two sessions, as when a test's reset
// lands just after the firmware's own reset): the next power-on must boot
// with the pin held, not drop the request.
func TestResetBetweenSessions(t *testing.T) {
	b, _ := LookupBoard("small")
	d := NewMemory(b, 1)
	pin := make(chan bool, 1)
	fw := FirmwareFunc(func(ctx context.Context, hw *hal.Hardware) { pin <- hw.System.RecoveryPin() })
	ctx := context.Background()
	for _, recovery := range []bool{true, false} {
		d.Reset(recovery)
		if _, err := d.PowerOn(ctx, fw, PowerOnOptions{Warm: true}); err != nil {
			t.Fatal(err)
		}
		if got := <-pin; got != recovery {
			t.Errorf("Reset(%v) between sessions: the next boot saw the recovery pin %v", recovery, got)
		}
	}
	// The request is used once: a later power-on is without the pin.
	if _, err := d.PowerOn(ctx, fw, PowerOnOptions{Warm: true}); err != nil {
		t.Fatal(err)
	}
	if <-pin {
		t.Error("a reset request applied to two power-ons")
	}
}
