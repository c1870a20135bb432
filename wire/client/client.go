// Package client is the host side of the SBM connection protocol
// (docs/spec/protocol.md): it negotiates the protocol version, reads the
// device information and certificate, and sends a package with a windowed,
// resumable transfer: after a dropped link Send redials and continues at
// the device's received offset, and with SendOptions.Resume a new Client
// continues a transfer an earlier one left in the device's session (a
// device that was reset has lost it: the transfer begins again).
//
// A Client is not safe for concurrent use, except Close.
package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/sbm-project/sbm/wire"
)

// Errors a Client returns. Errors reported by the device are *wire.Error
// values (errors.As) carrying the device's code and detail.
var (
	// ErrTimeout means the device did not answer in time.
	ErrTimeout = errors.New("wire/client: no response from the device")
	// ErrClosed means the Client was closed.
	ErrClosed = errors.New("wire/client: client closed")
	// ErrProtocol means the device answered something the protocol does
	// not allow.
	ErrProtocol = errors.New("wire/client: protocol violation")
	// ErrNoHello means nothing on the line answered HELLO: no SBM is
	// listening there (the device is running its application rather than
	// the SBM's recovery mode, is off, or the port is not the device's).
	// Errors wrapping it also wrap ErrTimeout.
	ErrNoHello = errors.New("wire/client: no answer to HELLO")
)

// Default timeouts.
const (
	// DefaultTimeout is how long a request waits for its response before
	// it is sent again (three attempts in all).
	DefaultTimeout = 2 * time.Second
	// DefaultFinishTimeout bounds FINISH, which verifies and installs the
	// whole package, unless the context is shorter.
	DefaultFinishTimeout = 5 * time.Minute
	// maxCertificate bounds the certificate a Client accepts.
	maxCertificate = 64 << 10
)

// Params are the parameters negotiated by HELLO.
type Params struct {
	Version    int           // protocol version
	MaxData    int           // largest DATA payload the device accepts
	Window     int           // most unacknowledged DATA payload bytes in flight
	Inactivity time.Duration // the device ends the session after this long without a request
	MaxFrame   int           // largest decoded frame the device accepts
}

// Client speaks the protocol to one device.
type Client struct {
	c       *conn
	seq     uint8
	params  *Params
	timeout time.Duration
	baud    int
	redial  func(ctx context.Context) (io.ReadWriteCloser, error)

	mu     sync.Mutex // guards closed and c for Close
	closed bool
}

// New returns a Client speaking over rwc, which it closes on Close.
func New(rwc io.ReadWriteCloser) *Client {
	return &Client{c: newConn(rwc), timeout: DefaultTimeout}
}

// SetTimeout sets how long a request waits for its response (default
// DefaultTimeout). On a slow line the client also allows the time the
// window takes to drain at the baud rate given to Dial.
func (c *Client) SetTimeout(d time.Duration) {
	if d > 0 {
		c.timeout = d
	}
}

// Close closes the connection.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		c.c.close()
	}
	return nil
}

// attach replaces the connection (after a redial).
func (c *Client) attach(rwc io.ReadWriteCloser) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		rwc.Close()
		return ErrClosed
	}
	c.c.close()
	c.c = newConn(rwc)
	c.params = nil
	return nil
}

func (c *Client) nextSeq() uint8 {
	c.seq++
	return c.seq
}

// linkTime returns how long n bytes take on the line, or 0 if the baud
// rate is unknown.
func (c *Client) linkTime(n int) time.Duration {
	if c.baud <= 0 {
		return 0
	}
	return time.Duration(n) * 10 * time.Second / time.Duration(c.baud)
}

// connErr turns a connection failure into the error to report.
func (c *Client) connErr(err error) error {
	if errors.Is(err, errConnClosed) {
		c.mu.Lock()
		closed := c.closed
		c.mu.Unlock()
		if closed {
			return ErrClosed
		}
	}
	return fmt.Errorf("wire/client: link: %w", err)
}

