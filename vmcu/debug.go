package vmcu

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/sbm-project/sbm/hal"
)

// handleDebug executes one debug request body and returns the response
// body. online is false for a device opened offline (no CPU running), which
// refuses reset, halt and resume.
//
// The debug port acts at SBM privilege: before lock it can read and write
// everything except what the write-protect fuse forbids. Once the
// debug-lock fuse is blown it refuses every request.
func (d *Device) handleDebug(body []byte, online bool) []byte {
	out, err := d.debugOp(body, online)
	if err != nil {
		return append([]byte{statusOf(err)}, err.Error()...)
	}
	return append([]byte{stOK}, out...)
}

func (d *Device) debugOp(body []byte, online bool) ([]byte, error) {
	if d.Locks()&hal.LockDebug != 0 {
		return nil, ErrDebugLocked
	}
	r, err := decodeDebugRequest(body)
	if err != nil {
		return nil, err
	}
	g := &d.board.Geometry
	switch r.op {
	case dbgID:
		id := d.silicon.id
		return id[:], nil
	case dbgBoard:
		return d.board.MarshalTOML(), nil
	case dbgStatus:
		var f byte
		d.mu.Lock()
		if d.sess != nil {
			f |= 1
		}
		if d.halted {
			f |= 2
		}
		d.mu.Unlock()
		return []byte{f}, nil
	case dbgRead:
		p := make([]byte, r.n)
		if r.addr >= RAMBase {
			return p, d.ramAccess(r.addr-RAMBase, p, false)
		}
		return p, d.readFlash(hal.PrivSBM, r.addr, p)
	case dbgWrite:
		if r.addr < RAMBase {
			if r.addr < g.Size {
				return nil, fmt.Errorf("%w: write %#x: flash cannot be written, use program (and erase)", ErrBadRequest, r.addr)
			}
			return nil, fmt.Errorf("write %#x: %w: nothing is mapped there", r.addr, hal.ErrOutOfRange)
		}
		return nil, d.ramAccess(r.addr-RAMBase, r.data, true)
	case dbgProgram:
		return nil, d.programFlash(hal.PrivSBM, r.addr, r.data)
	case dbgErase:
		return nil, d.eraseFlash(hal.PrivSBM, r.addr)
	case dbgFuseRead:
		v, err := d.readFuse(int(min(r.addr, 1<<30)))
		return binary.BigEndian.AppendUint32(nil, v), err
	case dbgFuseProgram:
		return nil, d.programFuse(int(min(r.addr, 1<<30)), r.n)
	case dbgReset, dbgHalt, dbgResume:
		if !online {
			return nil, fmt.Errorf("%w: reset, halt and resume need a running device", ErrNotRunning)
		}
		switch r.op {
		case dbgReset:
			d.Reset(false)
		case dbgHalt:
			d.Halt()
		case dbgResume:
			d.Resume()
		}
		return nil, nil
	}
	return nil, fmt.Errorf("%w: unknown opcode %#02x", ErrBadRequest, r.op)
}

// serveDebug serves debug-port connections from l until it is closed.
func (d *Device) serveDebug(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			for {
				body, err := readFrame(c)
				var resp []byte
				if errors.Is(err, ErrBadRequest) {
					c.Write(appendFrame(nil, append([]byte{stBadRequest}, err.Error()...)))
					return // the stream cannot be resynchronised
				}
				if err != nil {
					return
				}
				resp = d.handleDebug(body, true)
				if _, err := c.Write(appendFrame(nil, resp)); err != nil {
					return
				}
			}
		}()
	}
}

// DebugPort is a client of a device's debug port, as a host tool (a
// programmer) uses it. It is safe for concurrent use; requests are
// serialised.
type DebugPort struct {
	mu     sync.Mutex
	conn   net.Conn // over the socket of a running device
	dev    *Device  // in process
	online bool
	owned  bool // dev was opened by OpenDebug and is closed by Close
}

// DialDebug connects to the debug port of the device running in dir (its
// socket dir/debug.sock). It returns an error wrapping ErrNotRunning if the
// device is not running.
func DialDebug(ctx context.Context, dir string) (*DebugPort, error) {
	c, err := dialSocket(ctx, dir, DebugSocket)
	if err != nil {
		return nil, err
	}
	return &DebugPort{conn: c, online: true}, nil
}

