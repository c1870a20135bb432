package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/sbm-project/sbm/server"
	"github.com/sbm-project/sbm/server/store"
	"github.com/sbm-project/sbm/server/store/postgres"
	"github.com/sbm-project/sbm/server/store/sqlite"
	"github.com/sbm-project/sbm/trust"
)

func init() { commandGroups = append(commandGroups, newServerCmd) }

func newServerCmd(cio *cliIO) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the OEM service (production orders over mutual TLS; docs/production.md)",
	}
	cmd.AddCommand(newServerRunCmd(cio), newServerWaitCmd(cio), newServerDashboardCmd(cio))
	return cmd
}

func newServerRunCmd(cio *cliIO) *cobra.Command {
	var ctxDir, dataDir, dbURL, listen, healthListen, dashListen, passFile, logLevel string
	var hosts []string
	var reservationTimeout time.Duration
	cmd := &cobra.Command{
		Use:   "run --context DIR (--data DIR | --db URL) --listen HOST:PORT",
		Short: "Run the OEM service until interrupted",
		Long: `Run the OEM service: an HTTPS API on --listen that requires a client
certificate issued by the context's device CA (the OEM operator's, kept in
the context, for the management commands "sbm production load|status|revoke";
a station's for the station API). The server's own certificate is issued by
the device CA at each start, for the --listen host, localhost, 127.0.0.1, ::1
and every --host.

State: an SQLite database in --data DIR (created if needed), or the
PostgreSQL database at --db postgres://… (several instances may share it).
Schema migrations are applied at start.

--health-listen HOST:PORT also serves /healthz and the Prometheus metrics
(/metrics) over plain HTTP, for the host's monitoring; on the TLS listener
/healthz answers any client certificate of the CA and /metrics the operator.
Logs are JSON lines on standard error. SIGINT or SIGTERM stops the server
gracefully.

--dashboard-listen HOST:PORT serves the operator dashboard (docs/dashboard.md)
over HTTPS with the same server certificate and no client certificate; a
browser gets in with a single-use link from "sbm server dashboard".

A unit reserved for a device that is not certified within
--reservation-timeout (a station that crashed and never came back) is
spoiled: counted, logged, never given to another device.

For the crash tests, SBM_SERVER_KILL_AT=STEP[:N] makes the server kill
itself (SIGKILL) at the Nth certification reaching STEP (reserved, signed,
committed, responding).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlags(cmd, "context", "listen"); err != nil {
				return err
			}
			if dataDir == "" && dbURL == "" {
				return usagef("give --data DIR (SQLite) or --db URL (PostgreSQL)")
			}
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return usagef("--log-level: want debug, info, warn or error")
			}
			log := slog.New(slog.NewJSONHandler(cio.stderr, &slog.HandlerOptions{Level: level}))
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()

			c, err := openContext(ctxDir, passFile)
			if err != nil {
				return err
			}
			defer c.Close()
			var st store.Store
			if dbURL != "" {
				st, err = postgres.Open(ctx, dbURL)
			} else {
				st, err = sqlite.Open(ctx, dataDir)
			}
			if err != nil {
				return err
			}
			defer st.Close()
			hook, err := killHook(os.Getenv("SBM_SERVER_KILL_AT"))
			if err != nil {
				return err
			}
			dashURL := ""
			if dashListen != "" {
				dashURL = "https://" + dashListen
			}
			srv, err := server.New(server.Config{Context: c, Store: st, Logger: log, Hook: hook, DashboardURL: dashURL})
			if err != nil {
				return err
			}
			host, _, err := net.SplitHostPort(listen)
			if err != nil {
				return usagef("--listen: want HOST:PORT: %v", err)
			}
			tc, err := srv.TLSConfig(append([]string{host, "localhost", "127.0.0.1", "::1"}, hosts...))
			if err != nil {
				return err
			}
			var lc net.ListenConfig
			ln, err := lc.Listen(ctx, "tcp", listen)
			if err != nil {
				return err
			}
			errc := make(chan error, 3)
			waiting := 1
			if dashListen != "" {
				dl, err := lc.Listen(ctx, "tcp", dashListen)
				if err != nil {
					ln.Close()
					return err
				}
				log.Info("dashboard listener", "addr", "https://"+dl.Addr().String())
				waiting++
				go func() { errc <- srv.ServeDashboard(ctx, dl, tc) }()
			}
			if healthListen != "" {
				hl, err := lc.Listen(ctx, "tcp", healthListen)
				if err != nil {
					ln.Close()
					return err
				}
				log.Info("health listener", "addr", hl.Addr().String())
				waiting++
				go func() { errc <- srv.ServeHealth(ctx, hl) }()
			}
			engine := "sqlite"
			if dbURL != "" {
				engine = "postgres"
			}
			log.Info("serving", "addr", "https://"+ln.Addr().String(), "store", engine, "vendor_id", c.VendorID().String(), "class_id", c.ClassID().String())
			go func() { errc <- srv.Serve(ctx, ln, tc) }()
			if reservationTimeout > 0 {
				go sweepStale(ctx, srv, log, reservationTimeout)
			}
			err = <-errc
			stop()
			for range waiting - 1 {
				if err2 := <-errc; err == nil {
					err = err2
				}
			}
			log.Info("stopped")
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&ctxDir, "context", "", "security context directory")
	f.StringVar(&dataDir, "data", "", "data directory (the SQLite database)")
	f.StringVar(&dbURL, "db", "", "PostgreSQL database URL (postgres://…) instead of SQLite")
	f.StringVar(&listen, "listen", "", "HOST:PORT of the HTTPS API")
	f.StringVar(&healthListen, "health-listen", "", "HOST:PORT of a plain-HTTP listener for /healthz and /metrics")
	f.StringVar(&dashListen, "dashboard-listen", "", "HOST:PORT of the operator dashboard (HTTPS, login links from \"sbm server dashboard\")")
	f.StringArrayVar(&hosts, "host", nil, "another DNS name or IP address for the server certificate (repeatable)")
	f.StringVar(&passFile, "passphrase-file", "", "file holding the context's passphrase")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.DurationVar(&reservationTimeout, "reservation-timeout", 15*time.Minute, "spoil units reserved longer than this without a certificate (0: never)")
	return cmd
}

// operatorClient returns a management client of the service at url with the
// context's operator credential.
func operatorClient(ctxDir, passFile, url string) (*server.Client, *trust.Context, error) {
	c, err := openContext(ctxDir, passFile)
	if err != nil {
		return nil, nil, err
	}
	cred, err := c.OperatorCredential()
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	cl, err := server.NewClient(c, url, cred)
	if err != nil {
		c.Close()
		return nil, nil, usagef("--server: %v", err)
	}
	return cl, c, nil
}

func newServerWaitCmd(cio *cliIO) *cobra.Command {
	var ctxDir, url, passFile string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "wait --server URL --context DIR [--timeout D]",
		Short: "Wait until the service answers /healthz",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlags(cmd, "server", "context"); err != nil {
				return err
			}
			if timeout <= 0 {
				return usagef("--timeout: want a positive duration")
			}
			cl, c, err := operatorClient(ctxDir, passFile, url)
			if err != nil {
				return err
			}
			defer c.Close()
			defer cl.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			for {
				err := cl.Health(ctx)
				if err == nil {
					return nil
				}
				if errors.Is(err, server.ErrRefused) {
					return err
				}
				select {
				case <-ctx.Done():
					return fmt.Errorf("the service did not answer within %v: %w", timeout, err)
				case <-time.After(50 * time.Millisecond):
				}
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&url, "server", "", "service URL (https://HOST:PORT)")
	f.StringVar(&ctxDir, "context", "", "security context directory")
	f.StringVar(&passFile, "passphrase-file", "", "file holding the context's passphrase")
	f.DurationVar(&timeout, "timeout", 10*time.Second, "how long to wait")
	return cmd
}

// sweepStale spoils stale reservations every tenth of the timeout (at
// most every minute) until ctx is done.
func sweepStale(ctx context.Context, srv *server.Server, log *slog.Logger, timeout time.Duration) {
	every := min(timeout/10, time.Minute)
	t := time.NewTicker(max(every, 100*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n, err := srv.SpoilStale(ctx, timeout); err != nil && ctx.Err() == nil {
			log.Error("spoil stale reservations", "err", err)
		} else if n > 0 {
			log.Warn("spoiled stale reservations", "units", n)
		}
	}
}

func newServerDashboardCmd(cio *cliIO) *cobra.Command {
	var sf serverFlags
	cmd := &cobra.Command{
		Use:   "dashboard --server URL --context DIR",
		Short: "Print a single-use login link to the operator dashboard",
		Long: `Ask the service (as the OEM operator) for a login link to its dashboard
(sbm server run --dashboard-listen): open it in a browser within two
minutes; it works once and starts an 8-hour session.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlags(cmd, "server", "context"); err != nil {
				return err
			}
			cl, c, err := operatorClient(sf.ctxDir, sf.passFile, sf.url)
			if err != nil {
				return err
			}
			defer c.Close()
			defer cl.Close()
			l, err := cl.DashboardLogin(cmd.Context())
			if err != nil {
				return err
			}
			link := l.URL
			if link == "" {
				link = l.Path + " (on the dashboard listener: the service runs without --dashboard-listen)"
			}
			fmt.Fprintln(cio.stdout, link)
			return nil
		},
	}
	sf.register(cmd)
	return cmd
}