// exchange sends one request and waits for the response with its sequence
// number, sending the request again after a timeout up to attempts times.
// A RESULT with a non-zero code is returned as a *wire.Error.
func (c *Client) exchange(ctx context.Context, typ wire.Type, body []byte, want wire.Type, timeout time.Duration, attempts int) (wire.Frame, error) {
	for i := 0; i < attempts; i++ {
		seq := c.nextSeq()
		if err := c.c.send(ctx, wire.AppendFrame(nil, typ, seq, body)); err != nil {
			if ctx.Err() != nil {
				return wire.Frame{}, ctx.Err()
			}
			return wire.Frame{}, c.connErr(err)
		}
		f, err := c.await(ctx, seq, timeout)
		if errors.Is(err, ErrTimeout) {
			continue
		}
		if err != nil {
			return wire.Frame{}, err
		}
		if f.Type == wire.TypeResult {
			var r wire.Result
			if err := r.DecodeCBOR(f.Body); err != nil {
				return wire.Frame{}, fmt.Errorf("%w: bad RESULT: %v", ErrProtocol, err)
			}
			if err := r.Err(); err != nil {
				return wire.Frame{}, err
			}
		}
		if f.Type != want {
			return wire.Frame{}, fmt.Errorf("%w: response type %#02x to request %#02x", ErrProtocol, uint8(f.Type), uint8(typ))
		}
		return f, nil
	}
	return wire.Frame{}, ErrTimeout
}

// await waits for the response with sequence number seq, discarding other
// frames (late answers to earlier requests).
func (c *Client) await(ctx context.Context, seq uint8, timeout time.Duration) (wire.Frame, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	cn := c.c
	for {
		select {
		case f := <-cn.frames:
			if f.Seq == seq && f.Type.IsResponse() {
				return f, nil
			}
		case <-t.C:
			return wire.Frame{}, ErrTimeout
		case <-cn.done:
			return wire.Frame{}, c.connErr(cn.err)
		case <-ctx.Done():
			return wire.Frame{}, ctx.Err()
		}
	}
}

// request is exchange with the default timeout and three attempts.
func (c *Client) request(ctx context.Context, typ wire.Type, body []byte, want wire.Type) (wire.Frame, error) {
	return c.exchange(ctx, typ, body, want, c.timeout+c.linkTime(2*wire.MaxEncoded), 3)
}

// Hello negotiates the protocol version and returns the device's
// parameters. Other methods call it when needed. Its random nonce, echoed
// by the device, tells the answer apart from stale bytes that an earlier
// session left on the line.
func (c *Client) Hello(ctx context.Context) (*Params, error) {
	nonce := make([]byte, 8)
	rand.Read(nonce)
	m := wire.Hello{MinVersion: wire.MinVersion, MaxVersion: wire.MaxVersion, Nonce: nonce}
	timeout := c.timeout + c.linkTime(2*wire.MaxEncoded)
	for range 3 {
		seq := c.nextSeq()
		if err := c.c.send(ctx, wire.AppendFrame(nil, wire.TypeHello, seq, m.AppendCBOR(nil))); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("wire/client: hello: %w", c.connErr(err))
		}
		deadline := time.Now().Add(timeout)
		// An error answer with our sequence number may be stale (an answer
		// to a request of an earlier session, left on the line): it only
		// counts if no HELLO_REPLY with our nonce follows before the
		// deadline.
		var refused error
		for {
			f, err := c.await(ctx, seq, time.Until(deadline))
			if errors.Is(err, ErrTimeout) {
				if refused != nil {
					return nil, fmt.Errorf("wire/client: hello: %w", refused)
				}
				break
			}
			if err != nil {
				return nil, fmt.Errorf("wire/client: hello: %w", err)
			}
			if f.Type == wire.TypeResult {
				var r wire.Result
				if err := r.DecodeCBOR(f.Body); err == nil && r.Err() != nil {
					refused = r.Err()
				}
				continue
			}
			var r wire.HelloReply
			if f.Type != wire.TypeHelloReply || r.DecodeCBOR(f.Body) != nil || !bytes.Equal(r.Nonce, nonce) {
				continue // stale: an answer to an earlier session's request
			}
			if r.Version < wire.MinVersion || r.Version > wire.MaxVersion {
				return nil, fmt.Errorf("%w: device chose version %d", ErrProtocol, r.Version)
			}
			c.params = &Params{
				Version:    int(r.Version),
				MaxData:    int(r.MaxData),
				Window:     int(r.Window),
				Inactivity: time.Duration(r.Inactivity) * time.Millisecond,
				MaxFrame:   int(r.MaxFrame),
			}
			p := *c.params
			return &p, nil
		}
	}
	return nil, fmt.Errorf("%w: %w", ErrNoHello, ErrTimeout)
}

