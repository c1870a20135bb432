package sim

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/vmcu"
)

// TestPowerOff checks that a device powered off with PowerOff stays open,
// accepts a flash restore (which needs it unpowered) and boots again with
// StartDevice.
func TestPowerOff(t *testing.T) {
	b, err := vmcu.LookupBoard("small")
	if err != nil {
		t.Fatal(err)
	}
	d := vmcu.NewMemory(b, 1)
	boots := make(chan struct{}, 4)
	fw := vmcu.FirmwareFunc(func(ctx context.Context, hw *hal.Hardware) {
		boots <- struct{}{}
		<-ctx.Done()
	})
	wait := func() {
		t.Helper()
		select {
		case <-boots:
		case <-time.After(10 * time.Second):
			t.Fatal("the firmware did not boot")
		}
	}
	r := StartDevice(context.Background(), d, fw)
	wait()
	img, err := d.DumpFlash()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.RestoreFlash(img); !errors.Is(err, vmcu.ErrPoweredOn) {
		t.Fatalf("restore while running: %v, want ErrPoweredOn", err)
	}
	if err := r.PowerOff(); err != nil {
		t.Fatal(err)
	}
	if d.Running() {
		t.Fatal("the device still runs after PowerOff")
	}
	if err := d.RestoreFlash(img); err != nil {
		t.Fatalf("restore after PowerOff: %v", err)
	}
	r = StartDevice(context.Background(), d, fw)
	wait()
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
}
