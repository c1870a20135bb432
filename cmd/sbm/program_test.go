package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestProgressLine: on a terminal the line is redrawn in place at most every
// 100 ms and cleared at the end; elsewhere a plain line every 10 s and
// nothing at the end (the summary follows). Units are KiB and KiB/s, and no
// rate is shown in the first second.
func TestProgressLine(t *testing.T) {
	type step struct {
		at   time.Duration
		sent int
	}
	total := 1 << 20
	steps := []step{{0, 8 << 10}, {50 * time.Millisecond, 16 << 10}, {200 * time.Millisecond, 64 << 10},
		{1500 * time.Millisecond, 256 << 10}, {11 * time.Second, 512 << 10}, {12 * time.Second, total}}
	tests := []struct {
		name string
		tty  bool
		want string
	}{
		{"terminal", true, "\rprogramming   0%  8.0 of 1024.0 KiB" +
			"\rprogramming   6%  64.0 of 1024.0 KiB" +
			"\rprogramming  25%  256.0 of 1024.0 KiB  165.3 KiB/s" +
			"\rprogramming  50%  512.0 of 1024.0 KiB  45.8 KiB/s" +
			"\rprogramming 100%  1024.0 of 1024.0 KiB  84.7 KiB/s" +
			"\r" + strings.Repeat(" ", 50) + "\r"},
		{"log", false, "programming  50%  512.0 of 1024.0 KiB  45.8 KiB/s\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			p := newProgressLine(&buf, tt.tty)
			t0 := time.Unix(1000, 0)
			var now time.Time
			p.now = func() time.Time { return now }
			for _, s := range steps {
				now = t0.Add(s.at)
				p.update(s.sent, total)
			}
			p.finish()
			got := buf.String()
			if tt.tty {
				got = trimPadding(got) // lines are padded to the previous one's length
			}
			if got != tt.want {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
	var p *progressLine // --quiet
	p.update(1, 2)
	p.finish()
}

// trimPadding removes the spaces that pad a redrawn line before the next
// carriage return, keeping the final clearing line.
func trimPadding(s string) string {
	parts := strings.Split(s, "\r")
	for i := 1; i < len(parts)-2; i++ {
		parts[i] = strings.TrimRight(parts[i], " ")
	}
	return strings.Join(parts, "\r")
}
