package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/vmcu"
)

func init() { commandGroups = append(commandGroups, newDeviceCmd) }

func newDeviceCmd(cio *cliIO) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "device",
		Short: "Virtual microcontrollers: create, run, inspect, reset, debug, inject faults",
		Long: `The device commands manage virtual microcontrollers (see docs/vmcu.md).

A device lives in a directory: its flash, fuses, wear counters, identity and
board description. It keeps its state between runs, like a board that is
switched off and on. While 'sbm device run' runs it, host tools reach it
through DIR/debug.sock (the debug port, refused once the debug-lock fuse is
blown) and DIR/control.sock (the bench: reset button, recovery pin, fault
injection).`,
	}
	cmd.AddCommand(
		newDeviceNewCmd(cio),
		newDeviceBoardsCmd(cio),
		newDeviceInfoCmd(cio),
		newDeviceRunCmd(cio),
		newDeviceWaitCmd(cio),
		newDeviceResetCmd(cio),
		newDevicePowerCutCmd(cio),
		newDeviceFlipCmd(cio),
		newDeviceBadSectorCmd(cio),
		newDeviceDebugCmd(cio),
		newDeviceFlashCmd(cio),
		newDeviceTortureCmd(cio),
	)
	return cmd
}

func newDeviceNewCmd(cio *cliIO) *cobra.Command {
	var board string
	cmd := &cobra.Command{
		Use:   "new DIR",
		Short: "Create a blank device: erased flash, unblown fuses, fresh ID and PUF",
		Long: `Create a new virtual device in DIR, which must not exist or be empty.

The device is blank silicon: erased flash, unblown fuses, a fresh random
16-byte device ID and PUF. --board names a built-in board (see 'sbm device
boards') or a board file (a path containing a slash or ending in .toml).`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := loadBoardFlag(board)
			if err != nil {
				return err
			}
			if err := vmcu.Create(args[0], b); err != nil {
				return err
			}
			in, err := vmcu.Inspect(args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cio.stdout, "created device %s (board %s) in %s\n", in.ID, b.Name, args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&board, "board", "default", "built-in board `NAME` or board FILE")
	return cmd
}

// loadBoardFlag loads --board: an unknown built-in name is a usage error, a
// bad board file is a failure.
func loadBoardFlag(s string) (*vmcu.Board, error) {
	b, err := vmcu.LoadBoard(s)
	if err != nil && !strings.ContainsAny(s, `/\`) && !strings.HasSuffix(s, ".toml") {
		return nil, usagef("--board: %v", err)
	}
	return b, err
}

func newDeviceBoardsCmd(cio *cliIO) *cobra.Command {
	return &cobra.Command{
		Use:   "boards",
		Short: "List the built-in boards",
		Long: `List the built-in boards with their flash geometry, whether the flash is
internal to the MCU or an external chip (which a physical attacker can clip
onto; see 'sbm device flash'), and the erase endurance of a sector. The
board file of a board is shown by 'sbm device boards NAME'.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				b, err := vmcu.LookupBoard(args[0])
				if err != nil {
					return usagef("%v", err)
				}
				cio.stdout.Write(b.MarshalTOML())
				return nil
			}
			w := tabwriter.NewWriter(cio.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tFLASH\tSECTORS\tWRITE\tERASED\tCHIP\tENDURANCE\tDESCRIPTION")
			for _, b := range vmcu.Boards() {
				g := b.Geometry
				var runs []string
				for _, r := range b.SectorRuns {
					runs = append(runs, fmt.Sprintf("%dx%s", r.Count, size(r.Size)))
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%d\t0x%02X\t%s\t%d\t%s\n", b.Name, size(g.Size), strings.Join(runs, "+"), g.WriteSize, g.Erased, b.FlashLocation, b.EnduranceCycles(), b.Description)
			}
			return w.Flush()
		},
	}
}

func size(n uint32) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.Itoa(int(n>>20)) + "MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.Itoa(int(n>>10)) + "KiB"
	}
	return strconv.Itoa(int(n)) + "B"
}

