package main

import (
	"github.com/sbm-project/sbm/demo"
	"github.com/spf13/cobra"
)

func init() { commandGroups = append(commandGroups, newDemoCmd) }

func newDemoCmd(cio *cliIO) *cobra.Command {
	var keep, source, board string
	cmd := &cobra.Command{
		Use:   "demo [--keep DIR]",
		Short: "Run the whole chain of trust on a virtual device, narrated",
		Long: `Run the whole chain of trust on a virtual microcontroller, with narrated
output: create a security context, a new device, provision and lock it,
package an application (a WebAssembly module built by the Go toolchain from
examples/), program it over the UART, boot it verified and check its
attestation token, package v2, have the application download it from a local
HTTP server and request the update, boot v2, and show a tampered package, a
downgrade, a UPK for another device and the locked debug port refused.

Exits 0 only if every step behaved as expected. It works in a temporary
directory unless --keep DIR is given, and must run inside the project's
source tree (it builds the example applications) unless --source is given.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return demo.Run(cmd.Context(), &demo.Options{Out: cio.stdout, Keep: keep, Source: source, Board: board})
		},
	}
	f := cmd.Flags()
	f.StringVar(&keep, "keep", "", "work in DIR and keep the files")
	f.StringVar(&source, "source", "", "the project's source tree (default: found from the working directory)")
	f.StringVar(&board, "board", "default", "the virtual device's board")
	registerCompletion(cmd, "board", completeBoard)
	return cmd
}
