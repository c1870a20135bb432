package sim

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/image"
	"github.com/sbm-project/sbm/internal/firmware"
	"github.com/sbm-project/sbm/sbm"
	"github.com/sbm-project/sbm/upk"
	"github.com/sbm-project/sbm/vmcu"
	"github.com/sbm-project/sbm/wire"
)

// tapp is one application version of a scenario and its package for the
// torture device.
type tapp struct {
	version string
	counter uint32
	data    []byte
	digest  [32]byte
	pkg     []byte // container with a device UPK
}

// scenario is a flow to sweep.
type scenario struct {
	base *vmcu.Device
	// apps are the versions in install order; apps[0] is the one the
	// base device runs (nil: no application).
	apps []*tapp
	// run brings the device from whatever state it is in to the newest
	// application; it returns errPowerLost if a cut fired.
	run func(r *rig) error
	// filter, if set, limits the cut points to the operations it accepts.
	filter func(op vmcu.Op) bool
	// all cuts every eligible operation even in a reduced sweep.
	all bool
}

// index returns the index in apps of the application the state's
// signature table names (-1 if none of them).
func (sc *scenario) index(st *sbm.State) int {
	for k, a := range sc.apps {
		switch {
		case a == nil && st.App == nil:
			return k
		case a != nil && st.App != nil && st.App.Digest == a.digest:
			return k
		}
	}
	return -1
}

// check verifies the device after a boot: it runs a complete application
// apps[k] with k >= atLeast (k == atLeast if exact), byte for byte, with a
// signature table and counter that match it and no install pending; or,
// if apps[k] is nil, it is in recovery with no application recorded.
func (sc *scenario) check(r *rig, atLeast int, exact bool) error {
	st, err := r.state()
	if err != nil {
		return err
	}
	if st.InstallPending || st.UpdateRequested {
		return errors.New("an install or update request is still pending after an uninterrupted boot")
	}
	k := sc.index(st)
	if k < 0 {
		return fmt.Errorf("the signature table names an unknown application (%+v)", st.App)
	}
	if k < atLeast || exact && k != atLeast {
		return fmt.Errorf("the device has application #%d, want #%d (authenticated update lost?)", k, atLeast)
	}
	a := sc.apps[k]
	if a == nil {
		if r.launched != nil {
			return fmt.Errorf("launched %s with no application in the table", r.launched.Version)
		}
		if !r.recovered {
			return errors.New("no application and no recovery: bricked")
		}
		return nil
	}
	if r.launched == nil {
		return fmt.Errorf("the SBM launched nothing (table has %s): bricked or mixed image", a.version)
	}
	if r.launched.Digest != a.digest || r.launched.Version != a.version {
		return fmt.Errorf("launched %s, table has %s", r.launched.Version, a.version)
	}
	p, err := r.primary(len(a.data))
	if err != nil {
		return err
	}
	if !bytes.Equal(p, a.data) {
		return fmt.Errorf("the primary slot is not exactly %s", a.version)
	}
	for j, o := range sc.apps {
		if j != k && o != nil && len(o.data) == len(a.data) && bytes.Equal(p, o.data) {
			return errors.New("the primary slot matches two versions")
		}
	}
	if st.App.SecurityCounter != a.counter || st.SecurityCounter != a.counter {
		return fmt.Errorf("security counter %d (entry %d), want %d", st.SecurityCounter, st.App.SecurityCounter, a.counter)
	}
	// The anti-rollback fuse follows the table (a cut between the table
	// commit and the fuse write is completed by the boot just made).
	fuse, err := hal.ReadCounter(r.d.Fuses(), sbm.FuseSecurityCounter)
	if err != nil {
		return err
	}
	if uint32(fuse) != a.counter {
		return fmt.Errorf("anti-rollback fuse counter %d, table counter %d", fuse, a.counter)
	}
	return nil
}

// release builds version v of an n-byte application for the torture
// device, with a device UPK.
func (e *tortureEnv) release(version string, counter uint32, n int, tag byte) (*tapp, error) {
	rng := rand.New(rand.NewPCG(seedFor(e.opts.Seed, "app", version), 2))
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(rng.Uint32()) ^ tag
	}
	cr, err := image.Create(e.ctx, &firmware.Image{Data: data, Format: firmware.FormatBinary},
		&image.CreateOptions{Version: version, SecurityCounter: counter, ChunkSize: 1024, Now: tortureNow})
	if err != nil {
		return nil, err
	}
	ka, err := e.ctx.Suite().KeyAgreementCurve().NewPublicKey(e.prov.ka)
	if err != nil {
		return nil, err
	}
	id := e.prov.d.ID()
	u, err := upk.Issue(e.ctx, cr.Package.Manifest, &cr.CEK, upk.Recipient{Kind: upk.Device, Key: ka, DeviceID: id[:]}, &upk.Options{Now: tortureNow})
	if err != nil {
		return nil, err
	}
	p := image.Package{Manifest: cr.Package.Manifest, UPKs: [][]byte{u}, Payload: cr.Package.Payload}
	pkg, err := p.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return &tapp{version: version, counter: counter, data: data, digest: sha256.Sum256(data), pkg: pkg}, nil
}

