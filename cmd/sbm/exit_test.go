package main

import (
	"io"
	"strings"
	"testing"
)

// TestExitCodes checks the exit-code contract: 0 success, 1 failure, 2 usage.
func TestExitCodes(t *testing.T) {
	tests := []struct {
		args []string
		want int
	}{
		{[]string{"--help"}, 0},
		{[]string{"version"}, 0},
		{[]string{"no-such-command"}, 2},
		{[]string{"--no-such-flag"}, 2},
		{[]string{"version", "extra"}, 2},
		{[]string{"device"}, 0},
		{[]string{"device", "no-such-command"}, 2},
		{[]string{"device", "flash", "no-such-command"}, 2},
		{[]string{"image", "create", "--security-counter", "-1", "x"}, 2},
		{[]string{"image", "create", "--context", "c", "--version", "1.0", "--out", "o", "x"}, 2},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			if got := run(tt.args, strings.NewReader(""), io.Discard, io.Discard); got != tt.want {
				t.Errorf("run(%q) = %d, want %d", tt.args, got, tt.want)
			}
		})
	}
}
