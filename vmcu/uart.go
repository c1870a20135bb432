package vmcu

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/creack/pty"
	"golang.org/x/term"

	"github.com/sbm-project/sbm/hal"
)

// UART is the device's serial port. The firmware side is the hal.UART in
// hal.Hardware; host endpoints (a pseudo-terminal, TCP connections, an
// in-memory pipe) attach to the other side. Bytes received from any
// endpoint reach the firmware; bytes the firmware transmits go to every
// endpoint attached at that time (bytes sent while none is attached are
// lost, as on a real line). With a baud rate set, both directions are paced
// at 10 bits per byte.
type UART struct {
	mu        sync.Mutex
	rx        []byte
	rxAvail   chan struct{} // closed and replaced when rx grows
	rxSpace   chan struct{} // closed and replaced when rx shrinks
	endpoints map[*endpoint]bool
	closers   []io.Closer
	links     []string
	done      chan struct{}
	closed    bool

	txPace, rxPace pacer
}

const (
	uartRxBuffer = 4096 // receive FIFO; endpoints are back-pressured when full
	uartTxQueue  = 256  // chunks queued per endpoint before bytes are dropped
)

var errStopped = errors.New("stopped")

func newUART() *UART {
	return &UART{
		rxAvail:   make(chan struct{}),
		rxSpace:   make(chan struct{}),
		endpoints: make(map[*endpoint]bool),
		done:      make(chan struct{}),
	}
}

// SetBaud sets the line rate in bits per second; 0 turns pacing off.
func (u *UART) SetBaud(baud int) {
	u.txPace.setBaud(baud)
	u.rxPace.setBaud(baud)
}

// read is the firmware's receive: see hal.UART.
func (u *UART) read(p []byte, timeout time.Duration, stop <-chan struct{}) (int, error) {
	var timer <-chan time.Time
	for {
		u.mu.Lock()
		if len(u.rx) > 0 && len(p) > 0 {
			n := copy(p, u.rx)
			u.rx = append(u.rx[:0], u.rx[n:]...)
			close(u.rxSpace)
			u.rxSpace = make(chan struct{})
			u.mu.Unlock()
			return n, nil
		}
		avail := u.rxAvail
		u.mu.Unlock()
		if timeout <= 0 {
			return 0, hal.ErrTimeout
		}
		if timer == nil {
			t := time.NewTimer(timeout)
			defer t.Stop()
			timer = t.C
		}
		select {
		case <-avail:
		case <-timer:
			return 0, hal.ErrTimeout
		case <-stop:
			return 0, errStopped
		}
	}
}

// write is the firmware's transmit: see hal.UART.
func (u *UART) write(p []byte, stop <-chan struct{}) (int, error) {
	done := 0
	for done < len(p) {
		chunk := p[done:min(len(p), done+u.txPace.chunk())]
		if t := u.txPace.reserve(len(chunk), time.Now()); !t.IsZero() {
			if !sleepUntil(t, stop) {
				return done, errStopped
			}
		}
		u.deliver(chunk)
		done += len(chunk)
	}
	return done, nil
}

func (u *UART) deliver(p []byte) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for ep := range u.endpoints {
		select {
		case ep.tx <- append([]byte(nil), p...):
		default: // the endpoint is not keeping up: bytes are lost
		}
	}
}

// push appends received bytes, waiting for room in the receive FIFO.
func (u *UART) push(p []byte, stop <-chan struct{}) bool {
	for len(p) > 0 {
		u.mu.Lock()
		room := uartRxBuffer - len(u.rx)
		if room > 0 {
			n := min(room, len(p))
			u.rx = append(u.rx, p[:n]...)
			p = p[n:]
			close(u.rxAvail)
			u.rxAvail = make(chan struct{})
			u.mu.Unlock()
			continue
		}
		space := u.rxSpace
		u.mu.Unlock()
		select {
		case <-space:
		case <-stop:
			return false
		case <-u.done:
			return false
		}
	}
	return true
}

// endpoint is one host-side connection.
type endpoint struct {
	rw   io.ReadWriteCloser
	tx   chan []byte
	stop chan struct{}
	once sync.Once
}

