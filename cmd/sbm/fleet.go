package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sbm-project/sbm/server"
)

func init() { commandGroups = append(commandGroups, newFleetCmd) }

func newFleetCmd(cio *cliIO) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fleet",
		Short: "The certified devices in the field, as the update service sees them",
	}
	cmd.AddCommand(newFleetListCmd(cio), newFleetRevokeCmd(cio))
	for _, sub := range fleetSubcommands {
		cmd.AddCommand(sub(cio))
	}
	return cmd
}

// fleetSubcommands are more "sbm fleet" commands, registered from their
// own files.
var fleetSubcommands []func(*cliIO) *cobra.Command

// when formats a time for the fleet table ("-" for never).
func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// lastReport describes a device's last report for the fleet table.
func lastReport(d *server.FleetDevice) string {
	if d.LastReport.IsZero() {
		return "-"
	}
	s := when(d.LastReport)
	if d.Result != nil {
		s += fmt.Sprintf(" result %d", *d.Result)
		if d.Detail != "" {
			s += " (" + d.Detail + ")"
		}
	}
	return s
}

func newFleetListCmd(cio *cliIO) *cobra.Command {
	var sf serverFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list --server URL --context DIR [--json]",
		Short: "List the certified devices: version, last seen, last report",
		Long: `List every device the service certified, with the application version its
last signed report named, when it last polled the device API (stored to
the second), and its last report's time and update result. Revoked
devices are marked.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, done, err := sf.operator(cmd)
			if err != nil {
				return err
			}
			defer done()
			list, err := cl.Fleet(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				out := jsonFleet{Fleet: []jsonFleetDevice{}}
				for i := range list {
					out.Fleet = append(out.Fleet, newJSONFleetDevice(&list[i]))
				}
				return printJSON(cio.stdout, out)
			}
			tw := tabwriter.NewWriter(cio.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "DEVICE\tVERSION\tLAST SEEN\tLAST REPORT")
			for i := range list {
				d := &list[i]
				version := d.Version
				if version == "" {
					version = "-"
				}
				if d.Revoked {
					version += " (revoked)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.DeviceID, version, when(d.LastSeen), lastReport(d))
			}
			return tw.Flush()
		},
	}
	sf.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the devices as JSON")
	return cmd
}

func newFleetRevokeCmd(cio *cliIO) *cobra.Command {
	var sf serverFlags
	cmd := &cobra.Command{
		Use:   "revoke --server URL --context DIR DEVICE",
		Short: "Refuse a device on the update service from now on",
		Long: `Revoke a certified device (its ID, hex): the device API refuses its
certificate from now on, so it is offered nothing, gets no UPK and its
reports are not taken. Its production record and log entries stay.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, done, err := sf.operator(cmd)
			if err != nil {
				return err
			}
			defer done()
			d, err := cl.RevokeDevice(cmd.Context(), args[0])
			if err != nil {
				return fmt.Errorf("device %s: %w", args[0], err)
			}
			fmt.Fprintf(cio.stdout, "device %s revoked\n", d.DeviceID)
			return nil
		},
	}
	sf.register(cmd)
	return cmd
}
