package main

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/sbm-project/sbm/hal"
)

// requireFlags returns a usage error naming every flag in names that was
// not given a value, or nil if all were.
func requireFlags(cmd *cobra.Command, names ...string) error {
	var missing []string
	for _, n := range names {
		f := cmd.Flags().Lookup(n)
		if f == nil {
			panic("requireFlags: no flag --" + n)
		}
		if f.Value.String() == "" {
			missing = append(missing, "--"+n)
		}
	}
	switch len(missing) {
	case 0:
		return nil
	case 1:
		return usagef("%s is required (see %s --help)", missing[0], cmd.CommandPath())
	}
	list := strings.Join(missing[:len(missing)-1], ", ") + " and " + missing[len(missing)-1]
	return usagef("%s are required (see %s --help)", list, cmd.CommandPath())
}

// counterValue is a pflag.Value for an anti-rollback security counter: a
// whole number from 0 to hal.CounterMax, the range of the device's fuse
// counter. A package with a larger counter could never be installed.
type counterValue uint32

// errCounterRange is the reason a --security-counter value is refused.
var errCounterRange = fmt.Errorf("must be a whole number from 0 to %d", hal.CounterMax)

func (c *counterValue) String() string { return strconv.FormatUint(uint64(*c), 10) }
func (c *counterValue) Type() string   { return "N" }

// Set parses a decimal counter value.
func (c *counterValue) Set(s string) error {
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil || v > hal.CounterMax {
		return errCounterRange
	}
	*c = counterValue(v)
	return nil
}

// flagError turns pflag's errors for a bad flag value into usage errors
// that name the flag and say what it wants, instead of quoting strconv.
func flagError(_ *cobra.Command, err error) error {
	var ive *pflag.InvalidValueError
	if errors.As(err, &ive) {
		f := ive.GetFlag()
		reason := valueReason(f.Value.Type())
		if reason == nil {
			reason = ive.Unwrap()
		}
		return usagef("--%s %s: %v", f.Name, strconv.Quote(ive.GetValue()), reason)
	}
	return &usageError{err}
}

// valueReason says what a flag of pflag type typ accepts, or returns nil
// for a type whose own error says it.
func valueReason(typ string) error {
	switch typ {
	case "uint", "uint64":
		return errors.New("must be a whole number of 0 or more")
	case "uint8", "uint16", "uint32":
		bits, _ := strconv.Atoi(strings.TrimPrefix(typ, "uint"))
		return fmt.Errorf("must be a whole number from 0 to %d", uint64(1)<<bits-1)
	case "int", "int8", "int16", "int32", "int64":
		return errors.New("must be a whole number")
	case "float32", "float64":
		return errors.New("must be a number")
	case "bool":
		return errors.New("must be true or false")
	case "duration":
		return errors.New("must be a duration such as 500ms, 10s or 2m")
	}
	return nil
}

// semverRE is the regular expression of semantic versioning 2.0.0
// (semver.org).
var semverRE = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)` +
	`(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?` +
	`(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)

// maxVersionLen is the longest version a manifest holds.
const maxVersionLen = 64

// checkVersionFlag returns a usage error unless v is a semantic version
// of at most maxVersionLen bytes.
func checkVersionFlag(v string) error {
	if !semverRE.MatchString(v) {
		return usagef("--version %q: not a semantic version MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD] such as 1.0.0", v)
	}
	if len(v) > maxVersionLen {
		return usagef("--version: longer than %d bytes", maxVersionLen)
	}
	return nil
}

// groupCommands makes every command that only groups subcommands (and, in
// the tree below root, has no action of its own) print its help when
// called alone and refuse an unknown subcommand with a usage error that
// names it. Cobra would otherwise print the group's help and exit 0.
func groupCommands(root *cobra.Command) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.HasSubCommands() && c.Run == nil && c.RunE == nil {
			c.Args = cobra.ArbitraryArgs
			c.RunE = runGroup
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// runGroup is the action of a command group: its help without arguments,
// a usage error naming an unknown subcommand otherwise.
func runGroup(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return cmd.Help()
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %q?", s[0])
	}
	return usagef("%s (see %s --help)", msg, cmd.CommandPath())
}