// releases builds versions 1.0.0, 2.0.0, ... of n bytes each.
func (e *tortureEnv) releases(count, n int) ([]*tapp, error) {
	var out []*tapp
	for i := 1; i <= count; i++ {
		a, err := e.release(fmt.Sprintf("%d.0.0", i), uint32(i), n, byte(i))
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// installed returns a clone of the provisioned device with a installed
// through a recovery session.
func (e *tortureEnv) installed(a *tapp) (*vmcu.Device, error) {
	r := e.rig(e.prov.d.Clone())
	if err := r.installTarget(a.pkg); err != nil {
		return nil, err
	}
	if err := r.bootToApp(false, false); err != nil {
		return nil, err
	}
	if r.launched == nil || r.launched.Digest != a.digest {
		return nil, fmt.Errorf("base device: %s does not run", a.version)
	}
	return r.d, nil
}

// installTarget sends pkg through one recovery session's Target (the
// recovery pin held), then follows the SBM's reset into the application.
func (r *rig) installTarget(pkg []byte) error {
	var ierr error
	r.session = func(_ hal.UART, t wire.Target, sys hal.System) bool {
		ierr = sendTarget(t, pkg, 1000)
		return true
	}
	if err := r.bootToApp(false, true); err != nil {
		return err
	}
	return ierr
}

// targetRun returns a run that boots (resuming any pending install) and
// installs, through recovery sessions, every version above the one the
// device holds.
func targetRun(sc *scenario) func(r *rig) error {
	return func(r *rig) error {
		if err := r.bootToApp(false, false); err != nil {
			return err
		}
		st, err := r.state()
		if err != nil {
			return err
		}
		k := sc.index(st)
		if k < 0 {
			return errors.New("unknown application installed")
		}
		for _, a := range sc.apps[k+1:] {
			if err := r.installTarget(a.pkg); err != nil {
				return err
			}
		}
		return nil
	}
}

// prepare builds scenario name; skip says why it cannot run.
func (e *tortureEnv) prepare(name string) (sc *scenario, skip string, err error) {
	n := e.opts.Size
	switch name {
	case ScenarioUART:
		apps, err := e.releases(1, n)
		if err != nil {
			return nil, "", err
		}
		sc = &scenario{base: e.prov.d.Clone(), apps: []*tapp{nil, apps[0]}}
		sc.run = func(r *rig) error { return r.programUART(apps[0].pkg) }
		return sc, "", nil
	case ScenarioRecovery:
		apps, err := e.releases(2, n)
		if err != nil {
			return nil, "", err
		}
		base, err := e.installed(apps[0])
		if err != nil {
			return nil, "", err
		}
		sc = &scenario{base: base, apps: apps}
		sc.run = targetRun(sc)
		return sc, "", nil
	case ScenarioCommits:
		apps, err := e.releases(3, min(n, 1024))
		if err != nil {
			return nil, "", err
		}
		base, err := e.installed(apps[0])
		if err != nil {
			return nil, "", err
		}
		sc = &scenario{base: base, apps: apps, all: true}
		sc.run = targetRun(sc)
		sc.filter = func(op vmcu.Op) bool { return inSecure(e.board, op) }
		return sc, "", nil
	case ScenarioStaging:
		return e.prepareStaging(n)
	}
	return nil, "", fmt.Errorf("unknown scenario %q", name)
}

// prepareStaging builds the update-from-staging scenario: v1 runs and,
// when launched, writes v2's package into the staging slot through the
// SBM's services and requests the update.
func (e *tortureEnv) prepareStaging(n int) (*scenario, string, error) {
	apps, err := e.releases(2, n)
	if err != nil {
		return nil, "", err
	}
	base, err := e.installed(apps[0])
	if err != nil {
		return nil, "", err
	}
	probe := e.rig(base.Clone())
	var services sbm.Services
	probe.onLaunch = func(a *sbm.AppInfo) { services = a.Services }
	if err := probe.bootToApp(false, false); err != nil {
		return nil, "", err
	}
	if services == nil {
		return nil, "the SBM offers no runtime services yet (AppInfo.Services is nil)", nil
	}
	sc := &scenario{base: base, apps: apps}
	v2 := apps[1]
	var appErr error
	sc.run = func(r *rig) error {
		appErr = nil
		r.onLaunch = func(a *sbm.AppInfo) {
			if a.Digest != apps[0].digest || a.Services == nil {
				return // v2 already runs
			}
			appErr = stageAndRequest(a.Services, v2.pkg)
		}
		if err := r.bootToApp(false, false); err != nil {
			return err
		}
		if appErr != nil {
			return fmt.Errorf("application: %w", appErr)
		}
		if r.launched == nil || r.launched.Digest != v2.digest {
			// The SBM rejected the update or the application could not
			// request it: the new application must run at the end.
			st, _ := r.state()
			if st != nil && st.LastError != 0 {
				return fmt.Errorf("update not installed: %s (code %d)", st.LastErrorDetail, st.LastError)
			}
			return errors.New("update not installed")
		}
		return nil
	}
	return sc, "", nil
}

// stageAndRequest is the updater application: erase staging, write the
// package in 1000-byte pieces, request the update (which resets).
func stageAndRequest(s sbm.Services, pkg []byte) error {
	if uint64(len(pkg)) > uint64(s.StagingSize()) {
		return errors.New("package larger than staging")
	}
	if err := s.StagingErase(); err != nil {
		return err
	}
	for off := 0; off < len(pkg); off += 1000 {
		end := min(off+1000, len(pkg))
		if err := s.StagingWrite(uint32(off), pkg[off:end]); err != nil {
			return err
		}
	}
	return s.RequestUpdate()
}
