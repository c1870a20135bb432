package main

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
)

func newVersionCmd(cio *cliIO) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of the sbm tool",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			v := "(devel)"
			if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
				v = bi.Main.Version
			}
			fmt.Fprintf(cio.stdout, "sbm %s\n", v)
			return nil
		},
	}
}
