package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sbm-project/sbm/image"
	"github.com/sbm-project/sbm/programmer"
	"github.com/sbm-project/sbm/vmcu"
	"github.com/sbm-project/sbm/wire"
	"github.com/sbm-project/sbm/wire/client"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func init() { commandGroups = append(commandGroups, newProgramCmd) }

// programFlags are the flags of sbm program.
type programFlags struct {
	port, pkgFile, upkFile string
	board, recoveryDir     string
	baud                   int
	noReset, quiet, asJSON bool
	noResume               bool
	timeout                time.Duration
}

// programReport is the JSON object sbm program --json prints.
type programReport struct {
	DeviceID        string  `json:"device_id"`
	Version         string  `json:"version"`
	PreviousVersion string  `json:"previous_version"`
	Bytes           int     `json:"bytes"`
	SentBytes       int     `json:"sent_bytes"`
	ResumedAt       int     `json:"resumed_at"`
	Seconds         float64 `json:"seconds"`
	BytesPerSecond  float64 `json:"bytes_per_second"`
	Frames          int     `json:"frames"`
	Resent          int     `json:"resent"`
	Retries         int     `json:"retries"`
	ResetToRecovery bool    `json:"reset_to_recovery"`
	Reset           bool    `json:"reset"`
}

func newProgramCmd(cio *cliIO) *cobra.Command {
	var pf programFlags
	cmd := &cobra.Command{
		Use:   "program --port (PTY_PATH|tcp:HOST:PORT) --package FILE [--upk FILE]",
		Short: "Program a package into a device over its UART (the SBM's connection protocol)",
		Long: `Send a package and its UPK to a device's Secure Boot Manager over the UART,
with a windowed transfer; the SBM checks the UPK and the manifest before
accepting the payload, stores the package in its staging slot, authenticates
every chunk, installs it and records it in its signature table. Then the
device resets into the new application (unless --no-reset).

The device must be in recovery: no valid application, or reset with the
recovery pin held. A device running its application does not answer the
SBM's protocol; sbm program then says so and exits 1. For a virtual device,
--reset-to-recovery DIR does that reset itself when the device does not
answer ("sbm device reset --recovery DIR" does it by hand).

The board must be able to run the package's format (sbm image inspect shows
it): with --board, or the board of --reset-to-recovery DIR, a package it
cannot run is refused before anything is sent. Without either, a package that
is not WebAssembly (what the virtual boards run) draws a warning only: the
device's information does not say its board.

Resuming: a link that drops during the transfer is redialled and the
transfer continues where the device left off. An interrupted
sbm program (Ctrl-C, --timeout) leaves the transfer in the device's session:
run it again within the device's inactivity timeout (60 s on the reference
SBM) and it continues at the device's received offset (--no-resume begins
again). A device that was reset, or whose session ended, has lost the
transfer: it begins again from 0.

--upk defaults to the first UPK inside the package (a class UPK). --baud is
the serial line rate (for a TCP endpoint: the rate the device paces at, used
for the summary). The progress bar is shown only when stderr is a terminal;
otherwise a plain line every 10 s (none with --quiet). --json prints one
JSON object at the end instead of the text lines. A rejection exits 1 with
the device's reason.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runProgram(cmd.Context(), cio, &pf)
		},
	}
	f := cmd.Flags()
	f.StringVar(&pf.port, "port", "", "the device's UART: a serial device or pty path, or tcp:HOST:PORT (required)")
	f.StringVar(&pf.pkgFile, "package", "", "package file (required)")
	f.StringVar(&pf.upkFile, "upk", "", "UPK file for this device (default: the package's class UPK)")
	f.IntVar(&pf.baud, "baud", 0, "serial line rate (default 115200 for serial ports; for tcp: the device's pacing, for the summary)")
	f.StringVar(&pf.board, "board", "", "the device's board (`NAME` or board file): refuse a package it cannot run")
	f.StringVar(&pf.recoveryDir, "reset-to-recovery", "", "virtual device `DIR`: if it runs its application, reset it with the recovery pin held first")
	f.BoolVar(&pf.noReset, "no-reset", false, "do not reset the device after the install")
	f.BoolVar(&pf.noResume, "no-resume", false, "begin the transfer again even if the device holds an unfinished one of this size")
	f.BoolVar(&pf.quiet, "quiet", false, "no progress output")
	f.BoolVar(&pf.asJSON, "json", false, "print one JSON object at the end (device_id, version, bytes, seconds, ...)")
	f.DurationVar(&pf.timeout, "timeout", 0, "give up after this long (default: no limit)")
	return cmd
}

func runProgram(ctx context.Context, cio *cliIO, pf *programFlags) error {
	if pf.port == "" || pf.pkgFile == "" {
		return usagef("--port and --package are required")
	}
	if pf.baud < 0 {
		return usagef("--baud must be positive")
	}
	if err := checkPort(pf.port); err != nil {
		return err
	}
	data, err := readInput(pf.pkgFile)
	if err != nil {
		return err
	}
	p, err := image.Parse(data)
	if err != nil {
		return fmt.Errorf("%s: %w", pf.pkgFile, err)
	}
	desc, err := image.Inspect(p)
	if err != nil {
		return fmt.Errorf("%s: %w", pf.pkgFile, err)
	}
	board, err := programBoard(pf)
	if err != nil {
		return err
	}
	if err := checkRuns(cio, pf.pkgFile, desc.SourceFormat, board); err != nil {
		return err
	}
	opts := &programmer.ProgramOptions{NoReset: pf.noReset, Resume: !pf.noResume}
	if pf.upkFile != "" {
		if opts.UPK, err = readInput(pf.upkFile); err != nil {
			return err
		}
	}
	if pf.timeout > 0 {
		var cancel func()
		ctx, cancel = context.WithTimeout(ctx, pf.timeout)
		defer cancel()
	}
	text := cio.stdout
	if pf.asJSON {
		text = io.Discard
	}
	cl, err := client.DialOptions{Baud: pf.baud}.Dial(ctx, pf.port)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", pf.port, err)
	}
	defer cl.Close()
	report := &programReport{Version: desc.Version}
	if pf.recoveryDir != "" {
		if report.ResetToRecovery, err = resetToRecovery(ctx, cl, pf.recoveryDir); err != nil {
			return err
		}
		if report.ResetToRecovery {
			fmt.Fprintf(text, "the device did not answer (running its application?): reset %s with the recovery pin held\n", pf.recoveryDir)
		}
	}
	var prog *progressLine
	if !pf.quiet {
		prog = newProgressLine(cio.stderr, isTerminal(cio.stderr))
		opts.Progress = prog.update
	}
	opts.Ready = func(info *wire.DeviceInfo) error {
		fmt.Fprintf(text, "device %x: SBM %s, application %s; programming %s %s (%d bytes)\n",
			info.ID, info.SBMVersion, orNone(info.AppVersion), filepath.Base(pf.pkgFile), desc.Version, len(data))
		return nil
	}
	res, err := programmer.Program(ctx, cl, p, opts)
	prog.finish()
	if err != nil {
		return programError(ctx, pf, res, err)
	}
	s := res.Stats
	secs := s.Duration.Seconds()
	sent := res.Bytes - s.ResumedAt
	rate := float64(sent) / secs
	report.DeviceID = fmt.Sprintf("%x", res.Before.ID)
	report.PreviousVersion = res.Before.AppVersion
	report.Bytes, report.SentBytes, report.ResumedAt = res.Bytes, sent, s.ResumedAt
	report.Seconds, report.BytesPerSecond = secs, rate
	report.Frames, report.Resent, report.Retries = s.Frames, s.Resent, s.Retries
	report.Reset = !pf.noReset
	if s.ResumedAt > 0 {
		fmt.Fprintf(text, "resumed the device's unfinished transfer at byte %d of %d\n", s.ResumedAt, res.Bytes)
	}
	fmt.Fprintf(text, "sent %d bytes in %.2f s (%.1f KiB/s; %d frames, %d resent, %d retries)\n",
		sent, secs, rate/1024, s.Frames, s.Resent, s.Retries)
	if pf.baud > 0 {
		line := float64(pf.baud) / 10
		fmt.Fprintf(text, "line rate %d baud = %.1f KiB/s: %.1f%% of line rate\n", pf.baud, line/1024, 100*rate/line)
	}
	if pf.noReset {
		fmt.Fprintf(text, "installed; device left in recovery (--no-reset)\n")
	} else {
		fmt.Fprintf(text, "installed; device reset into the new application\n")
	}
	if pf.asJSON {
		return printJSON(cio.stdout, report)
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// checkPort rejects a --port that names no serial port or pty, with a hint
// when it looks like a TCP address written without "tcp:".
func checkPort(port string) error {
	if strings.HasPrefix(port, "tcp:") {
		return nil
	}
	_, err := os.Stat(port)
	if !errors.Is(err, fs.ErrNotExist) {
		return nil // let the open report anything else
	}
	if host, p, err := net.SplitHostPort(port); err == nil && host != "" {
		if _, err := strconv.ParseUint(p, 10, 16); err == nil {
			return usagef("--port %s: no such serial port or pty; for a TCP endpoint write --port tcp:%s", port, port)
		}
	}
	return fmt.Errorf("--port %s: no such serial port or pty", port)
}

// programBoard returns the target board: --board, or the board of the
// --reset-to-recovery device, or nil if neither is given.
func programBoard(pf *programFlags) (*vmcu.Board, error) {
	switch {
	case pf.board != "":
		return boardFlag(pf.board)
	case pf.recoveryDir != "":
		b, err := vmcu.LoadBoard(filepath.Join(pf.recoveryDir, "board.toml"))
		if err != nil {
			return nil, fmt.Errorf("--reset-to-recovery %s: not a virtual device: %w", pf.recoveryDir, err)
		}
		return b, nil
	}
	return nil, nil
}

// checkRuns refuses a package whose format the board cannot execute or,
// without a board, warns when the format is not what the virtual boards
// run. A package without a recorded format is not checked.
func checkRuns(cio *cliIO, file, format string, b *vmcu.Board) error {
	if format == "" {
		return nil
	}
	if b == nil {
		if !slices.Contains(vmcu.DefaultRuns, format) {
			fmt.Fprintf(cio.stderr, "sbm: warning: %s: format %s; the virtual boards run only %s: give --board to refuse such a package before anything is sent\n",
				file, formatName(format), formatNames(vmcu.DefaultRuns))
		}
		return nil
	}
	if !b.CanRun(format) {
		return fmt.Errorf("%s: board %s cannot run format %s, only %s: nothing was sent (build a WebAssembly application: GOOS=wasip1 GOARCH=wasm go build)",
			file, b.Name, formatName(format), formatNames(b.RunsFormats()))
	}
	return nil
}

// formatName names an application format for messages: "elf (ELF)".
func formatName(f string) string {
	long := map[string]string{"wasm": "WebAssembly", "elf": "ELF", "ihex": "Intel HEX", "bin": "raw binary"}[f]
	if long == "" {
		return f
	}
	return f + " (" + long + ")"
}

func formatNames(fs []string) string {
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = formatName(f)
	}
	return strings.Join(names, ", ")
}

// boardFlag loads the board a --board flag names (a built-in name or a
// board file); "" is no board.
func boardFlag(name string) (*vmcu.Board, error) {
	if name == "" {
		return nil, nil
	}
	b, err := vmcu.LoadBoard(name)
	if err != nil {
		return nil, usagef("--board: %v", err)
	}
	return b, nil
}

// warnBoardRuns is sbm image create --board: it warns on stderr when board
// b cannot run an input of this format (the package is still built: it may
// be meant for another board). A nil board checks nothing.
func warnBoardRuns(cio *cliIO, b *vmcu.Board, format string) {
	if b != nil && !b.CanRun(format) {
		fmt.Fprintf(cio.stderr, "sbm: warning: board %s cannot run format %s, only %s: sbm program --board %s will refuse this package\n",
			b.Name, formatName(format), formatNames(b.RunsFormats()), b.Name)
	}
}

// recoveryProbe is how long --reset-to-recovery waits for a HELLO answer
// before it resets the device (three attempts).
const recoveryProbe = time.Second

// resetToRecovery checks that an SBM answers on cl and, if nothing does,
// resets the virtual device in dir with the recovery pin held. It reports
// whether it reset the device.
func resetToRecovery(ctx context.Context, cl *client.Client, dir string) (bool, error) {
	cl.SetTimeout(recoveryProbe)
	defer cl.SetTimeout(client.DefaultTimeout)
	_, err := cl.Hello(ctx)
	if err == nil {
		return false, nil
	}
	if !errors.Is(err, client.ErrNoHello) {
		return false, err
	}
	c, err := vmcu.DialControl(ctx, dir)
	if err != nil {
		return false, fmt.Errorf("--reset-to-recovery %s: %w", dir, err)
	}
	defer c.Close()
	if err := c.Reset(ctx, true); err != nil {
		return false, fmt.Errorf("--reset-to-recovery %s: reset: %w", dir, err)
	}
	return true, nil
}

// programError turns a failure of programmer.Program into the message
// sbm program prints, with a hint at what to do.
func programError(ctx context.Context, pf *programFlags, res *programmer.ProgramResult, err error) error {
	if errors.Is(err, client.ErrNoHello) {
		return fmt.Errorf("no answer from an SBM on %s: the device is probably running its application; "+
			"put it into recovery first (virtual device: sbm device reset --recovery DIR, or sbm program --reset-to-recovery DIR)", pf.port)
	}
	if errors.Is(err, context.DeadlineExceeded) && pf.timeout > 0 && ctx.Err() != nil {
		if res != nil && res.Stats != nil {
			return fmt.Errorf("gave up after --timeout %v, at %d of %d bytes; run sbm program again within the device's inactivity timeout to resume", pf.timeout, res.Stats.Acked, res.Bytes)
		}
		return fmt.Errorf("gave up after --timeout %v", pf.timeout)
	}
	var we *wire.Error
	if !errors.As(err, &we) {
		return err
	}
	msg := "the device refused the package: " + we.Error()
	switch we.Code {
	case wire.CodeReplay:
		msg += "; issue a fresh UPK for this device (sbm upk issue --context DIR --package " + pf.pkgFile + " --recipient DEVICE --out FILE)"
	case wire.CodeExpired:
		msg += "; issue a UPK valid now (sbm upk issue --context DIR --package " + pf.pkgFile + " --recipient DEVICE --out FILE)"
	case wire.CodeDecrypt, wire.CodeDigest, wire.CodeFormat:
		if res != nil && res.Stats != nil && res.Stats.ResumedAt > 0 {
			msg += fmt.Sprintf(" (the transfer continued one the device held at byte %d: if that was another package of the same size, run again with --no-resume)", res.Stats.ResumedAt)
		}
	}
	return errors.New(msg)
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progressLine shows a transfer's progress on w: on a terminal a line
// redrawn at most every 100 ms, otherwise a plain line every 10 s. The rate
// is shown only after a second (the first acknowledgements arrive at once,
// the window being in flight, and would give absurd rates). A nil
// *progressLine does nothing.
type progressLine struct {
	w        io.Writer
	tty      bool
	now      func() time.Time
	interval time.Duration
	start    time.Time
	last     time.Time
	base     int // bytes acknowledged at the first update (a resumed transfer)
	width    int // length of the last terminal line drawn
	drawn    bool
}

func newProgressLine(w io.Writer, tty bool) *progressLine {
	p := &progressLine{w: w, tty: tty, now: time.Now, interval: 10 * time.Second}
	if tty {
		p.interval = 100 * time.Millisecond
	}
	return p
}

func (p *progressLine) update(sent, total int) {
	if p == nil {
		return
	}
	now := p.now()
	if p.start.IsZero() {
		p.start, p.last, p.base = now, now, sent
		if !p.tty {
			return
		}
	} else if now.Sub(p.last) < p.interval && sent < total {
		return
	}
	if !p.tty && sent >= total {
		return // the summary follows
	}
	p.last = now
	line := fmt.Sprintf("programming %3d%%  %s of %s KiB", int(100*int64(sent)/int64(max(total, 1))), kib(sent), kib(total))
	if el := now.Sub(p.start); el >= time.Second {
		line += fmt.Sprintf("  %.1f KiB/s", float64(sent-p.base)/1024/el.Seconds())
	}
	if !p.tty {
		fmt.Fprintln(p.w, line)
		return
	}
	pad := max(p.width-len(line), 0)
	fmt.Fprintf(p.w, "\r%s%s", line, strings.Repeat(" ", pad))
	p.width, p.drawn = len(line), true
}

// finish clears the terminal line.
func (p *progressLine) finish() {
	if p == nil || !p.drawn {
		return
	}
	fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.width))
}

// kib formats n bytes in KiB with one decimal.
func kib(n int) string { return strconv.FormatFloat(float64(n)/1024, 'f', 1, 64) }
