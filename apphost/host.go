package apphost

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/tetratelabs/wazero/sys"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/sbm"
	"github.com/sbm-project/sbm/vmcu"
)

// host is the state of one run: the hardware, the application, the open
// fetches, and the stop value if the device stopped inside a hal call.
// Every method runs on the goroutine that called Run (wazero calls host
// functions on it), like firmware.
type host struct {
	ctx     context.Context
	hw      *hal.Hardware
	app     *sbm.AppInfo
	svc     sbm.Services
	opts    *Options
	stop    any
	fetches [MaxFetches]*fetch
	buf     []byte // scratch for service results
	// tlsConfig is the mTLS configuration of https fetches to the
	// service (fetch.go), made at the first one.
	tlsConfig *tls.Config
}

func newHost(ctx context.Context, hw *hal.Hardware, app *sbm.AppInfo, o *Options) *host {
	return &host{ctx: ctx, hw: hw, app: app, svc: app.Services, opts: o}
}

// guard runs f, a piece of host code that makes hal calls. If the device
// stops inside one (a vmcu stop panic), guard records the stop and ends
// the module: it panics with a *sys.ExitError, which wazero turns into the
// module's exit; Run then re-raises the stop. Any other panic propagates.
func (h *host) guard(f func()) {
	defer func() {
		if v := recover(); v != nil {
			if vmcu.IsStopPanic(v) {
				if h.stop == nil {
					h.stop = v
				}
				panic(sys.NewExitError(exitStopped))
			}
			panic(v)
		}
	}()
	f()
}

// logf writes a line on the boot log when tracing.
func (h *host) logf(format string, a ...any) {
	if !h.opts.Trace || h.hw.Log == nil {
		return
	}
	h.guard(func() { fmt.Fprintf(h.hw.Log, "apphost: "+format+"\n", a...) })
}

// nanosleep sleeps on the device clock; a stop ends the module.
func (h *host) nanosleep(ns int64) {
	if ns <= 0 {
		return
	}
	h.guard(func() { h.hw.System.Sleep(time.Duration(ns)) })
}

// consoleWriter is the application's stdout and stderr: the UART.
type consoleWriter struct{ h *host }

func (w consoleWriter) Write(p []byte) (n int, err error) {
	w.h.guard(func() { n, err = w.h.hw.UART.Write(p) })
	return n, err
}

// consoleReader is the application's stdin: the UART. A read waits for at
// least one byte; it returns io.EOF once the run's context is done.
type consoleReader struct{ h *host }

// pollInterval is how often a waiting stdin read checks the context.
const pollInterval = 100 * time.Millisecond

func (r consoleReader) Read(p []byte) (n int, err error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if r.h.ctx.Err() != nil {
			return 0, io.EOF
		}
		r.h.guard(func() { n, err = r.h.hw.UART.Read(p, pollInterval) })
		if n > 0 || err == nil {
			return n, nil
		}
		if !errors.Is(err, hal.ErrTimeout) {
			return 0, err
		}
	}
}

// rngReader is the application's random source: the device RNG.
type rngReader struct{ h *host }

func (r rngReader) Read(p []byte) (n int, err error) {
	r.h.guard(func() { n, err = io.ReadFull(r.h.hw.RNG, p) })
	return n, err
}
