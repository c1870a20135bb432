package vmcu

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/sbm-project/sbm/hal"
)

// The control socket is the board's bench harness, separate from the debug
// port: it works after the debug lock (like the reset button and the
// recovery pin of a real board) and drives the fault injection of tests.
// It speaks lines of text: one request line, one response line, "ok" with
// an optional result or "error" and a message. Requests:
//
//	reset [recovery]
//	power-cut AT [torn] [seed=SEED]
//	flip REGION BITS SEED
//	bad-sector ADDR on|off
//	status

const maxControlLine = 256

// handleControl executes one control request line.
func (d *Device) handleControl(line string) string {
	out, err := d.controlOp(line)
	if err != nil {
		return "error " + strings.ReplaceAll(err.Error(), "\n", " ")
	}
	if out == "" {
		return "ok"
	}
	return "ok " + out
}

func (d *Device) controlOp(line string) (string, error) {
	f := strings.Fields(line)
	if len(f) == 0 {
		return "", fmt.Errorf("%w: empty request", ErrBadRequest)
	}
	bad := func() error {
		return fmt.Errorf("%w: %q (want reset [recovery], power-cut AT [torn] [seed=S], flip REGION BITS SEED, bad-sector ADDR on|off, status)", ErrBadRequest, line)
	}
	switch f[0] {
	case "reset":
		switch {
		case len(f) == 1:
			d.Reset(false)
		case len(f) == 2 && f[1] == "recovery":
			d.Reset(true)
		default:
			return "", bad()
		}
		return "", nil
	case "power-cut":
		c, err := parsePowerCut(f[1:])
		if err != nil {
			return "", err
		}
		return "", d.ArmPowerCut(c)
	case "flip":
		if len(f) != 4 {
			return "", bad()
		}
		k, ok := hal.ParseRegionKind(f[1])
		n, err1 := strconv.Atoi(f[2])
		seed, err2 := strconv.ParseUint(f[3], 0, 64)
		if !ok || err1 != nil || err2 != nil {
			return "", bad()
		}
		return "", d.FlipBits(k, n, seed)
	case "bad-sector":
		if len(f) != 3 || (f[2] != "on" && f[2] != "off") {
			return "", bad()
		}
		a, err := strconv.ParseUint(f[1], 0, 32)
		if err != nil {
			return "", bad()
		}
		return "", d.SetBadSector(uint32(a), f[2] == "on")
	case "status":
		if len(f) != 1 {
			return "", bad()
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		return fmt.Sprintf("running=%t halted=%t ops=%d power-cuts=%d", d.sess != nil, d.halted, d.opSeq, d.counters.PowerCuts), nil
	}
	return "", bad()
}

// parsePowerCut parses "AT [torn] [seed=S]".
func parsePowerCut(f []string) (PowerCut, error) {
	var c PowerCut
	if len(f) == 0 {
		return c, fmt.Errorf("%w: power-cut needs an operation number", ErrBadRequest)
	}
	at, err := strconv.ParseUint(f[0], 10, 64)
	if err != nil || at == 0 {
		return c, fmt.Errorf("%w: operation number %q: want 1 or more", ErrPowerCut, f[0])
	}
	c.At = at
	for _, a := range f[1:] {
		switch {
		case a == "torn":
			c.Torn = true
		case strings.HasPrefix(a, "seed="):
			s, err := strconv.ParseUint(strings.TrimPrefix(a, "seed="), 0, 64)
			if err != nil {
				return c, fmt.Errorf("%w: bad seed %q", ErrPowerCut, a)
			}
			c.Seed = s
		default:
			return c, fmt.Errorf("%w: unknown power-cut option %q", ErrBadRequest, a)
		}
	}
	return c, nil
}

func (d *Device) serveControl(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			r := bufio.NewReaderSize(c, maxControlLine)
			for {
				line, err := r.ReadSlice('\n')
				if errors.Is(err, bufio.ErrBufferFull) {
					fmt.Fprintf(c, "error %v: line longer than %d bytes\n", ErrBadRequest, maxControlLine)
					return
				}
				if err != nil {
					return
				}
				if _, err := fmt.Fprintf(c, "%s\n", d.handleControl(string(line))); err != nil {
					return
				}
			}
		}()
	}
}

// ControlClient is a client of a running device's control socket.
type ControlClient struct {
	conn net.Conn
	r    *bufio.Reader
}

// DialControl connects to the control socket of the device running in dir.
// It returns an error wrapping ErrNotRunning if the device is not running.
func DialControl(ctx context.Context, dir string) (*ControlClient, error) {
	c, err := dialSocket(ctx, dir, ControlSocket)
	if err != nil {
		return nil, err
	}
	return &ControlClient{conn: c, r: bufio.NewReader(c)}, nil
}

// Close closes the connection.
func (c *ControlClient) Close() error { return c.conn.Close() }

// Do sends one request line and returns the result of an "ok" response, or
// the error of an "error" response.
func (c *ControlClient) Do(ctx context.Context, req string) (string, error) {
	if strings.ContainsAny(req, "\r\n") {
		return "", fmt.Errorf("%w: request contains a newline", ErrBadRequest)
	}
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(time.Minute)
	}
	c.conn.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { c.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := fmt.Fprintf(c.conn, "%s\n", req); err != nil {
		return "", fmt.Errorf("control socket: %w", err)
	}
	line, err := c.r.ReadString('\n')
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", fmt.Errorf("control socket: %w", err)
	}
	line = strings.TrimSuffix(line, "\n")
	switch {
	case line == "ok":
		return "", nil
	case strings.HasPrefix(line, "ok "):
		return strings.TrimPrefix(line, "ok "), nil
	case strings.HasPrefix(line, "error "):
		return "", errors.New(strings.TrimPrefix(line, "error "))
	}
	return "", fmt.Errorf("control socket: unexpected response %q", line)
}

// Reset resets the device, holding the recovery pin if recovery is true.
func (c *ControlClient) Reset(ctx context.Context, recovery bool) error {
	req := "reset"
	if recovery {
		req += " recovery"
	}
	_, err := c.Do(ctx, req)
	return err
}

// ArmPowerCut arms a power cut on the running device.
func (c *ControlClient) ArmPowerCut(ctx context.Context, pc PowerCut) error {
	req := fmt.Sprintf("power-cut %d", pc.At)
	if pc.Torn {
		req += " torn"
	}
	req += fmt.Sprintf(" seed=%d", pc.Seed)
	_, err := c.Do(ctx, req)
	return err
}

// FlipBits flips n bits of region k chosen by seed (see Device.FlipBits).
func (c *ControlClient) FlipBits(ctx context.Context, k hal.RegionKind, n int, seed uint64) error {
	_, err := c.Do(ctx, fmt.Sprintf("flip %s %d %d", k, n, seed))
	return err
}

// Status returns the device's status line.
func (c *ControlClient) Status(ctx context.Context) (string, error) {
	return c.Do(ctx, "status")
}
