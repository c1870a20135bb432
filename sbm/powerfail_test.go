package sbm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/sbm/mailbox"
	"github.com/sbm-project/sbm/vmcu"
	"github.com/sbm-project/sbm/wire"
)

// on returns a copy of v bound to device d (a clone in a sweep).
func (v *dev) on(d *vmcu.Device) *dev {
	return &dev{t: v.t, d: d, c: v.c, ka: v.ka, cert: v.cert}
}

// powerOn runs one power-on of the SBM on d and returns how it stopped
// (errors other than a crash are the sweep's business).
func (v *dev) powerOn(warm, recovery bool) (vmcu.Stop, error) {
	v.launched, v.recovered = nil, false
	st, err := v.d.PowerOn(context.Background(), v.firmware(), vmcu.PowerOnOptions{Warm: warm, Recovery: recovery})
	if err == nil && st.Reason == vmcu.StopCrashed {
		err = fmt.Errorf("firmware crashed: %v", st.Panic)
	}
	return st, err
}

// serves checks that the device answers INFO in recovery (never bricked).
func (v *dev) serves() error {
	var info wire.DeviceInfo
	var ierr error
	v.session = func(tg wire.Target) { ierr = info.DecodeCBOR(tg.Info(nil)) }
	if _, err := v.powerOn(false, true); err != nil {
		return err
	}
	if !v.recovered || ierr != nil {
		return fmt.Errorf("recovery does not serve INFO (recovered %v, %v)", v.recovered, ierr)
	}
	id := v.d.ID()
	if !bytes.Equal(info.ID, id[:]) {
		return errors.New("INFO names another device")
	}
	return nil
}

// writeMailbox puts a request frame into d's RAM.
func writeMailbox(d *vmcu.Device, req *mailbox.Request) error {
	frame, err := mailbox.Frame(nil, mailbox.MagicRequest, mailbox.EncodeRequest(nil, req))
	if err != nil {
		return err
	}
	return d.DebugPort().Write(context.Background(), vmcu.RAMBase+mailbox.Offset, frame)
}