// Attach connects a host endpoint to the UART until it fails or Close is
// called; rw is closed then. It returns a function that detaches and
// closes it.
func (u *UART) Attach(rw io.ReadWriteCloser) (detach func()) {
	ep := &endpoint{rw: rw, tx: make(chan []byte, uartTxQueue), stop: make(chan struct{})}
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		rw.Close()
		return func() {}
	}
	u.endpoints[ep] = true
	u.mu.Unlock()
	detach = func() {
		ep.once.Do(func() {
			u.mu.Lock()
			delete(u.endpoints, ep)
			u.mu.Unlock()
			close(ep.stop)
			rw.Close()
		})
	}
	go func() { // transmit
		for {
			select {
			case b := <-ep.tx:
				if _, err := rw.Write(b); err != nil {
					detach()
					return
				}
			case <-ep.stop:
				return
			}
		}
	}()
	go func() { // receive
		buf := make([]byte, 4096)
		for {
			n, err := rw.Read(buf[:u.rxPace.chunk()])
			if n > 0 {
				if t := u.rxPace.reserve(n, time.Now()); !t.IsZero() && !sleepUntil(t, ep.stop) {
					return
				}
				if !u.push(buf[:n], ep.stop) {
					return
				}
			}
			if err != nil {
				detach()
				return
			}
		}
	}()
	return detach
}

// Pipe attaches an in-memory endpoint and returns the host end of it, for
// tests and in-process harnesses.
func (u *UART) Pipe() net.Conn {
	host, dev := net.Pipe()
	u.Attach(dev)
	return host
}

// ListenTCP listens on addr (e.g. "127.0.0.1:0") and attaches every
// accepted connection. It returns the address listened on.
func (u *UART) ListenTCP(addr string) (net.Addr, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("uart: %w", err)
	}
	if !u.addCloser(l) {
		l.Close()
		return nil, errors.New("uart: closed")
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			u.Attach(c)
		}
	}()
	return l.Addr(), nil
}

// OpenPTY creates a pseudo-terminal attached to the UART, in raw mode, and
// returns the path of its terminal side (e.g. /dev/pts/3), which serial
// tools open like a USB-serial adapter. If link is not empty, a symlink
// link pointing to it is created (an existing symlink is replaced) and
// removed by Close.
func (u *UART) OpenPTY(link string) (string, error) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		return "", fmt.Errorf("uart: opening pseudo-terminal: %w", err)
	}
	if _, err := term.MakeRaw(int(tty.Fd())); err != nil {
		ptmx.Close()
		tty.Close()
		return "", fmt.Errorf("uart: raw mode: %w", err)
	}
	name := tty.Name()
	if link != "" {
		if fi, err := os.Lstat(link); err == nil && fi.Mode()&os.ModeSymlink != 0 {
			os.Remove(link)
		}
		if err := os.Symlink(name, link); err != nil {
			ptmx.Close()
			tty.Close()
			return "", fmt.Errorf("uart: %w", err)
		}
	}
	// Keep the terminal side open so the master does not see a hang-up
	// between clients.
	if !u.addCloser(tty) {
		ptmx.Close()
		tty.Close()
		return "", errors.New("uart: closed")
	}
	u.mu.Lock()
	if link != "" {
		u.links = append(u.links, link)
	}
	u.mu.Unlock()
	u.Attach(ptmx)
	return name, nil
}

func (u *UART) addCloser(c io.Closer) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return false
	}
	u.closers = append(u.closers, c)
	return true
}

// Close detaches every endpoint, stops listening and removes pty links.
func (u *UART) Close() error {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return nil
	}
	u.closed = true
	close(u.done)
	eps := make([]*endpoint, 0, len(u.endpoints))
	for ep := range u.endpoints {
		eps = append(eps, ep)
	}
	closers, links := u.closers, u.links
	u.mu.Unlock()
	for _, ep := range eps {
		ep.once.Do(func() {
			u.mu.Lock()
			delete(u.endpoints, ep)
			u.mu.Unlock()
			close(ep.stop)
			ep.rw.Close()
		})
	}
	for _, c := range closers {
		c.Close()
	}
	for _, l := range links {
		os.Remove(l)
	}
	return nil
}
