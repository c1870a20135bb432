package apphost

import (
	"context"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/vmcu"
)

// TestMeasurementMismatch: a byte of the application changed in flash after
// the SBM verified it (time of check vs. time of use) → Run refuses to run
// it, whether it maps the flash or reads a copy.
func TestMeasurementMismatch(t *testing.T) {
	for _, mapped := range []bool{true, false} {
		v := newDevice(t, apps["hello"])
		// Rewrite the first sector of the primary slot with one byte changed.
		f := v.d.Flash(hal.PrivSBM)
		g := f.Geometry()
		i, _ := g.SectorAt(v.app.Region.Start)
		sec := make([]byte, g.Sectors[i].Size)
		if err := f.Read(v.app.Region.Start, sec); err != nil {
			t.Fatal(err)
		}
		sec[100] ^= 0x01
		if err := f.Erase(v.app.Region.Start); err != nil {
			t.Fatal(err)
		}
		if err := f.Program(v.app.Region.Start, sec); err != nil {
			t.Fatal(err)
		}
		res := <-v.start(t.Context(), nil, hideMapper(!mapped))
		if !res.ran || !errors.Is(res.err, ErrMeasurement) {
			t.Errorf("mapped=%v: Run = %v, want ErrMeasurement", mapped, res.err)
		}
		time.Sleep(50 * time.Millisecond)
		if out := v.out.String(); out != "" {
			t.Errorf("mapped=%v: the application ran: %q", mapped, out)
		}
	}
}

// noMapper hides a flash's hal.Mapper.
type noMapper struct{ hal.Flash }

// hideMapper returns a start hook that hides the flash's Mapper if hide.
func hideMapper(hide bool) func(hw *hal.Hardware) {
	return func(hw *hal.Hardware) {
		if hide {
			hw.Flash, hw.AppFlash = noMapper{hw.Flash}, noMapper{hw.AppFlash}
		}
	}
}

// TestWithoutServicesOrMapper: without the SBM's services the application
// still runs, boot info comes from what the SBM verified, and every other
// service answers "service unavailable"; a flash without hal.Mapper is
// read into one buffer.
func TestWithoutServicesOrMapper(t *testing.T) {
	v := newDevice(t, apps["hello"])
	done := v.start(t.Context(), nil, hideMapper(true))
	v.waitFor("send a nonce")
	out := v.out.String()
	id := v.d.ID()
	for _, want := range []string{
		"hello: application 1.2.3 on SBM 0.1.0-test",
		"hello: device " + hex.EncodeToString(id[:]) + ", locked, security counter 7",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	v.send("00112233445566778899")
	v.waitFor("error: sdk: attest: service unavailable (code 102)")
	v.send("quit")
	if res := <-done; !res.ran || res.err != nil {
		t.Fatalf("Run: ran %v, err %v", res.ran, res.err)
	}
}

// TestStops: the application stops when the device is reset or its
// context is cancelled while it waits on the UART.
func TestStops(t *testing.T) {
	for _, how := range []string{"reset", "cancel"} {
		v := newDevice(t, apps["hello"])
		ctx, cancel := context.WithCancel(t.Context())
		done := v.start(ctx, nil, nil)
		v.waitFor("send a nonce")
		if how == "reset" {
			v.d.Reset(false)
		} else {
			cancel()
		}
		select {
		case res := <-done:
			want := map[string]vmcu.StopReason{"reset": vmcu.StopReset, "cancel": vmcu.StopCanceled}[how]
			if res.stop.Reason != want {
				t.Errorf("%s: device stopped with %v, want %v (Run: %v)", how, res.stop.Reason, want, res.err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the application did not stop", how)
		}
		cancel()
	}
}
