package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// usageError marks an error caused by how the command was called (bad flag,
// wrong number of arguments, invalid flag value). It maps to exit code 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usagef returns a usage error with a formatted message.
func usagef(format string, a ...any) error {
	return &usageError{fmt.Errorf(format, a...)}
}

// cliIO carries the streams commands write to.
type cliIO struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

func newRootCmd(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	cio := &cliIO{stdin: stdin, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "sbm",
		Short: "Secure Boot Manager toolchain: keys, signed and encrypted packages, UPKs, virtual devices",
		Long: `sbm is the OEM toolchain of the Secure Boot Manager: it creates the security
context (keys and certificates), builds signed and encrypted image packages,
issues Update Protection Keys (UPKs) that individualise a package for one
device or a device class, and verifies them. It also runs virtual
microcontrollers ("sbm device"), provisions them at birth over their debug
port ("sbm provision"), programs packages into them over their UART ("sbm
program") and verifies their attestation tokens ("sbm attest").

Exit codes: 0 success; 1 a verification or security check failed, or the
operation could not be completed; 2 usage error. With --json a command
prints one JSON object whose field names docs/cli.md lists.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(flagError)
	root.AddCommand(newVersionCmd(cio))
	for _, add := range commandGroups {
		root.AddCommand(add(cio))
	}
	groupCommands(root)
	return root
}

// commandGroups holds the constructors of the top-level commands. Each
// command group registers itself from its own file's init function, so that
// groups can be added without editing this file.
var commandGroups []func(*cliIO) *cobra.Command

// exactArgs is cobra.ExactArgs returning a usage error.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("%s: expected %d argument(s), got %d (see %s --help)", cmd.CommandPath(), n, len(args), cmd.CommandPath())
		}
		return nil
	}
}

// noArgs rejects positional arguments with a usage error.
func noArgs(cmd *cobra.Command, args []string) error { return exactArgs(0)(cmd, args) }

// isUsageError reports whether err was caused by how sbm was called.
func isUsageError(err error) bool {
	var ue *usageError
	if errors.As(err, &ue) {
		return true
	}
	// Cobra reports unknown commands and flags with plain errors.
	msg := err.Error()
	return strings.HasPrefix(msg, "unknown command") || strings.HasPrefix(msg, "unknown flag") ||
		strings.HasPrefix(msg, "unknown shorthand flag")
}

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
