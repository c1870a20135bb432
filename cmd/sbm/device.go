package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/sbm"
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
	var asJSON bool
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
			if asJSON {
				return printJSON(cio.stdout, jsonNewDevice{DeviceID: in.ID, Board: b.Name, Dir: args[0]})
			}
			fmt.Fprintf(cio.stdout, "created device %s (board %s) in %s\n", in.ID, b.Name, args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&board, "board", "default", "built-in board `NAME` or board FILE")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the new device's ID, board and directory as JSON")
	registerCompletion(cmd, "board", completeBoard)
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
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "boards [NAME]",
		Short: "List the built-in boards",
		Long: `List the built-in boards with their flash geometry, whether the flash is
internal to the MCU or an external chip (which a physical attacker can clip
onto; see 'sbm device flash'), and the erase endurance of a sector. The
board file of a board is shown by 'sbm device boards NAME'. With --json the
list (or the board NAME) is printed as JSON with its memory map.`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: completeBoardArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				b, err := vmcu.LookupBoard(args[0])
				if err != nil {
					return usagef("%v", err)
				}
				if asJSON {
					return printJSON(cio.stdout, boardJSON(b))
				}
				_, err = cio.stdout.Write(b.MarshalTOML())
				return err
			}
			if asJSON {
				list := jsonBoards{Boards: []jsonBoard{}}
				for _, b := range vmcu.Boards() {
					list.Boards = append(list.Boards, boardJSON(b))
				}
				return printJSON(cio.stdout, list)
			}
			w := tabwriter.NewWriter(cio.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tFLASH\tSECTORS\tWRITE\tERASED\tCHIP\tENDURANCE\tDESCRIPTION")
			for _, b := range vmcu.Boards() {
				g := b.Geometry
				var runs []string
				for _, r := range b.SectorRuns {
					runs = append(runs, fmt.Sprintf("%d x %s", r.Count, size(r.Size)))
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%d\t0x%02X\t%s\t%d\t%s\n", b.Name, size(g.Size), strings.Join(runs, " + "), g.WriteSize, g.Erased, b.FlashLocation, b.EnduranceCycles(), b.Description)
			}
			return w.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// size formats a byte count the way every human-readable output does:
// "8 MiB", "4 KiB", "100 B".
func size(n uint32) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.Itoa(int(n>>20)) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.Itoa(int(n>>10)) + " KiB"
	}
	return strconv.Itoa(int(n)) + " B"
}

func newDeviceInfoCmd(cio *cliIO) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "info DIR",
		Short: "Show a device's board, memory map, fuses, locks, SBM state and application",
		Long: `Show the public state of the device in DIR: board, memory map, lock fuses,
root-key hash fuse, monotonic counters, wear, bad sectors, armed power cut,
whether it is running, and the SBM's public state: lifecycle, SBM
measurement (SHA-256 of the whole SBM region, as attestation tokens report
it), device certificate, installed application (version, size,
measurement), security counter and the last boot or install error. Secrets
(PUF data, keys) and flash contents are never shown. Works while the device
runs.

With --json the output is one JSON object (fields in docs/cli.md); its
"device_id" is the device ID as 32 lowercase hexadecimal digits,
"certificate" the device certificate (PEM) and "application" the installed
application ("application.version", "application.measurement").`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in, err := readDeviceInfo(args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cio.stdout, deviceInfoJSON(in))
			}
			return printInfo(cio.stdout, in)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// printInfo prints the device information as aligned "label: value"
