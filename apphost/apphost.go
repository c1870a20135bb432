package apphost

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/sbm"
)

// Defaults of Options.
const (
	// DefaultMemoryLimitPages is the default limit of the module's linear
	// memory: 2048 pages of 64 KiB (128 MiB).
	DefaultMemoryLimitPages = 2048
	// DefaultMaxFetchSize bounds the body of one fetch (64 MiB).
	DefaultMaxFetchSize = 64 << 20
	// DefaultFetchTimeout bounds one fetch from open to close.
	DefaultFetchTimeout = 5 * time.Minute
	// MaxFetches is the number of fetch handles open at once.
	MaxFetches = 4
)

// DefaultAllowedHosts are the hosts the application may fetch from when
// Options.AllowedHosts is empty: the local machine only.
var DefaultAllowedHosts = []string{"127.0.0.1", "localhost", "::1"}

// Options configure Run. The zero value (or nil) is usable.
type Options struct {
	// Cache is the compilation cache shared by runs in this process; nil
	// uses a fresh one for this run (a full compilation).
	Cache *Cache
	// Args are the application's arguments after argv[0] ("app").
	Args []string
	// Env holds the application's environment as "KEY=value" entries;
	// empty by default.
	Env []string
	// AllowedHosts lists the host names (as in the URL) the application
	// may fetch from over http; default DefaultAllowedHosts.
	AllowedHosts []string
	// HTTPClient performs http fetches; default a client without proxy
	// that does not follow redirects. (https fetches to ServiceURL use
	// their own connection, below.)
	HTTPClient *http.Client
	// ServiceURL is the configured service (the OEM's fleet service), an
	// https URL with a host and optional port ("https://fleet.example:8443";
	// a path is ignored). fetch_open accepts https URLs of exactly this
	// origin, and no other https URL: the runtime dials it, verifies its
	// server certificate against ServiceRoots, and authenticates as the
	// device with mTLS (TLS 1.3 only): the device certificate chain from
	// the SBM and the identity key through the SBM's tls_sign
	// (ClientCertificate). Empty: no https at all.
	ServiceURL string
	// ServiceRoots verify the service's server certificate (for example a
	// pool holding the context's device CA); required with ServiceURL.
	ServiceRoots *x509.CertPool
	// MaxFetchSize bounds the body of one fetch; default
	// DefaultMaxFetchSize.
	MaxFetchSize int64
	// FetchTimeout bounds one fetch from open to close; default
	// DefaultFetchTimeout.
	FetchTimeout time.Duration
	// MemoryLimitPages bounds the module's memory in 64 KiB pages; default
	// DefaultMemoryLimitPages.
	MemoryLimitPages uint32
	// Trace logs every service call briefly on the boot log (hw.Log).
	Trace bool
}

// ExitError is returned by Run when the application exits with a non-zero
// status (os.Exit(n), or 2 after a Go panic).
type ExitError struct {
	// Status is the exit status.
	Status uint32
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("apphost: application exited with status %d", e.Status)
}

// ErrNotRunnable is returned (wrapped) by Run when the verified image is
// not a WebAssembly module this runtime can compile: nothing of it ran.
var ErrNotRunnable = errors.New("the application is not a WebAssembly module this device can run")

// notRunnableError is ErrNotRunnable with its reason.
type notRunnableError struct{ reason string }

func (e *notRunnableError) Error() string {
	return "apphost: " + ErrNotRunnable.Error() + ": " + e.reason
}
func (e *notRunnableError) Unwrap() error { return ErrNotRunnable }

// notRunnableReason says why code does not compile, naming the format when
// it is a known one.
func notRunnableReason(code []byte, err error) string {
	switch {
	case len(code) >= 4 && string(code[:4]) == "\x7fELF":
		return "an ELF image, not WebAssembly"
	case len(code) < 4 || string(code[:4]) != "\x00asm":
		return "not WebAssembly (no magic number)"
	}
	return "does not compile: " + err.Error()
}

// exitStopped is the exit code with which a host function ends the module
// when the device stops (reset, power loss) during one of its hal calls.
const exitStopped = 0xdead

