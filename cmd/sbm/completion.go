package main

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/sbm-project/sbm/sim"
	"github.com/sbm-project/sbm/trust"
	"github.com/sbm-project/sbm/vmcu"
)

// Shell completion of flag values. Cobra's "completion" command generates
// the shell scripts; these functions give the values.

// boardNames returns the built-in boards' names with their descriptions
// (cobra shows the part after a tab as help).
func boardNames() []string {
	var names []string
	for _, b := range vmcu.Boards() {
		names = append(names, b.Name+"\t"+b.Description)
	}
	return names
}

// completeBoard completes --board: a built-in board name, or a board file.
func completeBoard(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if strings.ContainsAny(toComplete, `/\.`) {
		return []string{"toml"}, cobra.ShellCompDirectiveFilterFileExt
	}
	return boardNames(), cobra.ShellCompDirectiveNoFileComp
}

// completeBoardArg completes the NAME argument of 'sbm device boards'.
func completeBoardArg(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return boardNames(), cobra.ShellCompDirectiveNoFileComp
}

// fixedValues returns a completion function offering values.
func fixedValues(values ...string) cobra.CompletionFunc {
	return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return values, cobra.ShellCompDirectiveNoFileComp
	}
}

// suiteNames are the values of --suite.
var suiteNames = []string{
	string(trust.SuiteP256) + "\tECDSA P-256 and ECDH P-256",
	string(trust.SuiteEd25519) + "\tEd25519 and X25519",
}

// scenarioNames are the values of 'sbm device torture --scenario'.
func scenarioNames() []string { return sim.ScenarioNames }

// registerCompletion registers fn for flag name of cmd; it panics if the
// flag does not exist, so a renamed flag is noticed by the tests.
func registerCompletion(cmd *cobra.Command, name string, fn cobra.CompletionFunc) {
	if err := cmd.RegisterFlagCompletionFunc(name, fn); err != nil {
		panic(err)
	}
}
