package main

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/sbm-project/sbm/apphost"
	"github.com/sbm-project/sbm/sim"
	"github.com/sbm-project/sbm/vmcu"
)

// deviceFirmware returns the boot firmware 'sbm device run' runs: the
// Secure Boot Manager, which runs the verified WebAssembly application with
// the SBM's runtime services (and reports an unprogrammed SBM region as
// such), or the vmcu's placeholder, which only exercises the hardware.
func deviceFirmware(name string, app *apphost.Options) (vmcu.Firmware, error) {
	switch name {
	case "sbm":
		return sim.FirmwareWithApps(nil, app), nil
	case "placeholder":
		return vmcu.Placeholder(), nil
	}
	return nil, usagef("--firmware: want sbm or placeholder, got %q", name)
}

func newDeviceRunCmd(cio *cliIO) *cobra.Command {
	var (
		uarts    []string
		baud     int
		recovery bool
		firmware string
		service  string
		caFile   string
		appArgs  []string
	)
	cmd := &cobra.Command{
		Use:   "run DIR",
		Short: "Power the device on and run it until interrupted",
		Long: `Power on the device in DIR and run its boot firmware until interrupted
(Ctrl-C, or SIGTERM: "kill %1" for a job started in the background with
&). Resets reboot the firmware; an armed power cut cuts power at its
operation and power is restored at once. The boot log is printed on stdout.

The UART can be attached to host endpoints: with pty:LINK a pseudo-terminal
(LINK becomes a symlink to it, and serial tools open it like a USB-serial
adapter), with tcp:127.0.0.1:PORT a TCP listener on the loopback interface
(PORT 0 picks a free port; the address is printed). --baud paces both
directions at 10 bits per byte.

While running, DIR/debug.sock is the debug port and DIR/control.sock the
control socket (reset button, recovery pin, fault injection).

The application may fetch over http from the local machine only. With
--service URL (https) it may also reach that one origin over https: the
runtime verifies the service's certificate against --service-ca and
authenticates as the device with mutual TLS, the device certificate from
the SBM and its key through the SBM (docs/spec/services.md, fetch_open).
--app-arg gives the application its arguments at every boot: the example
updater runs each as a command, so --app-arg "poll URL" makes it poll the
service (hawkBit DDI) whenever it starts.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if baud < 0 || baud > 100_000_000 {
				return usagef("--baud %d: want 0 (unpaced) to 100000000", baud)
			}
			var eps []uartEndpoint
			for _, u := range uarts {
				ep, err := parseUART(u)
				if err != nil {
					return err
				}
				eps = append(eps, ep)
			}
			app, err := serviceOptions(service, caFile)
			if err != nil {
				return err
			}
			if len(appArgs) > 0 {
				if app == nil {
					app = &apphost.Options{}
				}
				app.Args = appArgs
			}
			return runDevice(cmd.Context(), cio, args[0], eps, baud, recovery, firmware, app)
		},
	}
	cmd.Flags().StringArrayVar(&uarts, "uart", nil, "attach the UART to `ENDPOINT`: pty:LINK or tcp:127.0.0.1:PORT (repeatable)")
	cmd.Flags().IntVar(&baud, "baud", 0, "pace the UART at `N` bits per second (0: unpaced)")
	cmd.Flags().BoolVar(&recovery, "recovery", false, "hold the recovery pin at the first boot")
	cmd.Flags().StringVar(&service, "service", "", "let the application reach the service at `URL` (https) with mTLS as the device")
	cmd.Flags().StringArrayVar(&appArgs, "app-arg", nil, "pass `ARG` to the application at every boot (repeatable; the updater runs each as a command, e.g. \"poll URL\")")
	cmd.Flags().StringVar(&caFile, "service-ca", "", "PEM `FILE` of the CA certificates that verify the service (required with --service)")
	cmd.Flags().StringVar(&firmware, "firmware", "sbm", "boot firmware `NAME`: sbm, or placeholder (exercises the hardware only)")
	registerCompletion(cmd, "firmware", fixedValues("sbm\tthe Secure Boot Manager", "placeholder\texercises the hardware only"))
	return cmd
}

type uartEndpoint struct {
	kind, arg string
}

func parseUART(s string) (uartEndpoint, error) {
	kind, arg, ok := strings.Cut(s, ":")
	switch {
	case ok && kind == "pty" && arg != "":
		return uartEndpoint{kind, arg}, nil
	case ok && kind == "tcp":
		host, port, err := net.SplitHostPort(arg)
		if err != nil {
			return uartEndpoint{}, usagef("--uart %q: %v", s, err)
		}
		if host != "127.0.0.1" && host != "localhost" && host != "::1" {
			return uartEndpoint{}, usagef("--uart %q: only loopback addresses (127.0.0.1, ::1) are allowed", s)
		}
		if _, err := parseUint32("port", port); err != nil || len(port) > 5 {
			return uartEndpoint{}, usagef("--uart %q: bad port", s)
		}
		return uartEndpoint{kind, arg}, nil
	}
	return uartEndpoint{}, usagef("--uart %q: want pty:LINK or tcp:127.0.0.1:PORT", s)
}

// lockedWriter serialises writes from the firmware and the runner.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// serviceOptions returns the runtime options for --service and
// --service-ca (nil without --service).
func serviceOptions(service, caFile string) (*apphost.Options, error) {
	if service == "" {
		if caFile != "" {
			return nil, usagef("--service-ca needs --service")
		}
		return nil, nil
	}
	u, err := url.Parse(service)
	if err != nil || u.Scheme != "https" || u.Hostname() == "" || u.User != nil {
		return nil, usagef("--service %q: want an https URL with a host", service)
	}
	if caFile == "" {
		return nil, usagef("--service needs --service-ca FILE (the CA certificates that verify the service)")
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("--service-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, usagef("--service-ca %s: no PEM certificate in it", caFile)
	}
	return &apphost.Options{ServiceURL: service, ServiceRoots: pool}, nil
}

func runDevice(ctx context.Context, cio *cliIO, dir string, eps []uartEndpoint, baud int, recovery bool, firmware string, app *apphost.Options) error {
	// SIGTERM (kill PID, or kill %1 for a job backgrounded in a shell)
	// powers the device off like Ctrl-C.
	ctx, stopSignals := signal.NotifyContext(ctx, syscall.SIGTERM)
	defer stopSignals()
	fw, err := deviceFirmware(firmware, app)
	if err != nil {
		return err
	}
	d, err := vmcu.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	out := &lockedWriter{w: cio.stdout}
	d.SetConsole(out)
	d.UART().SetBaud(baud)
	for _, ep := range eps {
		switch ep.kind {
		case "pty":
			name, err := d.UART().OpenPTY(ep.arg)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "uart: pty %s (link %s)\n", name, ep.arg)
		case "tcp":
			addr, err := d.UART().ListenTCP(ep.arg)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "uart: tcp %s\n", addr)
		}
	}
	if baud > 0 {
		fmt.Fprintf(out, "uart: paced at %d baud\n", baud)
	}
	stop, err := d.Serve()
	if err != nil {
		return err
	}
	defer stop()
	fmt.Fprintf(out, "debug port: %s\n", filepath.Join(dir, vmcu.DebugSocket))
	fmt.Fprintf(out, "control: %s\n", filepath.Join(dir, vmcu.ControlSocket))
	if c, ok := d.ArmedPowerCut(); ok {
		fmt.Fprintf(out, "power cut armed: %v\n", c)
	}
	if app != nil {
		fmt.Fprintf(out, "service: %s (mTLS as the device)\n", app.ServiceURL)
	}
	fmt.Fprintf(out, "vmcu: power on (board %s)\n", d.Board().Name)
	if err := d.Run(ctx, fw, recovery); err != nil {
		return err
	}
	fmt.Fprintf(out, "vmcu: power off\n")
	return nil
}

func newDeviceWaitCmd(cio *cliIO) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "wait DIR",
		Short: "Wait until the device is running (for scripts)",
		Long: `Wait until the device in DIR is running, that is until its control socket
answers, for at most --timeout.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if timeout <= 0 {
				return usagef("--timeout %v: want a positive duration", timeout)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			deadline, _ := ctx.Deadline()
			for {
				c, err := vmcu.DialControl(ctx, args[0])
				if err == nil {
					_, err = c.Status(ctx)
					c.Close()
					if err == nil {
						return nil
					}
				}
				// A dial or status call that ran into the deadline fails
				// with a timeout before ctx reports it: past the deadline
				// every failure means the device did not start in time.
				if !isNotRunning(err) && time.Now().Before(deadline) {
					return err
				}
				select {
				case <-ctx.Done():
					return fmt.Errorf("%s: device did not start within %v", args[0], timeout)
				case <-time.After(20 * time.Millisecond):
				}
			}
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "give up after `DURATION`")
	return cmd
}

func newDeviceResetCmd(cio *cliIO) *cobra.Command {
	var recovery bool
	cmd := &cobra.Command{
		Use:   "reset DIR",
		Short: "Press the reset button of a running device",
		Long: `Reset the device running in DIR: its boot firmware starts again from the
beginning. With --recovery the recovery pin is held during the reset, which
the boot firmware reads to enter recovery mode.

The reset goes through the control socket, not the debug port, so it works
after the debug port is locked, like the button on a real board.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := vmcu.DialControl(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			defer c.Close()
			if err := c.Reset(cmd.Context(), recovery); err != nil {
				return fmt.Errorf("reset: %w", err)
			}
			msg := "reset"
			if recovery {
				msg += " with the recovery pin held"
			}
			fmt.Fprintln(cio.stdout, msg)
			return nil
		},
	}
	cmd.Flags().BoolVar(&recovery, "recovery", false, "hold the recovery pin during the reset")
	return cmd
}
