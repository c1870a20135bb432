package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/sbm-project/sbm/server/fleetsim"
)

// simulateJSON is what "fleet simulate --json" prints.
type simulateJSON struct {
	Devices           int     `json:"devices"`
	Seconds           float64 `json:"seconds"`
	Requests          int64   `json:"requests"`
	RequestsPerSecond float64 `json:"requests_per_second"`
	Polls             int64   `json:"polls"`
	P50               float64 `json:"p50_seconds"`
	P99               float64 `json:"p99_seconds"`
	FirstP99          float64 `json:"first_request_p99_seconds"`
	Steady            int64   `json:"steady_requests"`
	Updated           int64   `json:"updated"`
	Failed            int64   `json:"failed"`
	Errors            int64   `json:"errors"`
	FirstError        *string `json:"first_error"`
}

func init() { fleetSubcommands = append(fleetSubcommands, newFleetSimulateCmd) }

func newFleetSimulateCmd(cio *cliIO) *cobra.Command {
	var sf serverFlags
	var cfg fleetsim.Config
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "simulate --server URL --context DIR --devices N [--duration D] [--interval D] [--fail-percent P]",
		Short: "Simulate a fleet of devices against the update service on this host",
		Long: `Simulate N devices: each gets a real identity key and key-agreement key
and a certificate through the production service (the simulator loads an
order of N devices as the OEM and makes a station as the CM would), then
polls the device API over mutual TLS (kept-alive connections, TLS session
resumption, sleeps jittered around --interval), and when offered a release
downloads the package, fetches its own UPK, verifies and decrypts the
package with it as a device does, and sends an install report signed with
its identity key (--fail-percent of them report a refusal). Prints
requests per second, p50 and p99 latency on established connections (and
the p99 of the devices' first requests, with their TLS handshakes), polls,
updated, failed.

The simulated devices stay certified (they are in the production log).
Loopback services only, at most 10000 devices and 10 minutes.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlags(cmd, "server", "context", "devices"); err != nil {
				return err
			}
			c, err := openContext(sf.ctxDir, sf.passFile)
			if err != nil {
				return err
			}
			defer c.Close()
			cfg.Context, cfg.Server = c, sf.url
			sum, err := fleetsim.Run(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if asJSON {
				out := simulateJSON{Devices: sum.Devices, Seconds: sum.Duration.Seconds(), Requests: sum.Requests, RequestsPerSecond: sum.RequestsPerSecond,
					Polls: sum.Polls, P50: sum.P50.Seconds(), P99: sum.P99.Seconds(),
					FirstP99: sum.FirstP99.Seconds(), Steady: sum.Steady,
					Updated: sum.Updated, Failed: sum.Failed, Errors: sum.Errors}
				if sum.FirstError != "" {
					out.FirstError = &sum.FirstError
				}
				return printJSON(cio.stdout, out)
			}
			fmt.Fprintf(cio.stdout, "simulated %d devices for %v: %d requests (%.0f/s), %d polls, p50 %v, p99 %v in the steady state (first requests, with the handshake: p99 %v); updated %d, failed %d, errors %d\n",
				sum.Devices, sum.Duration.Round(time.Millisecond), sum.Requests, sum.RequestsPerSecond, sum.Polls,
				sum.P50.Round(10*time.Microsecond), sum.P99.Round(10*time.Microsecond), sum.FirstP99.Round(10*time.Microsecond),
				sum.Updated, sum.Failed, sum.Errors)
			if sum.FirstError != "" {
				fmt.Fprintf(cio.stderr, "first error: %s\n", sum.FirstError)
			}
			return nil
		},
	}
	sf.register(cmd)
	f := cmd.Flags()
	f.IntVar(&cfg.Devices, "devices", 0, "simulate `N` devices (at most 10000)")
	f.DurationVar(&cfg.Duration, "duration", 30*time.Second, "poll for `D` (at most 10m)")
	f.DurationVar(&cfg.Interval, "interval", time.Second, "mean time `D` between a device's polls")
	f.Float64Var(&cfg.FailPercent, "fail-percent", 0, "share `P` (percent) of installs reported refused")
	f.BoolVar(&asJSON, "json", false, "print the summary as JSON")
	return cmd
}