// OpenDebug opens the device in dir while it is not running and returns its
// debug port ("offline" access, as a probe on an unpowered board with its
// own supply). Reset, Halt and Resume fail with ErrNotRunning. Close
// releases the device. It fails with ErrBusy if the device is running.
func OpenDebug(dir string) (*DebugPort, error) {
	d, err := Open(dir)
	if err != nil {
		return nil, err
	}
	return &DebugPort{dev: d, owned: true}, nil
}

// ConnectDebug dials the debug port of the device in dir if it is running,
// and opens it offline otherwise.
func ConnectDebug(ctx context.Context, dir string) (*DebugPort, error) {
	p, err := DialDebug(ctx, dir)
	if err == nil || !errors.Is(err, ErrNotRunning) {
		return p, err
	}
	p, err = OpenDebug(dir)
	if errors.Is(err, ErrBusy) {
		// It started between the two attempts.
		return DialDebug(ctx, dir)
	}
	return p, err
}

// DebugPort returns an in-process client of the device's debug port, for
// tests and harnesses that run a device in memory. It behaves like the
// socket client of a running device.
func (d *Device) DebugPort() *DebugPort { return &DebugPort{dev: d, online: true} }

// Close closes the connection, or the device opened by OpenDebug.
func (p *DebugPort) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn != nil {
		return p.conn.Close()
	}
	if p.owned {
		return p.dev.Close()
	}
	return nil
}

// Online reports whether the device has a running CPU (false for
// OpenDebug).
func (p *DebugPort) Online() bool { return p.online }

func (p *DebugPort) do(ctx context.Context, r debugRequest) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	body := r.encode()
	var resp []byte
	if p.conn == nil {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		resp = p.dev.handleDebug(body, p.online)
	} else {
		dl, ok := ctx.Deadline()
		if !ok {
			dl = time.Now().Add(time.Minute)
		}
		stop := context.AfterFunc(ctx, func() { p.conn.SetDeadline(time.Unix(1, 0)) })
		defer stop()
		p.conn.SetDeadline(dl)
		if _, err := p.conn.Write(appendFrame(nil, body)); err != nil {
			return nil, p.ioErr(ctx, err)
		}
		var err error
		if resp, err = readFrame(p.conn); err != nil {
			return nil, p.ioErr(ctx, err)
		}
	}
	return decodeResponse(resp)
}

func (p *DebugPort) ioErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("debug port: %w", err)
}

// ID reads the unique device ID.
func (p *DebugPort) ID(ctx context.Context) ([hal.IDSize]byte, error) {
	var id [hal.IDSize]byte
	b, err := p.do(ctx, debugRequest{op: dbgID})
	if err != nil {
		return id, err
	}
	if len(b) != hal.IDSize {
		return id, fmt.Errorf("debug port: id of %d bytes", len(b))
	}
	return [hal.IDSize]byte(b), nil
}

// Board reads the device's board description.
func (p *DebugPort) Board(ctx context.Context) (*Board, error) {
	b, err := p.do(ctx, debugRequest{op: dbgBoard})
	if err != nil {
		return nil, err
	}
	return ParseBoard(b)
}

// Status reports whether the CPU is running and whether it is halted.
func (p *DebugPort) Status(ctx context.Context) (running, halted bool, err error) {
	b, err := p.do(ctx, debugRequest{op: dbgStatus})
	if err != nil {
		return false, false, err
	}
	if len(b) != 1 {
		return false, false, fmt.Errorf("debug port: status of %d bytes", len(b))
	}
	return b[0]&1 != 0, b[0]&2 != 0, nil
}

