package main

import (
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sbm-project/sbm/server"
)

func init() { commandGroups = append(commandGroups, newReleaseCmd) }

func newReleaseCmd(cio *cliIO) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "release",
		Short: "Publish packages on the OEM service",
	}
	cmd.AddCommand(newReleasePublishCmd(cio), newReleaseListCmd(cio))
	return cmd
}

func newReleasePublishCmd(cio *cliIO) *cobra.Command {
	var sf serverFlags
	var force, asJSON bool
	cmd := &cobra.Command{
		Use:   "publish --server URL --context DIR [--force] PACKAGE",
		Short: "Publish a signed package on the service",
		Long: `Send a package to the service, which verifies it against its context the
way a device would (manifest and UPK signatures, key certificates to the
root, product IDs) before it accepts it. A package signed by another
context, a duplicate, or one whose security counter is below the newest
published release (without --force) is refused. A production order can
name a published release (sbm production order --release): its devices get
their first-programming UPK with their certificate.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pkg, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			cl, done, err := sf.operator(cmd)
			if err != nil {
				return err
			}
			defer done()
			st, err := cl.PublishRelease(cmd.Context(), pkg, force)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			if asJSON {
				// The release in an object of its own, as each element of
				// release list: its security counter is not the device's
				// (security_counter in device info).
				return printJSON(cio.stdout, struct {
					Release *server.ReleaseStatus `json:"release"`
				}{st})
			}
			fmt.Fprintf(cio.stdout, "published %s (security counter %d, manifest digest %s)\n", st.Version, st.SecurityCounter, st.ManifestDigest)
			return nil
		},
	}
	sf.register(cmd)
	cmd.Flags().BoolVar(&force, "force", false, "publish even if the security counter is below the newest release's")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the release as JSON")
	return cmd
}

func newReleaseListCmd(cio *cliIO) *cobra.Command {
	var sf serverFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list --server URL --context DIR [--json]",
		Short: "List the published releases",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, done, err := sf.operator(cmd)
			if err != nil {
				return err
			}
			defer done()
			list, err := cl.Releases(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				if list == nil {
					list = []server.ReleaseStatus{}
				}
				return printJSON(cio.stdout, server.ReleaseList{Releases: list})
			}
			tw := tabwriter.NewWriter(cio.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "VERSION\tCOUNTER\tMANIFEST DIGEST\tPUBLISHED")
			for _, r := range list {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", r.Version, r.SecurityCounter, r.ManifestDigest, r.Published.UTC().Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	sf.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the releases as JSON")
	return cmd
}
