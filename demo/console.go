package demo

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"time"
)

// console is the device's UART seen as the application's console: lines
// from the device, commands to it.
type console struct {
	conn  net.Conn
	lines chan string
	n     *narrator
}

func openConsole(addr string, n *narrator) (*console, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &console{conn: conn, lines: make(chan string, 256), n: n}
	go func() {
		sc := bufio.NewScanner(conn)
		sc.Buffer(make([]byte, 64<<10), 64<<10)
		for sc.Scan() {
			c.lines <- strings.TrimRight(sc.Text(), "\r")
		}
		close(c.lines)
	}()
	return c, nil
}

// Close closes the connection.
func (c *console) Close() error { return c.conn.Close() }

// send writes a command line.
func (c *console) send(cmd string) error {
	c.n.say("> %s", shorten(cmd, 100))
	_, err := fmt.Fprintf(c.conn, "%s\n", cmd)
	return err
}

// until shows the device's lines until one satisfies stop, and returns it.
func (c *console) until(ctx context.Context, timeout time.Duration, stop func(string) bool) (string, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				return "", fmt.Errorf("%w: the UART connection closed", ErrStep)
			}
			c.n.say("| %s", shorten(l, 160))
			if stop(l) {
				return l, nil
			}
		case <-t.C:
			return "", fmt.Errorf("%w: no answer from the device within %v", ErrStep, timeout)
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

// command sends cmd and returns the lines up to its "ok" (or fails on
// "error: ...").
func (c *console) command(ctx context.Context, cmd string, timeout time.Duration) ([]string, error) {
	if err := c.send(cmd); err != nil {
		return nil, err
	}
	var got []string
	last, err := c.until(ctx, timeout, func(l string) bool {
		got = append(got, l)
		return l == "ok" || strings.HasPrefix(l, "error:")
	})
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(last, "error:") {
		return got, fmt.Errorf("the application said %q", last)
	}
	return got, nil
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