// Read reads n bytes at addr: flash at 0..size-1, RAM at RAMBase.
func (p *DebugPort) Read(ctx context.Context, addr uint32, n int) ([]byte, error) {
	if n < 0 || n > 256<<20 {
		return nil, fmt.Errorf("debug read: %w: length %d", ErrBadRequest, n)
	}
	out := make([]byte, 0, n)
	for len(out) < n {
		k := min(n-len(out), DebugMaxTransfer)
		b, err := p.do(ctx, debugRequest{op: dbgRead, addr: addr + uint32(len(out)), n: uint32(k)})
		if err != nil {
			return nil, err
		}
		if len(b) != k {
			return nil, fmt.Errorf("debug port: read returned %d bytes, want %d", len(b), k)
		}
		out = append(out, b...)
	}
	return out, nil
}

// transfer sends data in requests of at most DebugMaxTransfer bytes.
func (p *DebugPort) transfer(ctx context.Context, op byte, addr uint32, data []byte) error {
	if len(data) == 0 {
		return fmt.Errorf("debug: %w: no data", ErrBadRequest)
	}
	for off := 0; off < len(data); off += DebugMaxTransfer {
		chunk := data[off:min(len(data), off+DebugMaxTransfer)]
		if _, err := p.do(ctx, debugRequest{op: op, addr: addr + uint32(off), data: chunk}); err != nil {
			return err
		}
	}
	return nil
}

// Write writes RAM at addr (RAMBase or above). Flash is changed with
// Program and Erase.
func (p *DebugPort) Write(ctx context.Context, addr uint32, data []byte) error {
	return p.transfer(ctx, dbgWrite, addr, data)
}

// Program programs data into erased flash at addr.
func (p *DebugPort) Program(ctx context.Context, addr uint32, data []byte) error {
	return p.transfer(ctx, dbgProgram, addr, data)
}

// Erase erases the flash sector starting at addr.
func (p *DebugPort) Erase(ctx context.Context, addr uint32) error {
	_, err := p.do(ctx, debugRequest{op: dbgErase, addr: addr})
	return err
}

// ReadFuse reads fuse word i.
func (p *DebugPort) ReadFuse(ctx context.Context, i int) (uint32, error) {
	if i < 0 {
		return 0, fmt.Errorf("fuse read word %d: %w", i, hal.ErrBadFuse)
	}
	b, err := p.do(ctx, debugRequest{op: dbgFuseRead, addr: uint32(min(i, 1<<30))})
	if err != nil {
		return 0, err
	}
	if len(b) != 4 {
		return 0, fmt.Errorf("debug port: fuse value of %d bytes", len(b))
	}
	return binary.BigEndian.Uint32(b), nil
}

// ProgramFuse blows the bits set in v in fuse word i.
func (p *DebugPort) ProgramFuse(ctx context.Context, i int, v uint32) error {
	if i < 0 {
		return fmt.Errorf("fuse program word %d: %w", i, hal.ErrBadFuse)
	}
	_, err := p.do(ctx, debugRequest{op: dbgFuseProgram, addr: uint32(min(i, 1<<30)), n: v})
	return err
}

// Reset resets the device (the recovery pin is not held; see
// ControlClient.Reset for that).
func (p *DebugPort) Reset(ctx context.Context) error {
	_, err := p.do(ctx, debugRequest{op: dbgReset})
	return err
}

// Halt halts the CPU at its next hardware access.
func (p *DebugPort) Halt(ctx context.Context) error {
	_, err := p.do(ctx, debugRequest{op: dbgHalt})
	return err
}

// Resume resumes a halted CPU.
func (p *DebugPort) Resume(ctx context.Context) error {
	_, err := p.do(ctx, debugRequest{op: dbgResume})
	return err
}

// Fuses returns the debug port's fuse access as a hal.Fuses, so that the
// hal fuse helpers (hal.BlowLocks, hal.ProgramRootKeyHash, ...) work over
// the debug port. Its methods use ctx.
func (p *DebugPort) Fuses(ctx context.Context) hal.Fuses { return debugFuses{p, ctx} }

type debugFuses struct {
	p   *DebugPort
	ctx context.Context
}

func (f debugFuses) Words() int                        { return hal.FuseWords }
func (f debugFuses) ReadWord(i int) (uint32, error)    { return f.p.ReadFuse(f.ctx, i) }
func (f debugFuses) ProgramWord(i int, v uint32) error { return f.p.ProgramFuse(f.ctx, i, v) }
