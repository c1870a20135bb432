package sbm

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/vmcu"
)

// TestPowerFailUpdate cuts power (clean and torn) at every flash operation
// of an application-requested update — the request commit, the
// authentication (reads only), the pending marker, the primary erase and
// program, the final commit — and, when the cut leaves a request or an
// install pending, once more during the next boot's update or resume.
// After an uninterrupted boot the device runs the old or the new
// application byte for byte with a consistent table and counter, the new
// one whenever the request had been recorded (the package is good), and
// recovery always serves. A second sweep does the same with a package
// that fails authentication: the old application always survives.
func TestPowerFailUpdate(t *testing.T) {
	v, rel1 := withV1(t, ctxA, 43)
	rel2 := newRelease(t, ctxA, appData(6<<10, 2), "2.0.0", 3)
	good := rel2.forDevice(v)
	bad := bytes.Clone(good)
	bad[len(bad)-5] ^= 1
	for _, tc := range []struct {
		name string
		pkg  []byte
		ok   bool
	}{{"good", good, true}, {"bad last chunk", bad, false}} {
		t.Run(tc.name, func(t *testing.T) {
			// The base: the package already staged by the application,
			// padded to whole words so that nothing waits in the buffer of
			// this boot's services.
			w := v.on(v.d.Clone())
			w.t = t
			padded := append(bytes.Clone(tc.pkg), bytes.Repeat([]byte{0xFF}, 8-len(tc.pkg)%8)...)
			w.run(func(s Services) { stage(t, s, padded) })
			base := w.d.Clone()

			scenario := func(d *vmcu.Device) error {
				x := v.on(d)
				x.t = t
				x.app = func(a *AppInfo) { a.Services.RequestUpdate() }
				if _, err := x.powerOn(true, false); err != nil {
					return err
				}
				x.app = nil
				_, err := x.powerOn(true, false) // the reset: the SBM updates
				return err
			}
			second := 0
			check := func(d *vmcu.Device, cut vmcu.PowerCut) error {
				st0, err := ReadState(d.Flash(hal.PrivSBM), d.PUF())
				if err != nil {
					return err
				}
				// The request itself lives in RAM, lost with the power:
				// it counts as made once the install has begun.
				requested := st0.InstallPending || st0.App.Version == "2.0.0"
				x := v.on(d)
				x.t = t
				if st0.InstallPending {
					second++
					d.ArmPowerCut(vmcu.PowerCut{At: 1 + cut.At%9, Torn: cut.Torn, Seed: cut.Seed + 100})
					if _, err := x.powerOn(false, false); err != nil {
						return err
					}
					d.DisarmPowerCut()
				}
				if _, err := x.powerOn(false, false); err != nil {
					return err
				}
				want, other := rel1, rel2
				if requested && tc.ok {
					want, other = rel2, rel1
				}
				if x.launched == nil {
					return fmt.Errorf("nothing launched (requested %v)", requested)
				}
				if x.launched.Version != want.version {
					return fmt.Errorf("launched %s, want %s (requested %v)\n%s", x.launched.Version, want.version, requested, x.log.String())
				}
				primary := x.region(hal.RegionPrimary)
				if !bytes.Equal(primary[:len(want.data)], want.data) || bytes.Equal(primary[:len(other.data)], other.data) {
					return errors.New("primary slot is not exactly the launched application")
				}
				st, _ := ReadState(d.Flash(hal.PrivSBM), d.PUF())
				wantCounter := uint32(2)
				if want == rel2 {
					wantCounter = 3
				}
				if st.App == nil || st.App.Digest != sha256.Sum256(want.data) || st.SecurityCounter != wantCounter ||
					st.InstallPending || st.UpdateRequested {
					return fmt.Errorf("inconsistent table %+v", st)
				}
				if requested && (!st.HasLastUpdate || (st.LastUpdate == 0) != tc.ok) {
					return fmt.Errorf("last update %d %q", st.LastUpdate, st.LastUpdateDetail)
				}
				return x.serves()
			}
			n, err := vmcu.Sweep(base, scenario, check, vmcu.SweepOptions{Clean: true, TornSeeds: 2})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %d cut points, %d with a second cut during the update or resume", tc.name, n, second)
			if !tc.ok {
				// A rejected update performs no flash operation at all:
				// there is nothing to cut.
				if n != 0 {
					t.Fatalf("a rejected update made %d flash operations", n)
				}
				return
			}
			if n < 9 || second == 0 {
				t.Fatalf("sweep too small: %d cut points, %d second cuts", n, second)
			}
		})
	}
}
