// Package demo is `sbm demo`: the whole chain of trust on a virtual
// microcontroller, narrated, in a temporary directory — security context,
// the OEM service, a new device provisioned at the contract manufacturer
// through the service (counted, logged, audited) and locked, a signed and
// encrypted application programmed over the UART with the UPK the service
// issued, verified boot and attestation, an update rolled out by the
// service and fetched by the application over mutual TLS with its
// SBM-held key, a signed install report, and attacks refused. It succeeds only if
// every step behaves as expected.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Options configures Run.
type Options struct {
	// Out receives the narration.
	Out io.Writer
	// Keep, if set, is the directory the demo works in and leaves behind;
	// otherwise a temporary directory is removed at the end.
	Keep string
	// Source is the project's source tree (default: found from the
	// working directory); the demo builds the example applications there.
	Source string
	// Board is the virtual device's board; default "default".
	Board string
}

// ErrStep is returned when a step does not behave as expected.
var ErrStep = errors.New("demo step failed")

// narrator prints the story.
type narrator struct {
	w    io.Writer
	step int
	t0   time.Time
}

func (n *narrator) section(title string) {
	n.step++
	fmt.Fprintf(n.w, "\n%2d. %s\n", n.step, title)
}

func (n *narrator) say(format string, a ...any) {
	for _, line := range strings.Split(fmt.Sprintf(format, a...), "\n") {
		fmt.Fprintln(n.w, strings.TrimRight("    "+line, " "))
	}
}

func (n *narrator) ok(format string, a ...any) {
	fmt.Fprintf(n.w, "    ✔ %s\n", fmt.Sprintf(format, a...))
}

// refused reports an attack refused as expected: a success of the demo.
func (n *narrator) refused(format string, a ...any) {
	fmt.Fprintf(n.w, "    ✔ refused, as it must be: %s\n", fmt.Sprintf(format, a...))
}

// Run runs the demo.
func Run(ctx context.Context, opts *Options) (err error) {
	if opts == nil {
		opts = &Options{}
	}
	out := opts.Out
	if out == nil {
		out = io.Discard
	}
	src, err := findSource(opts.Source)
	if err != nil {
		return err
	}
	dir := opts.Keep
	if dir == "" {
		if dir, err = os.MkdirTemp("", "sbm-demo-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	} else {
		if ents, _ := os.ReadDir(dir); len(ents) > 0 {
			return fmt.Errorf("--keep %s: directory is not empty", dir)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	board := opts.Board
	if board == "" {
		board = "default"
	}
	n := &narrator{w: out, t0: time.Now()}
	fmt.Fprintf(out, "sbm demo: a chain of trust for a virtual microcontroller, in %s\n", dir)
	s := &story{n: n, dir: dir, src: src, board: board}
	defer s.close()
	if err := s.run(ctx); err != nil {
		fmt.Fprintf(out, "\nDEMO FAILED at step %d: %v\n", n.step, err)
		return err
	}
	fmt.Fprintf(out, "\nEvery step behaved as expected (%.1f s). ", time.Since(n.t0).Seconds())
	if opts.Keep != "" {
		fmt.Fprintf(out, "The files are in %s.\n", dir)
	} else {
		fmt.Fprintln(out, "Use --keep DIR to keep the files.")
	}
	return nil
}

func (s *story) path(name string) string { return filepath.Join(s.dir, name) }
