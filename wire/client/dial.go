package client

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"

	"go.bug.st/serial"
)

// DialOptions configure Dial.
type DialOptions struct {
	// Baud is the serial line rate; 0 means 115200. It is ignored for TCP
	// except to size timeouts when set.
	Baud int
}

// Dial connects to the device on port: "tcp:HOST:PORT" for a TCP endpoint
// (such as the virtual MCU's UART), else the path of a serial device or
// pseudo-terminal, opened at 115200 baud.
func Dial(ctx context.Context, port string) (*Client, error) {
	return DialOptions{}.Dial(ctx, port)
}

// Dial connects to the device on port (see the package-level Dial) with
// these options. Send redials the same port if the link drops.
func (o DialOptions) Dial(ctx context.Context, port string) (*Client, error) {
	rwc, err := o.Open(ctx, port)
	if err != nil {
		return nil, err
	}
	c := New(rwc)
	c.baud = o.Baud
	if c.baud == 0 && !strings.HasPrefix(port, "tcp:") {
		c.baud = 115200
	}
	c.redial = func(ctx context.Context) (io.ReadWriteCloser, error) { return o.Open(ctx, port) }
	return c, nil
}

// Open opens port (see Dial) and returns the raw connection, for use as
// SendOptions.Redial.
func (o DialOptions) Open(ctx context.Context, port string) (io.ReadWriteCloser, error) {
	if addr, ok := strings.CutPrefix(port, "tcp:"); ok {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("wire/client: %w", err)
		}
		return conn, nil
	}
	if port == "" {
		return nil, fmt.Errorf("wire/client: empty port")
	}
	baud := o.Baud
	if baud == 0 {
		baud = 115200
	}
	p, err := serial.Open(port, &serial.Mode{BaudRate: baud, DataBits: 8, Parity: serial.NoParity, StopBits: serial.OneStopBit})
	if err != nil {
		return nil, fmt.Errorf("wire/client: opening %s: %w", port, err)
	}
	return p, nil
}
