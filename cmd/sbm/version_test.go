package main

import (
	"runtime/debug"
	"testing"
)

// TestVersionFrom checks what sbm version reports from the build
// information the Go toolchain stamps into the binary.
func TestVersionFrom(t *testing.T) {
	stamped := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/sbm-project/sbm", Version: "v0.0.0-20261201204428-a29102096441+dirty"},
		Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "a29102096441a16a42e1fa47e254949324a383a7"},
			{Key: "vcs.time", Value: "2026-12-01T20:44:28Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	tests := []struct {
		name                 string
		bi                   *debug.BuildInfo
		version, revision    string
		modified, hasVCSInfo bool
	}{
		{"stamped", stamped, "v0.0.0-20261201204428-a29102096441+dirty", "a29102096441a16a42e1fa47e254949324a383a7", true, true},
		{"go run", &debug.BuildInfo{Main: debug.Module{Path: "github.com/sbm-project/sbm", Version: "(devel)"}}, "(devel)", "", false, false},
		{"no build info", nil, "(devel)", "", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := versionFrom(tt.bi)
			if v.ModuleVersion != tt.version {
				t.Errorf("module version %q, want %q", v.ModuleVersion, tt.version)
			}
			if (v.VCSRevision != nil) != tt.hasVCSInfo || v.VCSRevision != nil && *v.VCSRevision != tt.revision {
				t.Errorf("revision %v, want %q", v.VCSRevision, tt.revision)
			}
			if (v.VCSModified != nil) != tt.hasVCSInfo || v.VCSModified != nil && *v.VCSModified != tt.modified {
				t.Errorf("modified %v, want %v", v.VCSModified, tt.modified)
			}
			if v.Module != "github.com/sbm-project/sbm" || v.SBM.Version == "" || v.GoVersion == "" {
				t.Errorf("got %+v", v)
			}
		})
	}
}
