package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sbm-project/sbm/server"
)

func init() { commandGroups = append(commandGroups, newRolloutCmd) }

func newRolloutCmd(cio *cliIO) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollout",
		Short: "Roll a published release out to the fleet in stages",
		Long: `Deliver a published release (sbm release publish) to a share of the
certified devices through the service's device API, then to more of them.

A device belongs to a rollout's cohort when the first 8 bytes of
SHA-256(cohort key ‖ 0 ‖ device ID), as a fraction, are below the percent:
no assignment pass over the fleet, the same devices on every poll, and a
cohort that only grows as the percent rises. The cohort key is the
--cohort name when given (rollouts of one cohort select the same devices:
the same canaries for every release), else the rollout's ID.

One rollout is active at a time: a new one is refused while another runs
below 100 %, or is paused or halted; one running at 100 % becomes done.
A rollout halts itself when its failures pass --max-failures. The commands
that change a rollout act on the active one unless --rollout names
another.`,
	}
	cmd.AddCommand(newRolloutStartCmd(cio), newRolloutSetCmd(cio),
		newRolloutStateCmd(cio, "pause", "Stop offering the rollout to more devices (open updates go on)"),
		newRolloutStateCmd(cio, "resume", "Resume a paused or halted rollout"),
		newRolloutStateCmd(cio, "abort", "Stop the rollout for good: open updates are cancelled"),
		newRolloutStatusCmd(cio), newRolloutListCmd(cio))
	return cmd
}

// printRollout prints a rollout's status in one line and its counts in
// another.
func printRollout(w io.Writer, st *server.RolloutStatus) {
	cohort := ""
	if st.Cohort != "" {
		cohort = ", cohort " + st.Cohort
	}
	fmt.Fprintf(w, "rollout %s: release %s, %s at %s %%%s\n", st.ID, st.Release, st.State, formatPercent(st.Percent), cohort)
	limit := ""
	if st.MaxFailures != "" {
		limit = " (halts above " + st.MaxFailures + ")"
	}
	fmt.Fprintf(w, "  targeted %d, downloaded %d, updated %d, failed %d%s\n", st.Targeted, st.Downloaded, st.Updated, st.Failed, limit)
}

func formatPercent(p float64) string { return strconv.FormatFloat(p, 'f', -1, 64) }

// pickRollout returns the rollout --rollout names, else the active one
// (running, paused or halted), else (when latest) the newest one.
func pickRollout(ctx context.Context, cl *server.Client, id string, latest bool) (string, error) {
	if id != "" {
		return id, nil
	}
	list, err := cl.Rollouts(ctx)
	if err != nil {
		return "", err
	}
	for i := len(list) - 1; i >= 0; i-- {
		switch list[i].State {
		case "running", "paused", "halted":
			return list[i].ID, nil
		}
	}
	if latest && len(list) > 0 {
		return list[len(list)-1].ID, nil
	}
	if len(list) > 0 {
		return "", errors.New("no active rollout (name one with --rollout, or sbm rollout start)")
	}
	return "", errors.New("no rollout on the service (sbm rollout start first)")
}

func newRolloutStartCmd(cio *cliIO) *cobra.Command {
	var sf serverFlags
	var req server.RolloutRequest
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "start --server URL --context DIR --release VERSION --percent P [--cohort NAME] [--max-failures N|N%]",
		Short: "Start rolling a published release out to a share of the fleet",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlags(cmd, "server", "context", "release", "percent"); err != nil {
				return err
			}
			if _, _, err := server.ParseMaxFailures(req.MaxFailures); err != nil {
				return usagef("--max-failures: %v", err)
			}
			cl, c, err := operatorClient(sf.ctxDir, sf.passFile, sf.url)
			if err != nil {
				return err
			}
			defer c.Close()
			defer cl.Close()
			st, err := cl.StartRollout(cmd.Context(), &req)
			if err != nil {
				return err
			}
			return showRollout(cio, st, asJSON)
		},
	}
	sf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&req.Release, "release", "", "the published release: its `VERSION` or manifest digest")
	f.Float64Var(&req.Percent, "percent", 0, "share `P` of the fleet in percent, above 0 and at most 100 (steps of 0.01)")
	f.StringVar(&req.Cohort, "cohort", "", "cohort `NAME`: rollouts of one cohort select the same devices")
	f.StringVar(&req.MaxFailures, "max-failures", "", "halt when failures pass `N|N%`: N devices, or N % of those targeted")
	f.BoolVar(&asJSON, "json", false, "print the rollout as JSON")
	return cmd
}

