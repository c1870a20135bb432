// Command sbm is the OEM toolchain and virtual hardware of the Secure Boot
// Manager project: security contexts, signed and encrypted image packages,
// Update Protection Keys, virtual microcontrollers, provisioning and
// programming.
//
// Exit codes: 0 success, 1 failure (a verification or security check failed,
// or an operation could not be completed), 2 usage error.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes the CLI with args and returns the process exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	root := newRootCmd(stdin, stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "sbm: %v\n", err)
	if isUsageError(err) {
		return 2
	}
	return 1
}