// lines.
func printInfo(out io.Writer, d *deviceInfo) error {
	in := d.Info
	w := tabwriter.NewWriter(&trimWriter{w: out}, 0, 0, 2, ' ', 0)
	line := func(label, format string, a ...any) {
		fmt.Fprintf(w, "%s\t%s\n", label, fmt.Sprintf(format, a...))
	}
	yesNo := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	blown := func(b bool) string {
		if b {
			return "blown"
		}
		return "not blown"
	}
	line("device ID:", "%s", in.ID)
	if in.Description != "" {
		line("board:", "%s (%s)", in.Board, in.Description)
	} else {
		line("board:", "%s", in.Board)
	}
	line("flash:", "%s %s, %d sectors, %d-byte writes, erased 0x%02X, endurance %d erases", size(in.Flash.Size), in.Flash.Location, in.Flash.Sectors, in.Flash.WriteSize, in.Flash.Erased, in.Flash.Endurance)
	line("RAM:", "%s", size(in.RAMSize))
	line("running:", "%s", yesNo(in.Running))
	line("memory map:", "")
	for _, r := range in.Regions {
		fmt.Fprintf(w, "  %s\t0x%08X-0x%08X  %s\n", r.Name, r.Start, r.Start+r.Size, size(r.Size))
	}
	line("locks:", "")
	line("  debug lock", "%s", blown(in.Locks.Debug))
	line("  SBM write-protect", "%s", blown(in.Locks.SBMWriteProtect))
	line("  secure storage hidden", "%s", blown(in.Locks.SecureHidden))
	rk := in.RootKeyHash
	if rk == "" {
		rk = "not programmed"
	}
	line("root key hash:", "%s", rk)
	var cs []string
	for i, c := range in.Counters {
		s := fmt.Sprintf("#%d %d", i, c)
		if i == sbm.FuseSecurityCounter {
			s += " (security counter)"
		}
		cs = append(cs, s)
	}
	line("fuse counters:", "%s", strings.Join(cs, ", "))
	line("wear:", "%d erases, most erased sector 0x%08X (%d)", in.Wear.TotalErases, in.Wear.MaxSector, in.Wear.MaxErases)
	if len(in.Wear.WornOut) > 0 {
		line("worn-out sectors:", "%s", addrList(in.Wear.WornOut))
	}
	if len(in.BadSectors) > 0 {
		line("bad sectors:", "%s", addrList(in.BadSectors))
	}
	if in.PowerCut != nil {
		line("armed power cut:", "%v", *in.PowerCut)
	}

	line("lifecycle:", "%s", d.Lifecycle)
	m := d.SBMMeasurement
	if m == "" {
		m = "unknown (no SBM region)"
	}
	line("SBM measurement:", "%s", m)
	switch {
	case d.SBMVersion != "":
		line("SBM version:", "%s", d.SBMVersion)
	case d.SBMErased:
		line("SBM version:", "none (no SBM installed)")
	default:
		line("SBM version:", "unknown (not the SBM this tool installs)")
	}
	if d.Certificate != "" {
		line("certificate:", "installed (sbm device info --json shows it)")
	} else {
		line("certificate:", "none")
	}
	if a := d.Application; a != nil {
		line("application:", "%s, %d bytes, security counter %d", a.Version, a.Size, a.SecurityCounter)
		line("application measurement:", "%s", a.Measurement)
	} else {
		line("application:", "none")
	}
	line("security counter:", "%d", d.SecurityCounter)
	if d.InstallPending {
		line("install pending:", "yes: a staged package will be installed at the next boot")
	}
	if d.UpdateRequested {
		line("update requested:", "yes: the staged package will be checked at the next boot")
	}
	if u := d.LastUpdate; u != nil {
		line("last update:", "%s", u.text())
	}
	if e := d.LastError; e != nil {
		line("last error:", "%s", e.text())
	}
	return w.Flush()
}

// text describes an outcome without repeating itself: the detail alone if
// it starts with the result ("installed 1.0.0"), else "result (detail)".
func (o *outcome) text() string {
	switch {
	case o.Detail == "":
		return o.Result
	case strings.HasPrefix(o.Detail, o.Result):
		return o.Detail
	}
	return o.Result + " (" + o.Detail + ")"
}

// addrList formats sector addresses.
func addrList(as []uint32) string {
	var s []string
	for _, a := range as {
		s = append(s, fmt.Sprintf("0x%08X", a))
	}
	return strings.Join(s, " ")
}

// trimWriter removes trailing spaces from each line written through it
// (tabwriter pads a label whose line has no value).
type trimWriter struct {
	w       io.Writer
	pending []byte
}

func (t *trimWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			t.pending = append(t.pending, p...)
			break
		}
		t.pending = append(t.pending, p[:i]...)
		line := append(bytes.TrimRight(t.pending, " "), '\n')
		t.pending = t.pending[:0]
		if _, err := t.w.Write(line); err != nil {
			return 0, err
		}
		p = p[i+1:]
	}
	return n, nil
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
