package client

import (
	"context"
	"errors"
	"io"
	"sync"

	"github.com/sbm-project/sbm/wire"
)

// conn is one connection to the device: a reader goroutine that decodes
// frames and a writer goroutine that transmits them, so that the caller
// can wait for responses and timers while a paced link drains.
type conn struct {
	rwc    io.ReadWriteCloser
	frames chan wire.Frame // decoded frames; bodies are copies
	writeq chan []byte     // encoded frames to transmit
	done   chan struct{}   // closed when the connection fails or is closed
	once   sync.Once
	err    error // why done was closed; written before close(done)
}

// errConnClosed is the error of a connection closed by the client.
var errConnClosed = errors.New("connection closed")

func newConn(rwc io.ReadWriteCloser) *conn {
	c := &conn{
		rwc:    rwc,
		frames: make(chan wire.Frame, 256),
		writeq: make(chan []byte, 256),
		done:   make(chan struct{}),
	}
	go c.readLoop()
	go c.writeLoop()
	// Start with a delimiter so that the device drops any partial frame
	// left on the line by an earlier connection.
	c.writeq <- []byte{0}
	return c
}

func (c *conn) fail(err error) {
	c.once.Do(func() {
		c.err = err
		close(c.done)
		c.rwc.Close()
	})
}

func (c *conn) close() { c.fail(errConnClosed) }

func (c *conn) readLoop() {
	var r wire.FrameReader
	buf := make([]byte, 4096)
	for {
		n, err := c.rwc.Read(buf)
		p := buf[:n]
		for len(p) > 0 {
			k, f, ok := r.Push(p)
			p = p[k:]
			if !ok {
				continue
			}
			f.Body = append([]byte(nil), f.Body...)
			select {
			case c.frames <- f:
			case <-c.done:
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			c.fail(err)
			return
		}
	}
}

func (c *conn) writeLoop() {
	for {
		select {
		case b := <-c.writeq:
			if _, err := c.rwc.Write(b); err != nil {
				c.fail(err)
				return
			}
		case <-c.done:
			return
		}
	}
}

// send queues an encoded frame for transmission.
func (c *conn) send(ctx context.Context, frame []byte) error {
	select {
	case c.writeq <- frame:
		return nil
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
}