func newDeviceInfoCmd(cio *cliIO) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "info DIR",
		Short: "Show a device's board, memory map, fuses, locks, SBM state and application",
		Long: `Show the public state of the device in DIR: board, memory map, lock fuses,
root-key hash fuse, monotonic counters, wear, bad sectors, armed power cut,
whether it is running, and the SBM's public state: lifecycle, SBM
measurement, device certificate, installed application (version, size,
hash), security counter and the last boot or install error. Secrets (PUF
data, keys) and flash contents are never shown. Works while the device runs.

With --json the output is one JSON object; its "id" is the device ID as 32
lowercase hexadecimal digits, "certificate" the device certificate (PEM) and
"application" the installed application ("application.version").`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in, err := readDeviceInfo(args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cio.stdout, in)
			}
			printInfo(cio, in.Info)
			printSBMInfo(cio.stdout, in)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printInfo(cio *cliIO, in *vmcu.Info) {
	w := tabwriter.NewWriter(cio.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "id:\t%s\n", in.ID)
	fmt.Fprintf(w, "board:\t%s (%s)\n", in.Board, in.Description)
	fmt.Fprintf(w, "flash:\t%s %s, %d sectors, %d-byte writes, erased 0x%02X, endurance %d erases\n", size(in.Flash.Size), in.Flash.Location, in.Flash.Sectors, in.Flash.WriteSize, in.Flash.Erased, in.Flash.Endurance)
	fmt.Fprintf(w, "ram:\t%s\n", size(in.RAMSize))
	fmt.Fprintf(w, "running:\t%t\n", in.Running)
	w.Flush()
	fmt.Fprintln(cio.stdout, "memory map:")
	for _, r := range in.Regions {
		fmt.Fprintf(w, "  %s\t0x%08X-0x%08X\t%s\n", r.Name, r.Start, r.Start+r.Size, size(r.Size))
	}
	w.Flush()
	yn := func(b bool) string {
		if b {
			return "blown"
		}
		return "not blown"
	}
	fmt.Fprintln(cio.stdout, "locks:")
	fmt.Fprintf(w, "  debug lock\t%s\n", yn(in.Locks.Debug))
	fmt.Fprintf(w, "  sbm write-protect\t%s\n", yn(in.Locks.SBMWriteProtect))
	fmt.Fprintf(w, "  secure storage hidden\t%s\n", yn(in.Locks.SecureHidden))
	w.Flush()
	rk := in.RootKeyHash
	if rk == "" {
		rk = "not programmed"
	}
	fmt.Fprintf(w, "root key hash:\t%s\n", rk)
	fmt.Fprintf(w, "counters:\t%v\n", in.Counters)
	fmt.Fprintf(w, "wear:\t%d erases, most erased sector 0x%08X (%d)\n", in.Wear.TotalErases, in.Wear.MaxSector, in.Wear.MaxErases)
	if len(in.Wear.WornOut) > 0 {
		var s []string
		for _, a := range in.Wear.WornOut {
			s = append(s, fmt.Sprintf("0x%08X", a))
		}
		fmt.Fprintf(w, "worn-out sectors:\t%s\n", strings.Join(s, " "))
	}
	if len(in.BadSectors) > 0 {
		var s []string
		for _, a := range in.BadSectors {
			s = append(s, fmt.Sprintf("0x%08X", a))
		}
		fmt.Fprintf(w, "bad sectors:\t%s\n", strings.Join(s, " "))
	}
	if in.PowerCut != nil {
		fmt.Fprintf(w, "armed power cut:\t%v\n", *in.PowerCut)
	}
	w.Flush()
}

// parseUint32 parses a decimal or 0x-prefixed number for a flag or
// argument, returning a usage error if it is not one.
func parseUint32(what, s string) (uint32, error) {
	v, err := strconv.ParseUint(s, 0, 32)
	if err != nil {
		return 0, usagef("%s %q: want a number (decimal or 0x...) below 2^32", what, s)
	}
	return uint32(v), nil
}

func parseRegion(s string) (hal.RegionKind, error) {
	k, ok := hal.ParseRegionKind(s)
	if !ok {
		return 0, usagef("--region %q: want sbm, secure, primary, staging or appdata", s)
	}
	return k, nil
}

var errNotRunning = vmcu.ErrNotRunning

func isNotRunning(err error) bool { return errors.Is(err, errNotRunning) }