func (c *Client) hello(ctx context.Context) (*Params, error) {
	if c.params != nil {
		return c.params, nil
	}
	if _, err := c.Hello(ctx); err != nil {
		return nil, err
	}
	return c.params, nil
}

// simple sends a request with an empty body and returns the response.
func (c *Client) simple(ctx context.Context, name string, typ, want wire.Type) (wire.Frame, error) {
	if _, err := c.hello(ctx); err != nil {
		return wire.Frame{}, err
	}
	f, err := c.request(ctx, typ, wire.AppendEmpty(nil), want)
	if err != nil {
		return wire.Frame{}, fmt.Errorf("wire/client: %s: %w", name, err)
	}
	return f, nil
}

// Info returns the device information.
func (c *Client) Info(ctx context.Context) (*wire.DeviceInfo, error) {
	f, err := c.simple(ctx, "info", wire.TypeInfo, wire.TypeInfoReply)
	if err != nil {
		return nil, err
	}
	var info wire.DeviceInfo
	if err := info.DecodeCBOR(f.Body); err != nil {
		return nil, fmt.Errorf("%w: bad INFO reply: %v", ErrProtocol, err)
	}
	return &info, nil
}

// Status is the state of the device's transfer (STATUS).
type Status = wire.StatusReply

// Status returns the state of the device's transfer.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	f, err := c.simple(ctx, "status", wire.TypeStatus, wire.TypeStatusReply)
	if err != nil {
		return nil, err
	}
	var st wire.StatusReply
	if err := st.DecodeCBOR(f.Body); err != nil {
		return nil, fmt.Errorf("%w: bad STATUS reply: %v", ErrProtocol, err)
	}
	return &st, nil
}

// Certificate returns the device certificate (DER). A device that is not
// provisioned answers with wire.CodeNotProvisioned.
func (c *Client) Certificate(ctx context.Context) ([]byte, error) {
	if _, err := c.hello(ctx); err != nil {
		return nil, err
	}
	var cert []byte
	for {
		m := wire.GetCert{Offset: uint32(len(cert))}
		f, err := c.request(ctx, wire.TypeGetCert, m.AppendCBOR(nil), wire.TypeCertReply)
		if err != nil {
			return nil, fmt.Errorf("wire/client: certificate: %w", err)
		}
		var r wire.CertReply
		if err := r.DecodeCBOR(f.Body); err != nil {
			return nil, fmt.Errorf("%w: bad CERT reply: %v", ErrProtocol, err)
		}
		switch {
		case r.Total > maxCertificate:
			return nil, fmt.Errorf("%w: certificate of %d bytes", ErrProtocol, r.Total)
		case int(r.Offset) != len(cert) || (len(r.Bytes) == 0 && int(r.Total) > len(cert)):
			return nil, fmt.Errorf("%w: certificate piece at %d, want %d", ErrProtocol, r.Offset, len(cert))
		}
		cert = append(cert, r.Bytes...)
		if len(cert) >= int(r.Total) {
			return cert, nil
		}
	}
}

// Finish asks the device to verify and install the package sent. It waits
// up to DefaultFinishTimeout (or the context's deadline). A rejection is a
// *wire.Error with the device's code and detail.
func (c *Client) Finish(ctx context.Context) error {
	if _, err := c.hello(ctx); err != nil {
		return err
	}
	_, err := c.exchange(ctx, wire.TypeFinish, wire.AppendEmpty(nil), wire.TypeResult, DefaultFinishTimeout, 1)
	if err != nil {
		return fmt.Errorf("wire/client: finish: %w", err)
	}
	return nil
}

// Abort asks the device to discard the transfer in progress.
func (c *Client) Abort(ctx context.Context) error {
	_, err := c.simple(ctx, "abort", wire.TypeAbort, wire.TypeResult)
	return err
}

// Reset asks the device to end the session and reset. It returns when the
// device has acknowledged; the device resets after that.
func (c *Client) Reset(ctx context.Context) error {
	if _, err := c.hello(ctx); err != nil {
		return err
	}
	_, err := c.exchange(ctx, wire.TypeReset, wire.AppendEmpty(nil), wire.TypeResult, c.timeout+c.linkTime(2*wire.MaxEncoded), 1)
	if err != nil {
		return fmt.Errorf("wire/client: reset: %w", err)
	}
	return nil
}
