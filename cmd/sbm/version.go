package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/sbm-project/sbm/sbm"
)

// buildVersion returns what the binary knows about its own build: module
// path and version, Go version and, when it was built with go build or go
// install in a VCS checkout, the revision, its time and whether the tree
// had local modifications.
func buildVersion() *jsonVersion {
	bi, _ := debug.ReadBuildInfo()
	return versionFrom(bi)
}

// versionFrom returns the version information of build info bi (nil if
// the binary has none).
func versionFrom(bi *debug.BuildInfo) *jsonVersion {
	v := &jsonVersion{Module: "github.com/sbm-project/sbm", ModuleVersion: "(devel)", GoVersion: runtime.Version()}
	v.SBM.Version = sbm.Version
	if bi == nil {
		return v
	}
	if bi.Main.Path != "" {
		v.Module = bi.Main.Path
	}
	if bi.Main.Version != "" {
		v.ModuleVersion = bi.Main.Version
	}
	if bi.GoVersion != "" {
		v.GoVersion = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.VCSRevision = strOrNil(s.Value)
		case "vcs.time":
			v.VCSTime = strOrNil(s.Value)
		case "vcs.modified":
			m := s.Value == "true"
			v.VCSModified = &m
		}
	}
	return v
}

func newVersionCmd(cio *cliIO) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version of the sbm tool: module version, VCS revision, Go version",
		Long: `Print the module version of the sbm tool, the VCS revision it was built
from (with "modified" if the working tree had local changes), the Go version,
and the version of the SBM it installs at provisioning. The revision is
known only for a binary built with go build or go install inside a git
checkout, without -buildvcs=false (go run does not record it).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			v := buildVersion()
			if asJSON {
				return printJSON(cio.stdout, v)
			}
			rev := "unknown (no VCS stamp: built by go run, with -buildvcs=false, or outside a git checkout)"
			if v.VCSRevision != nil {
				rev = *v.VCSRevision
				if v.VCSTime != nil {
					rev += " (" + *v.VCSTime + ")"
				}
				if v.VCSModified != nil && *v.VCSModified {
					rev += ", modified"
				}
			}
			fmt.Fprintf(cio.stdout, "sbm %s\n", v.ModuleVersion)
			fmt.Fprintf(cio.stdout, "module:      %s\n", v.Module)
			fmt.Fprintf(cio.stdout, "revision:    %s\n", rev)
			fmt.Fprintf(cio.stdout, "go:          %s\n", v.GoVersion)
			fmt.Fprintf(cio.stdout, "SBM version: %s\n", v.SBM.Version)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
