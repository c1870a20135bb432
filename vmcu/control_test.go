package vmcu

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sbm-project/sbm/hal"
)

func TestControlRequests(t *testing.T) {
	b, _ := LookupBoard("small")
	tests := []struct {
		line, want string
	}{
		{"status", "ok running=false halted=false ops=0 power-cuts=0"},
		{"", "error bad request: empty request"},
		{"reboot", "error bad request"},
		{"reset now", "error bad request"},
		{"power-cut", "error bad request: power-cut needs"},
		{"power-cut 0", "error invalid power cut"},
		{"power-cut x", "error invalid power cut"},
		{"power-cut 3 sideways", "error bad request: unknown power-cut option"},
		{"power-cut 3 seed=x", "error invalid power cut: bad seed"},
		{"flip primary", "error bad request"},
		{"flip nowhere 1 1", "error bad request"},
		{"flip primary 0 1", "error flip bits: want 1 to"},
		{"bad-sector 0x801 on", "error bad sector 0x801: misaligned access"},
		{"bad-sector 0x800 maybe", "error bad request"},
		{"status extra", "error bad request"},
	}
	for _, tt := range tests {
		d := NewMemory(b, 1)
		before := bytes.Clone(d.flash)
		got := d.handleControl(tt.line)
		if !strings.HasPrefix(got, tt.want) {
			t.Errorf("%q: got %q, want prefix %q", tt.line, got, tt.want)
		}
		if strings.HasPrefix(got, "error") {
			if !bytes.Equal(before, d.flash) || len(d.state.BadSectors) != 0 || d.state.PowerCut != nil {
				t.Errorf("%q: refused request changed the device", tt.line)
			}
		}
	}
	d := NewMemory(b, 1)
	if got := d.handleControl("power-cut 3 torn seed=0x10"); got != "ok" {
		t.Fatal(got)
	}
	if c, _ := d.ArmedPowerCut(); c != (PowerCut{At: 3, Torn: true, Seed: 16}) {
		t.Errorf("armed %+v", c)
	}
	if got := d.handleControl("flip appdata 4 2"); got != "ok" {
		t.Fatal(got)
	}
	if got := d.handleControl("bad-sector 0x800 on"); got != "ok" || len(d.state.BadSectors) != 1 {
		t.Fatal(got)
	}
}

func TestControlSocket(t *testing.T) {
	dir := newDir(t, "small")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := DialControl(ctx, dir); err == nil {
		t.Fatal("dialled the control socket of a stopped device")
	}
	d := runDevice(t, dir, Placeholder())
	c, err := DialControl(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.ArmPowerCut(ctx, PowerCut{At: 5}); err != nil {
		t.Fatal(err)
	}
	if pc, ok := d.ArmedPowerCut(); !ok || pc.At != 5 {
		t.Errorf("armed: %+v %v", pc, ok)
	}
	if err := c.FlipBits(ctx, hal.RegionStaging, 2, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(ctx, "nonsense"); err == nil || !strings.Contains(err.Error(), "bad request") {
		t.Errorf("nonsense: %v", err)
	}
	if _, err := c.Do(ctx, "a\nb"); err == nil {
		t.Error("newline in request accepted")
	}
	// An overlong line is refused and the device keeps serving.
	c.conn.Write([]byte(strings.Repeat("x", 300) + "\n"))
	line, _ := c.r.ReadString('\n')
	if !strings.HasPrefix(line, "error bad request") {
		t.Errorf("long line: %q", line)
	}
	c2, err := DialControl(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if s, err := c2.Status(ctx); err != nil || !strings.Contains(s, "running=true") {
		t.Errorf("status %q %v", s, err)
	}
}
