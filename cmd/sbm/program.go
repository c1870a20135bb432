package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sbm-project/sbm/image"
	"github.com/sbm-project/sbm/programmer"
	"github.com/sbm-project/sbm/wire"
	"github.com/sbm-project/sbm/wire/client"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
)

func init() { commandGroups = append(commandGroups, newProgramCmd) }

func newProgramCmd(cio *cliIO) *cobra.Command {
	var port, pkgFile, upkFile string
	var baud int
	var noReset, quiet bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "program --port (PTY_PATH|tcp:HOST:PORT) --package FILE [--upk FILE]",
		Short: "Program a package into a device over its UART (the SBM's connection protocol)",
		Long: `Send a package and its UPK to a device's Secure Boot Manager over the UART,
with a windowed, resumable transfer; the SBM checks the UPK and the manifest
before accepting the payload, stores the package in its staging slot,
authenticates every chunk, installs it and records it in its signature
table. Then the device resets into the new application (unless --no-reset).

The device must be in recovery: no valid application, or reset with the
recovery pin held ("sbm device reset --recovery DIR"). --upk defaults to the
first UPK inside the package (a class UPK). --baud is the serial line rate
(for a TCP endpoint: the rate the device paces at, used for the summary).
A rejection exits 1 with the device's reason.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if port == "" || pkgFile == "" {
				return usagef("--port and --package are required")
			}
			if baud < 0 {
				return usagef("--baud must be positive")
			}
			data, err := readInput(pkgFile)
			if err != nil {
				return err
			}
			p, err := image.Parse(data)
			if err != nil {
				return fmt.Errorf("%s: %w", pkgFile, err)
			}
			opts := &programmer.ProgramOptions{NoReset: noReset}
			if upkFile != "" {
				if opts.UPK, err = readInput(upkFile); err != nil {
					return err
				}
			}
			ctx := cmd.Context()
			if timeout > 0 {
				var cancel func()
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			cl, err := client.DialOptions{Baud: baud}.Dial(ctx, port)
			if err != nil {
				return fmt.Errorf("connect to %s: %w", port, err)
			}
			defer cl.Close()
			var bar *progressbar.ProgressBar
			if !quiet {
				opts.Progress = func(sent, total int) {
					if bar == nil {
						bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(cio.stderr), progressbar.OptionShowBytes(true),
							progressbar.OptionSetDescription("programming"), progressbar.OptionThrottle(100*time.Millisecond),
							progressbar.OptionClearOnFinish())
					}
					bar.Set(sent)
				}
			}
			res, err := programmer.Program(ctx, cl, p, opts)
			if bar != nil {
				bar.Finish()
			}
			if res != nil && res.Before != nil {
				app := res.Before.AppVersion
				if app == "" {
					app = "none"
				}
				fmt.Fprintf(cio.stdout, "device %x: SBM %s, application %s\n", res.Before.ID, res.Before.SBMVersion, app)
			}
			if err != nil {
				var we *wire.Error
				if errors.As(err, &we) {
					return fmt.Errorf("the device refused the package: %s", we.Error())
				}
				return err
			}
			s := res.Stats
			secs := s.Duration.Seconds()
			rate := float64(res.Bytes) / secs
			fmt.Fprintf(cio.stdout, "sent %d bytes in %.2f s (%.1f KiB/s; %d frames, %d resent, %d retries)\n",
				res.Bytes, secs, rate/1024, s.Frames, s.Resent, s.Retries)
			if baud > 0 {
				line := float64(baud) / 10
				fmt.Fprintf(cio.stdout, "line rate %d baud = %.0f bytes/s: %.1f%% of line rate\n", baud, line, 100*rate/line)
			}
			if noReset {
				fmt.Fprintf(cio.stdout, "installed; device left in recovery (--no-reset)\n")
			} else {
				fmt.Fprintf(cio.stdout, "installed; device reset into the new application\n")
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&port, "port", "", "the device's UART: a serial device or pty path, or tcp:HOST:PORT (required)")
	f.StringVar(&pkgFile, "package", "", "package file (required)")
	f.StringVar(&upkFile, "upk", "", "UPK file for this device (default: the package's class UPK)")
	f.IntVar(&baud, "baud", 0, "serial line rate (default 115200 for serial ports; for tcp: the device's pacing, for the summary)")
	f.BoolVar(&noReset, "no-reset", false, "do not reset the device after the install")
	f.BoolVar(&quiet, "quiet", false, "no progress bar")
	f.DurationVar(&timeout, "timeout", 0, "give up after this long (default: no limit)")
	return cmd
}
