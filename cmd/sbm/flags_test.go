package main

import (
	"bytes"
	"testing"
)

func TestCounterValue(t *testing.T) {
	tests := []struct {
		in   string
		want uint32
		ok   bool
	}{
		{"0", 0, true},
		{"1", 1, true},
		{"256", 256, true},
		{"257", 0, false},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"0x10", 0, false},
		{"", 0, false},
		{"99999999999", 0, false},
	}
	for _, tt := range tests {
		var c counterValue
		err := c.Set(tt.in)
		if (err == nil) != tt.ok || tt.ok && uint32(c) != tt.want {
			t.Errorf("Set(%q) = %d, %v; want %d, ok %v", tt.in, c, err, tt.want, tt.ok)
		}
	}
}

func TestCheckVersionFlag(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"1.0.0", true},
		{"2.0.0-rc.1+build.7", true},
		{"0.0.1", true},
		{"1.0", false},
		{"v1.0.0", false},
		{"01.0.0", false},
		{"1.0.0-", false},
		{"1.0.0+" + string(bytes.Repeat([]byte("a"), 60)), false},
	}
	for _, tt := range tests {
		if err := checkVersionFlag(tt.in); (err == nil) != tt.ok {
			t.Errorf("checkVersionFlag(%q) = %v, want ok %v", tt.in, err, tt.ok)
		} else if err != nil && !isUsageError(err) {
			t.Errorf("checkVersionFlag(%q) = %v, not a usage error", tt.in, err)
		}
	}
}

func TestOutcomeText(t *testing.T) {
	tests := []struct {
		o    outcome
		want string
	}{
		{outcome{Result: "installed", Detail: "installed 1.0.0"}, "installed 1.0.0"},
		{outcome{Result: "no application", Detail: "no application installed"}, "no application installed"},
		{outcome{Result: "refused: bad signature", Detail: "manifest signature"}, "refused: bad signature (manifest signature)"},
		{outcome{Result: "installed"}, "installed"},
	}
	for _, tt := range tests {
		if got := tt.o.text(); got != tt.want {
			t.Errorf("%+v.text() = %q, want %q", tt.o, got, tt.want)
		}
	}
}

func TestTrimWriter(t *testing.T) {
	var b bytes.Buffer
	w := &trimWriter{w: &b}
	for _, s := range []string{"a  \nb", "  ", "\n  c\n"} {
		if _, err := w.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := b.String(), "a\nb\n  c\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestSize(t *testing.T) {
	tests := []struct {
		n    uint32
		want string
	}{
		{8 << 20, "8 MiB"}, {4 << 10, "4 KiB"}, {100, "100 B"}, {1536, "1536 B"}, {3584 << 10, "3584 KiB"},
	}
	for _, tt := range tests {
		if got := size(tt.n); got != tt.want {
			t.Errorf("size(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}
