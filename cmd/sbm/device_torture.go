package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sbm-project/sbm/sim"
)

func newDeviceTortureCmd(cio *cliIO) *cobra.Command {
	var (
		board, size string
		seed        uint64
		exhaustive  bool
		scenarios   []string
		maxCuts     int
		at          int
		tornSeed    int64
		quiet       bool
		asJSON      bool
	)
	cmd := &cobra.Command{
		Use:   "torture [--board NAME] [--size BYTES] [--seed N] [--exhaustive] [--scenario NAME]...",
		Short: "Power-cut sweep: cut power at every flash operation of the SBM's flows, check old-or-new",
		Long: `Run the Secure Boot Manager on an in-memory virtual device (no device
directory) and cut its power, cleanly and mid-operation (torn), at the flash
operations of its flows (docs/power-cut.md):

  uart-program      first programming over the UART (real wire client and session)
  staging-update    the application stages v2 and requests the update
  recovery-install  v2 installed over v1 through a recovery session
  commits           every secure-storage operation of two updates v1 -> v2 -> v3

Each run cuts power once, then up to --max-cuts more times while the device
recovers, then boots uninterrupted and checks: the complete old or new
application runs (byte for byte), never a mix, never bricked; the signature
table and security counter match it; no install is left pending; the new
application runs if the update had been authenticated; and the flow can then
be completed. The default is a reduced sample (every k-th operation plus the
commit windows); --exhaustive cuts every operation. A failure prints the flags
that rerun it alone (--at, --torn-seed). The last line is "N passed, M
failed"; the exit code is 1 if M > 0. --json prints the summary as one JSON
object instead (fields in docs/cli.md), with the same exit code.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := parseBytes(size)
			if err != nil {
				return usagef("--size: %v", err)
			}
			if at < 0 {
				return usagef("--at: want an operation number of 1 or more")
			}
			if at > 0 && len(scenarios) != 1 {
				return usagef("--at needs exactly one --scenario")
			}
			opts := sim.TortureOptions{Board: board, Size: n, Seed: seed, Exhaustive: exhaustive,
				Scenarios: scenarios, MaxCuts: maxCuts, At: at}
			if tornSeed >= 0 {
				opts.Torn, opts.TornSeed = true, uint64(tornSeed)
			}
			if maxCuts == 0 {
				opts.MaxCuts = -1
			}
			if !quiet && !asJSON {
				opts.Log = cio.stdout
			}
			rep, err := sim.Torture(cmd.Context(), opts)
			if err != nil {
				return err
			}
			if asJSON {
				if err := printJSON(cio.stdout, tortureJSON(rep)); err != nil {
					return err
				}
			} else {
				printTortureSummary(cio, rep)
			}
			if rep.Failed > 0 {
				return fmt.Errorf("%d power-cut runs failed", rep.Failed)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&board, "board", "small", "built-in board `NAME` or board FILE")
	f.StringVar(&size, "size", "8KiB", "application size: `BYTES`, NKiB or NMiB")
	f.Uint64Var(&seed, "seed", 0, "`N` selects the device, torn outcomes, the sample and further cuts")
	f.BoolVar(&exhaustive, "exhaustive", false, "cut every operation (clean and two torn seeds each)")
	f.StringArrayVar(&scenarios, "scenario", nil, "run only scenario `NAME` (repeatable; default all)")
	f.IntVar(&maxCuts, "max-cuts", 5, "at most `N` further cuts while a run recovers (0: none)")
	f.IntVar(&at, "at", 0, "rerun only the cut at operation `N` (with one --scenario)")
	f.Int64Var(&tornSeed, "torn-seed", -1, "with --at: tear the operation, `N` choosing its outcome, instead of a clean cut")
	f.BoolVar(&quiet, "quiet", false, "print only the summary")
	f.BoolVar(&asJSON, "json", false, "print the summary as JSON (implies --quiet)")
	registerCompletion(cmd, "board", completeBoard)
	registerCompletion(cmd, "scenario", fixedValues(scenarioNames()...))
	return cmd
}

// printTortureSummary prints one line per scenario, the failures and the
// final "N passed, M failed" line.
func printTortureSummary(cio *cliIO, rep *sim.TortureReport) {
	mode := "reduced"
	if rep.Exhaustive {
		mode = "exhaustive"
	}
	fmt.Fprintf(cio.stdout, "summary (board %s, application %d bytes, seed %d, %s, %.1f s):\n", rep.Board, rep.Size, rep.Seed, mode, rep.Duration.Seconds())
	for _, s := range rep.Scenarios {
		if s.Skipped != "" {
			fmt.Fprintf(cio.stdout, "  %-17s skipped: %s\n", s.Name, s.Skipped)
			continue
		}
		fmt.Fprintf(cio.stdout, "  %-17s T=%d ops, %d cut points, %d runs: %d passed, %d failed; %d resumed an install, %d further cuts\n",
			s.Name, s.Ops, s.CutPoints, s.Runs, s.Passed, s.Failed, s.Resumed, s.ExtraCuts)
		for _, f := range s.Failures {
			fmt.Fprintf(cio.stdout, "    FAIL %v\n      rerun: %s\n", f, tortureRerun(rep, f))
		}
	}
	fmt.Fprintf(cio.stdout, "%d passed, %d failed\n", rep.Passed, rep.Failed)
}

// tortureRerun returns the command that reruns failure f alone.
func tortureRerun(rep *sim.TortureReport, f *sim.TortureFailure) string {
	return fmt.Sprintf("sbm device torture --board %s --size %d --seed %d %s", rep.Board, rep.Size, rep.Seed, f.Repro())
}

// parseBytes parses N, NKiB or NMiB.
func parseBytes(s string) (int, error) {
	mult := 1
	switch {
	case strings.HasSuffix(s, "KiB"):
		s, mult = strings.TrimSuffix(s, "KiB"), 1<<10
	case strings.HasSuffix(s, "MiB"):
		s, mult = strings.TrimSuffix(s, "MiB"), 1<<20
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 || n > (256<<20)/mult {
		return 0, fmt.Errorf("want a positive size such as 8192, 8KiB or 1MiB")
	}
	return n * mult, nil
}
