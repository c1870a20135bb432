package main

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/internal/atomicfile"
	"github.com/sbm-project/sbm/programmer"
	"github.com/sbm-project/sbm/sbm"
	"github.com/sbm-project/sbm/server/station"
	"github.com/sbm-project/sbm/sim"
	"github.com/sbm-project/sbm/trust"
	"github.com/sbm-project/sbm/vmcu"
	"github.com/spf13/cobra"
)

func init() { commandGroups = append(commandGroups, newProvisionCmd) }

func newProvisionCmd(cio *cliIO) *cobra.Command {
	var ctxDir, devDir, passFile, certOut string
	var serverURL, stationDir, orderArg, upkOut, checkpointOut string
	var noLock, classKey, devLog, asJSON bool
	var counter counterValue
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "provision (--context DIR | --server URL --station DIR --order ORDER) --device DEVDIR",
		Short: "Provision a device at birth over its debug port, then lock it",
		Long: `Provision the virtual device in DEVDIR for the security context, over its
debug port: install the SBM; write the root key hash into the fuses; hand the
SBM its trust anchors (root key, key certificates of the image-signing and
update-authority keys, vendor and class IDs, initial security counter, and
with --class-key the class key-agreement key); the SBM derives its identity
and key-agreement keys from the device's PUF (they never leave it) and
returns a CSR; the device CA issues the device certificate, which is written
to the device and recorded in the context's production records
(devices/ID.json); finally the lock bits are blown (debug lock, SBM
write-protect, secure storage hidden) unless --no-lock.

A production record is never replaced: a device whose ID already has one (a
clone of a certified device, or the same chip provisioned again) is refused
before anything is written to it, with exit status 1.

Station mode, at a contract manufacturer: with --server, --station and
--order instead of --context, the station gets the trust anchors from the
OEM service and forwards the device's CSR over mutual TLS with its station
credential (DIR/station.crt, DIR/station.key from "sbm production station");
the service checks the order (signed by the OEM, valid, not revoked, naming
this station), the CSR, that the device was never certified, and the count,
then certifies the device, logs it, and answers with the certificate and,
when the order names a release, the device's first-programming UPK
(--upk-out FILE writes it; program it with "sbm program --upk FILE"). ORDER is
the order file or its ID. A retry after a crash gets the same certificate.
The production record is the service's (sbm production audit syncs it).

If the device is running ("sbm device run"), its debug socket is used;
otherwise the device is powered on in-process for the duration.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			stationMode := serverURL != "" || stationDir != "" || orderArg != ""
			var auth *station.Authority
			var c *trust.Context
			if stationMode {
				if err := requireFlags(cmd, "server", "station", "order", "device"); err != nil {
					return err
				}
				if ctxDir != "" || classKey {
					return usagef("--context and --class-key do not go with --server (the station has no context)")
				}
				id, err := station.OrderRef(orderArg)
				if err != nil {
					return usagef("--order: %v", err)
				}
				cl, err := station.Client(stationDir, serverURL)
				if err != nil {
					return err
				}
				defer cl.Close()
				auth = station.New(cl, id)
			} else {
				if err := requireFlags(cmd, "context", "device"); err != nil {
					return err
				}
				if upkOut != "" || checkpointOut != "" {
					return usagef("--upk-out and --checkpoint-out go with --server")
				}
				var err error
				if c, err = openContext(ctxDir, passFile); err != nil {
					return err
				}
			}
			ctx := cmd.Context()
			var log io.Writer
			if devLog {
				log = cio.stderr
			}
			dp, stop, err := debugPortFor(ctx, devDir, log)
			if err != nil {
				return err
			}
			defer stop()
			progress := cio.stdout
			if asJSON {
				progress = cio.stderr
			}
			popts := &programmer.ProvisionOptions{
				SBMImage: sbm.Descriptor(), NoLock: noLock, ClassKey: classKey,
				SecurityCounter: uint32(counter), Timeout: timeout, Log: progress,
			}
			var res *programmer.Provisioned
			if auth != nil {
				res, err = programmer.ProvisionWith(ctx, auth, dp, popts)
			} else {
				res, err = programmer.Provision(ctx, c, dp, popts)
			}
			if errors.Is(err, vmcu.ErrDebugLocked) {
				return fmt.Errorf("provisioning %s: the device is already provisioned and locked: its debug port is closed for good (sbm device info %s shows its state)", devDir, devDir)
			}
			if err != nil {
				return fmt.Errorf("provisioning %s: %w", devDir, err)
			}
			if auth != nil && auth.Last() != nil {
				last := auth.Last()
				if upkOut != "" {
					if last.UPK == nil {
						return fmt.Errorf("the order names no release: the service issued no UPK for %s", upkOut)
					}
					if err := atomicfile.WriteFile(upkOut, last.UPK, 0o644); err != nil {
						return err
					}
				}
				if checkpointOut != "" {
					if err := atomicfile.WriteFile(checkpointOut, last.Checkpoint, 0o644); err != nil {
						return err
					}
				}
				fmt.Fprintf(progress, "certified by the service under order %s (log entry %d)\n", auth.OrderID(), last.LogIndex)
			}
			if certOut != "" {
				if err := atomicfile.WriteFile(certOut, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: res.Certificate.Raw}), 0o644); err != nil {
					return err
				}
			}
			if asJSON {
				return printJSON(cio.stdout, provisionedJSON(res.Record))
			}
			state := "locked"
			if !res.Locked {
				state = "not locked"
			}
			fmt.Fprintf(cio.stdout, "provisioned device %s (%s)\n", res.Record.ID, state)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&ctxDir, "context", "", "security context directory (required, except in station mode)")
	f.StringVar(&devDir, "device", "", "virtual device directory (required)")
	f.StringVar(&serverURL, "server", "", "station mode: the OEM service (https://HOST:PORT)")
	f.StringVar(&stationDir, "station", "", "station mode: directory of the station credential (station.crt, station.key)")
	f.StringVar(&orderArg, "order", "", "station mode: the production order (file or ID)")
	f.StringVar(&upkOut, "upk-out", "", "station mode: write the device's first-programming UPK here")
	f.StringVar(&checkpointOut, "checkpoint-out", "", "station mode: write the service's signed log checkpoint here (a witness for the audit)")
	f.BoolVar(&noLock, "no-lock", false, "leave the lock bits unblown (development devices)")
	f.BoolVar(&classKey, "class-key", false, "also give the device the class key-agreement key (for class UPKs)")
	f.Var(&counter, "security-counter", fmt.Sprintf("initial anti-rollback security counter, 0 to %d", hal.CounterMax))
	f.StringVar(&certOut, "cert-out", "", "also write the device certificate (PEM) to this file")
	f.DurationVar(&timeout, "timeout", 10*time.Second, "how long to wait for each answer of the SBM")
	f.StringVar(&passFile, "passphrase-file", "", "file holding the context's key passphrase")
	f.BoolVar(&devLog, "device-log", false, "print the device's boot log on stderr (when it is powered on in-process)")
	f.BoolVar(&asJSON, "json", false, "print the production record's facts as JSON (progress goes to stderr)")
	return cmd
}

// debugPortFor returns the debug port of the device in dir: its socket if
// it runs, else the device powered on in-process with the SBM until stop.
func debugPortFor(ctx context.Context, dir string, log io.Writer) (dp *vmcu.DebugPort, stop func(), err error) {
	if dp, err := vmcu.DialDebug(ctx, dir); err == nil {
		return dp, func() { dp.Close() }, nil
	}
	r, err := sim.Start(ctx, dir, sim.Firmware(nil), log)
	if err != nil {
		return nil, nil, fmt.Errorf("device %s is not running and cannot be opened: %w", dir, err)
	}
	return r.Device.DebugPort(), func() { r.Stop() }, nil
}