func newRolloutSetCmd(cio *cliIO) *cobra.Command {
	var sf serverFlags
	var id string
	var percent float64
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "set --server URL --context DIR --percent P [--rollout ID]",
		Short: "Raise the rollout's share of the fleet",
		Long: `Raise the share of the fleet the rollout is offered to. A cohort only grows:
the devices already in it stay, a lower percent is refused.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlags(cmd, "server", "context", "percent"); err != nil {
				return err
			}
			cl, c, err := operatorClient(sf.ctxDir, sf.passFile, sf.url)
			if err != nil {
				return err
			}
			defer c.Close()
			defer cl.Close()
			rid, err := pickRollout(cmd.Context(), cl, id, false)
			if err != nil {
				return err
			}
			st, err := cl.SetRolloutPercent(cmd.Context(), rid, percent)
			if err != nil {
				return err
			}
			return showRollout(cio, st, asJSON)
		},
	}
	sf.register(cmd)
	cmd.Flags().Float64Var(&percent, "percent", 0, "the new share `P` of the fleet in percent (at least the current one)")
	cmd.Flags().StringVar(&id, "rollout", "", "the rollout `ID` (default: the active rollout)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the rollout as JSON")
	return cmd
}

func newRolloutStateCmd(cio *cliIO, verb, short string) *cobra.Command {
	var sf serverFlags
	var id string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   verb + " --server URL --context DIR [--rollout ID]",
		Short: short,
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, done, err := sf.operator(cmd)
			if err != nil {
				return err
			}
			defer done()
			rid, err := pickRollout(cmd.Context(), cl, id, false)
			if err != nil {
				return err
			}
			op := map[string]func(context.Context, string) (*server.RolloutStatus, error){
				"pause": cl.PauseRollout, "resume": cl.ResumeRollout, "abort": cl.AbortRollout}[verb]
			st, err := op(cmd.Context(), rid)
			if err != nil {
				return err
			}
			return showRollout(cio, st, asJSON)
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&id, "rollout", "", "the rollout `ID` (default: the active rollout)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the rollout as JSON")
	return cmd
}

func newRolloutStatusCmd(cio *cliIO) *cobra.Command {
	var sf serverFlags
	var id string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status --server URL --context DIR [--rollout ID] [--json]",
		Short: "Show a rollout's state and counts",
		Long: `Show the active rollout (or the newest, or the one --rollout names): its
release, state, percent, and how many devices it was offered to (targeted),
downloaded it, installed it (updated: confirmed by the device's signed
report) and failed.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, done, err := sf.operator(cmd)
			if err != nil {
				return err
			}
			defer done()
			rid, err := pickRollout(cmd.Context(), cl, id, true)
			if err != nil {
				return err
			}
			st, err := cl.Rollout(cmd.Context(), rid)
			if err != nil {
				return err
			}
			return showRollout(cio, st, asJSON)
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&id, "rollout", "", "the rollout `ID` (default: the active rollout, else the newest)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the rollout as JSON")
	return cmd
}

func newRolloutListCmd(cio *cliIO) *cobra.Command {
	var sf serverFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list --server URL --context DIR [--json]",
		Short: "List every rollout, oldest first",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, done, err := sf.operator(cmd)
			if err != nil {
				return err
			}
			defer done()
			list, err := cl.Rollouts(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				out := jsonRollouts{Rollouts: []jsonRollout{}}
				for i := range list {
					out.Rollouts = append(out.Rollouts, newJSONRollout(&list[i]))
				}
				return printJSON(cio.stdout, out)
			}
			tw := tabwriter.NewWriter(cio.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tRELEASE\tSTATE\tPERCENT\tTARGETED\tDOWNLOADED\tUPDATED\tFAILED\tCREATED")
			for _, r := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\n", r.ID, r.Release, r.State, formatPercent(r.Percent),
					r.Targeted, r.Downloaded, r.Updated, r.Failed, r.Created.UTC().Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	sf.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the rollouts as JSON")
	return cmd
}

// showRollout prints a rollout as JSON or as text.
func showRollout(cio *cliIO, st *server.RolloutStatus, asJSON bool) error {
	if asJSON {
		return printJSON(cio.stdout, newJSONRollout(st))
	}
	printRollout(cio.stdout, st)
	return nil
}