// Run runs the verified application app on hw until it exits or ctx is
// done (the device resets, loses power or shuts down). It returns nil when
// the application exits with status 0, an *ExitError for another status,
// ctx's error (wrapped) when it was stopped, and an error wrapping
// ErrMeasurement when the flash no longer holds the verified bytes, and
// one wrapping ErrNotRunnable when the image does not compile (then it
// also reports it through app.NotRunnable, so the SBM records it).
//
// The module is compiled from the flash bytes in place when hw.AppFlash
// (or hw.Flash) implements hal.Mapper, else from one copy read through
// hal.Flash. app.Services provides the runtime services; when it is nil
// the application still runs and each service answers CodeUnavailable.
//
// If the device stops while a host function is inside a hal call, that
// call's stop panic (vmcu.IsStopPanic) ends the module and Run re-raises
// it, as any hal call would, so the simulator sees how the device stopped.
func Run(ctx context.Context, hw *hal.Hardware, app *sbm.AppInfo, opts *Options) error {
	var o Options
	if opts != nil {
		o = *opts
	}
	o.defaults()
	if hw == nil || app == nil {
		return errors.New("apphost: no hardware or no application")
	}
	f := hw.AppFlash
	if f == nil {
		f = hw.Flash
	}
	code, mapped, err := appBytes(f, app)
	if err != nil {
		return fmt.Errorf("apphost: %w", err)
	}
	if err := checkMeasurement(code, app); err != nil {
		return fmt.Errorf("apphost: before compiling: %w", err)
	}

	h := newHost(ctx, hw, app, &o)
	if mapped {
		h.logf("running %s (%d bytes) from the flash in place", app.Version, app.Size)
	} else {
		h.logf("running %s (%d bytes) from a copy of the flash", app.Version, app.Size)
	}
	defer h.closeFetches()
	err = h.run(ctx, code)
	if h.stop != nil {
		panic(h.stop)
	}
	if nr := (*notRunnableError)(nil); errors.As(err, &nr) && app.NotRunnable != nil {
		app.NotRunnable(nr.reason)
	}
	return err
}

func (o *Options) defaults() {
	if o.Cache == nil {
		o.Cache = NewCache()
	}
	if len(o.AllowedHosts) == 0 {
		o.AllowedHosts = DefaultAllowedHosts
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{
			Transport: &http.Transport{Proxy: nil, MaxIdleConns: 4, IdleConnTimeout: 30 * time.Second},
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	if o.MaxFetchSize <= 0 {
		o.MaxFetchSize = DefaultMaxFetchSize
	}
	if o.FetchTimeout <= 0 {
		o.FetchTimeout = DefaultFetchTimeout
	}
	if o.MemoryLimitPages == 0 {
		o.MemoryLimitPages = DefaultMemoryLimitPages
	}
}

// run compiles and runs code.
func (h *host) run(ctx context.Context, code []byte) error {
	rc := wazero.NewRuntimeConfig().
		WithCloseOnContextDone(true).
		WithMemoryLimitPages(h.opts.MemoryLimitPages).
		WithCompilationCache(h.opts.Cache.cc)
	r := wazero.NewRuntimeWithConfig(ctx, rc)
	defer r.Close(context.Background())

	if _, err := wasi_snapshot_preview1.Instantiate(ctx, r); err != nil {
		return fmt.Errorf("apphost: wasi: %w", err)
	}
	if _, err := h.hostModule(r).Instantiate(ctx); err != nil {
		return fmt.Errorf("apphost: services module: %w", err)
	}
	cm, err := r.CompileModule(ctx, code)
	if err != nil {
		return &notRunnableError{notRunnableReason(code, err)}
	}
	// The bytes compiled must be the verified ones: check again after
	// compiling, so that a change during compilation is caught too.
	if err := checkMeasurement(code, h.app); err != nil {
		return fmt.Errorf("apphost: after compiling: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("apphost: %w", err)
	}

	cfg := wazero.NewModuleConfig().
		WithName("app").
		WithArgs(append([]string{"app"}, h.opts.Args...)...).
		WithStdin(consoleReader{h}).
		WithStdout(consoleWriter{h}).
		WithStderr(consoleWriter{h}).
		WithSysWalltime().
		WithSysNanotime().
		WithNanosleep(h.nanosleep).
		WithRandSource(rngReader{h})
	for _, kv := range h.opts.Env {
		k, v, _ := strings.Cut(kv, "=")
		cfg = cfg.WithEnv(k, v)
	}
	mod, err := r.InstantiateModule(ctx, cm, cfg)
	if mod != nil {
		mod.Close(context.Background())
	}
	return h.exitError(ctx, err)
}

// exitError turns the module's end into Run's result.
func (h *host) exitError(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	var se *sys.ExitError
	if errors.As(err, &se) {
		switch {
		case h.stop != nil || se.ExitCode() == exitStopped:
			return fmt.Errorf("apphost: device stopped: %w", context.Canceled)
		case se.ExitCode() == sys.ExitCodeContextCanceled, se.ExitCode() == sys.ExitCodeDeadlineExceeded:
			if cerr := ctx.Err(); cerr != nil {
				return fmt.Errorf("apphost: application stopped: %w", cerr)
			}
			return fmt.Errorf("apphost: application stopped: %w", context.Canceled)
		}
		return &ExitError{Status: se.ExitCode()}
	}
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("apphost: application stopped: %w (%v)", cerr, err)
	}
	return fmt.Errorf("apphost: application failed: %w", err)
}