// TestPowerFailStorageCommit cuts power (clean and torn) at every flash
// operation of the provisioning commit and of the certificate commit: the
// state is always the old or the new one, and the device still serves.
func TestPowerFailStorageCommit(t *testing.T) {
	v := newDev(t, ctxA, 20)
	v.programRootHash(ctxA)
	base := v.d.Clone()

	provision := func(d *vmcu.Device) error {
		if err := writeMailbox(d, provisionRequest(t, ctxA, true)); err != nil {
			return err
		}
		_, err := v.on(d).powerOn(true, false)
		return err
	}
	check := func(d *vmcu.Device, cut vmcu.PowerCut) error {
		w := v.on(d)
		st, err := ReadState(d.Flash(hal.PrivSBM), d.PUF())
		if err != nil {
			return err
		}
		switch {
		case st.Lifecycle == wire.LifecycleBlank && st.Seq == 0:
		case st.Lifecycle == wire.LifecycleProvisioned && st.Seq == 1 && st.SecurityCounter == 1:
		default:
			return fmt.Errorf("inconsistent state %+v", st)
		}
		if err := w.serves(); err != nil {
			return err
		}
		// Provisioning can be retried and then completes.
		if st.Lifecycle == wire.LifecycleBlank {
			if err := provision(d); err != nil {
				return err
			}
			if st, _ := ReadState(d.Flash(hal.PrivSBM), d.PUF()); st.Lifecycle != wire.LifecycleProvisioned {
				return errors.New("retry did not provision")
			}
		}
		return nil
	}
	n, err := vmcu.Sweep(base, provision, check, vmcu.SweepOptions{Clean: true, TornSeeds: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("provisioning commit: %d cut points", n)

	// The certificate commit, on a provisioned device.
	v.exchange(provisionRequest(t, ctxA, true))
	v.provisionCertOnly(t)
	base = v.d.Clone()
	certReq := &mailbox.Request{Op: mailbox.OpInstallCertificate, Certificate: v.cert.Raw}
	install := func(d *vmcu.Device) error {
		if err := writeMailbox(d, certReq); err != nil {
			return err
		}
		_, err := v.on(d).powerOn(true, false)
		return err
	}
	check = func(d *vmcu.Device, cut vmcu.PowerCut) error {
		st, err := ReadState(d.Flash(hal.PrivSBM), d.PUF())
		if err != nil {
			return err
		}
		if st.Lifecycle != wire.LifecycleProvisioned || (st.Certificate != nil && !bytes.Equal(st.Certificate, v.cert.Raw)) {
			return fmt.Errorf("inconsistent state %+v", st)
		}
		w := v.on(d)
		if err := w.serves(); err != nil {
			return err
		}
		if st.Certificate == nil {
			if err := install(d); err != nil {
				return err
			}
			if st, _ := ReadState(d.Flash(hal.PrivSBM), d.PUF()); !bytes.Equal(st.Certificate, v.cert.Raw) {
				return errors.New("retry did not store the certificate")
			}
		}
		// The keys survived: a UPK for the certified key installs.
		rel := newRelease(t, ctxA, appData(1500, 1), "1.0.0", 1)
		if err := w.install(rel.forDevice(w)); err != nil {
			return fmt.Errorf("install after cut: %w", err)
		}
		return nil
	}
	n2, err := vmcu.Sweep(base, install, check, vmcu.SweepOptions{Clean: true, TornSeeds: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("certificate commit: %d cut points", n2)
	if n < 3 || n2 < 3 {
		t.Fatalf("too few operations: %d, %d", n, n2)
	}
}

// provisionCertOnly issues the certificate for the keys the device just
// answered with (without installing it).
func (v *dev) provisionCertOnly(t *testing.T) {
	ka, err := v.c.Suite().KeyAgreementCurve().NewPublicKey(v.exchangeKA(t))
	if err != nil {
		t.Fatal(err)
	}
	v.ka = ka
	resp := v.exchange(provisionRequest(t, v.c, true)) // re-provision: no certificate yet, allowed
	if resp.Code != 0 {
		t.Fatal(resp.Detail)
	}
	csr, err := parseCSR(resp.CSR)
	if err != nil {
		t.Fatal(err)
	}
	v.ka, _ = v.c.Suite().KeyAgreementCurve().NewPublicKey(resp.KeyAgreement)
	id := v.d.ID()
	if v.cert, err = v.c.IssueDeviceCertificate(csr, id[:], v.ka, fixedNow); err != nil {
		t.Fatal(err)
	}
}

// TestPowerFailInstall cuts power (clean and torn) at every flash
// operation of a whole install — staging writes, the pending marker, the
// primary erase and program, the final commit — and, when the cut leaves
// an install pending, once more during the resume. After an
// uninterrupted boot the device runs the old or the new application,
// byte for byte, with a consistent table; the new one whenever the
// package had been authenticated; and recovery always serves.
func TestPowerFailInstall(t *testing.T) {
	v := newDev(t, ctxA, 21)
	v.provision(false)
	rel1 := newRelease(t, ctxA, appData(5000, 1), "1.0.0", 1)
	if err := v.install(rel1.forDevice(v)); err != nil {
		t.Fatal(err)
	}
	rel2 := newRelease(t, ctxA, appData(6<<10, 2), "2.0.0", 2)
	pkg2 := rel2.forDevice(v)
	base := v.d.Clone()

	scenario := func(d *vmcu.Device) error {
		w := v.on(d)
		var ierr error
		w.session = func(tg wire.Target) { ierr = send(tg, pkg2, 1000) }
		if _, err := w.powerOn(false, true); err != nil {
			return err
		}
		return ierr
	}
	resumed := 0
	check := func(d *vmcu.Device, cut vmcu.PowerCut) error {
		st0, err := ReadState(d.Flash(hal.PrivSBM), d.PUF())
		if err != nil {
			return err
		}
		authenticated := st0.InstallPending || st0.App != nil && st0.App.Version == "2.0.0"
		w := v.on(d)
		if st0.InstallPending {
			// Power fails again during the resume.
			resumed++
			d.ArmPowerCut(vmcu.PowerCut{At: 1 + cut.At%7, Torn: cut.Torn, Seed: cut.Seed + 100})
			if _, err := w.powerOn(false, false); err != nil {
				return err
			}
			d.DisarmPowerCut()
		}
		if _, err := w.powerOn(false, false); err != nil {
			return err
		}
		want, other := rel1, rel2
		if authenticated {
			want, other = rel2, rel1
		}
		if w.launched == nil {
			return fmt.Errorf("nothing launched (authenticated %v)", authenticated)
		}
		if w.launched.Version != want.version {
			return fmt.Errorf("launched %s, want %s (authenticated %v)", w.launched.Version, want.version, authenticated)
		}
		primary := w.region(hal.RegionPrimary)
		if !bytes.Equal(primary[:len(want.data)], want.data) || bytes.Equal(primary[:len(other.data)], other.data) {
			return errors.New("primary slot is not exactly the launched application")
		}
		st, _ := ReadState(d.Flash(hal.PrivSBM), d.PUF())
		wantCounter := uint32(1)
		if authenticated {
			wantCounter = 2
		}
		if st.App == nil || st.App.Digest != sha256.Sum256(want.data) || st.SecurityCounter != wantCounter || st.InstallPending {
			return fmt.Errorf("inconsistent table %+v", st)
		}
		return w.serves()
	}
	n, err := vmcu.Sweep(base, scenario, check, vmcu.SweepOptions{Clean: true, TornSeeds: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("install: %d cut points, %d left an install pending", n, resumed)
	if n < 20 || resumed == 0 {
		t.Fatalf("sweep too small: %d cut points, %d resumed", n, resumed)
	}
}
