package vmcu

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
)

// sockPath returns a path for the socket name in dir that fits the limit
// of unix socket addresses (108 bytes): the path itself if it is short
// enough, else one through /proc/self/fd of an open handle on dir. The
// returned cleanup closes that handle.
func sockPath(dir, name string) (string, func(), error) {
	p := filepath.Join(dir, name)
	if len(p) < 100 {
		return p, func() {}, nil
	}
	f, err := os.Open(dir)
	if err != nil {
		return "", nil, err
	}
	return fmt.Sprintf("/proc/self/fd/%d/%s", f.Fd(), name), func() { f.Close() }, nil
}

func listenSocket(dir, name string) (net.Listener, error) {
	os.Remove(filepath.Join(dir, name)) // stale: the caller holds the device lock
	p, done, err := sockPath(dir, name)
	if err != nil {
		return nil, err
	}
	defer done()
	l, err := net.Listen("unix", p)
	if err != nil {
		return nil, err
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	return l, nil
}

// dialSocket connects to the socket name of the device in dir. It returns
// an error wrapping ErrNotRunning if nothing listens there.
func dialSocket(ctx context.Context, dir, name string) (net.Conn, error) {
	if _, err := os.Stat(filepath.Join(dir, fileBoard)); err != nil {
		return nil, fmt.Errorf("%s: %w", dir, ErrNotDevice)
	}
	p, done, err := sockPath(dir, name)
	if err != nil {
		return nil, err
	}
	defer done()
	var dl net.Dialer
	c, err := dl.DialContext(ctx, "unix", p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
			return nil, fmt.Errorf("%s: %w", dir, ErrNotRunning)
		}
		return nil, fmt.Errorf("connecting to %s: %w", name, err)
	}
	return c, nil
}

// Serve serves the debug port and the control socket of the device in its
// directory (dir/debug.sock and dir/control.sock) until the returned
// closer is called, which also removes the socket files.
func (d *Device) Serve() (closeFunc func(), err error) {
	if d.dir == "" {
		return nil, errors.New("serve: memory devices have no directory")
	}
	dl, err := listenSocket(d.dir, DebugSocket)
	if err != nil {
		return nil, fmt.Errorf("debug port: %w", err)
	}
	cl, err := listenSocket(d.dir, ControlSocket)
	if err != nil {
		dl.Close()
		os.Remove(filepath.Join(d.dir, DebugSocket))
		return nil, fmt.Errorf("control socket: %w", err)
	}
	go d.serveDebug(dl)
	go d.serveControl(cl)
	return func() {
		dl.Close()
		cl.Close()
		os.Remove(filepath.Join(d.dir, DebugSocket))
		os.Remove(filepath.Join(d.dir, ControlSocket))
	}, nil
}
