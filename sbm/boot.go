// Package sbm is the Secure Boot Manager: the device's immutable first
// firmware and root of trust (docs/sbm.md).
//
// At every reset Boot checks the SBM region holds a valid descriptor,
// loads the secure-storage state, answers a provisioning request left in
// the RAM mailbox (sbm/mailbox), resumes an interrupted install, verifies
// the application against the signature table and runs it, or else serves
// the connection protocol (package wire) on the UART in recovery.
//
// sbm is device-side code: standard library and the module's device-side
// packages only, no reflection, no fmt, no goroutines, bounded memory, and
// hardware only through package hal.
package sbm

import (
	"bytes"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/internal/errs"
	"github.com/sbm-project/sbm/internal/secpkg"
	"github.com/sbm-project/sbm/wire"
)

// DefaultTimeout is the default inactivity timeout of a recovery session.
const DefaultTimeout = 60 * time.Second

// Options configures Boot. The zero value (or nil) selects the defaults.
type Options struct {
	// Launch runs the verified application; the default logs that the
	// application is verified and idles until reset. Boot returns when
	// Launch returns.
	Launch func(app *AppInfo)
	// Serve runs one recovery session of the connection protocol on u,
	// driving t, and reports whether the device should reset (the host
	// asked for it). The default is a wire.Session with the inactivity
	// timeout.
	Serve func(u hal.UART, t wire.Target, sys hal.System, timeout time.Duration) (reset bool)
	// Timeout is the inactivity timeout of a recovery session; default
	// DefaultTimeout.
	Timeout time.Duration
	// Version overrides the SBM version reported by INFO; default the
	// descriptor's.
	Version string
	// Runs lists the source formats (manifest key 12: "wasm", "elf",
	// "ihex") the runtime Launch hands the application to can execute; nil
	// accepts any. A package of another format is refused before any of
	// its payload is stored (CodeAppStart). A raw binary ("bin") names no
	// format the SBM could judge: the runtime checks it at start
	// (AppInfo.NotRunnable).
	Runs []string
}

// AppInfo describes the verified application handed to Options.Launch.
type AppInfo struct {
	// Version is the application's version (from its manifest).
	Version string
	// Size is the application image size in bytes, at the start of Region.
	Size uint32
	// Digest is SHA-256 of the image: the application measurement.
	Digest [32]byte
	// ManifestDigest is the digest of the manifest it was installed from.
	ManifestDigest [32]byte
	// SecurityCounter is the manifest's security counter.
	SecurityCounter uint32
	// Region is the slot the application runs from (the primary slot).
	Region hal.Region
	// SBMVersion is the running SBM's version.
	SBMVersion string
	// Lifecycle is the device's lifecycle (wire.Lifecycle*).
	Lifecycle uint8
	// Services are the SBM's runtime services for this application
	// (docs/spec/services.md).
	Services Services
	// NotRunnable is for the runtime that Launch hands the application to,
	// never for the application: called before the application's first
	// instruction when the runtime cannot execute the verified image (not
	// in a format it runs, does not compile), it makes the SBM record the
	// reason as the last error (CodeAppStart) and enter recovery when
	// Launch returns. The reason depends only on the image, so a device
	// that cannot start its application commits it once.
	NotRunnable func(reason string)
}

// machine is the SBM's whole state for one boot. It is allocated once.
type machine struct {
	hw      *hal.Hardware
	opts    Options
	version string
	locks   uint32
	store   storage
	st      state
	keys    *deviceKeys

	anchors   secpkg.Anchors
	anchorsOK bool
	// transAnchors verify a package under the new root of the root
	// transition it carries (install.go, rootTransition).
	transAnchors secpkg.Anchors

	ret retained // update request and rejection, kept in RAM
	// staged is the manifest digest (SHA-256 of the manifest record) of
	// the package checkPackage last read, if stagedOK: what a rejected
	// update's report names.
	staged   [32]byte
	stagedOK bool

	fuse     [hal.NumCounters]uint32 // the fuse counters (fuseRead: read this boot)
	fuseRead bool
	target   target
	svc      services // the runtime services of the launched application
	updated  bool     // this boot installed a new application
	scratch  struct {
		mailbox  mailboxBuf
		manifest [secpkg.MaxManifestSize]byte
		upk      [secpkg.MaxUPKSize]byte
		chunk    []byte // one encrypted chunk, allocated once per boot
	}
}

// Boot runs the SBM on hw. It returns only when the launched application
// returns or when there is nothing it can do (no valid SBM descriptor, no
// secure storage); on the virtual MCU, a reset or power cut stops it
// inside a hal call.
func Boot(hw *hal.Hardware, opts *Options) {
	m := &machine{hw: hw}
	if opts != nil {
		m.opts = *opts
	}
	if m.opts.Timeout <= 0 {
		m.opts.Timeout = DefaultTimeout
	}
	m.run()
}

// log writes one line to the boot log.
func (m *machine) log(parts ...string) {
	if m.hw.Log == nil {
		return
	}
	n := 1
	for _, p := range parts {
		n += len(p)
	}
	line := make([]byte, 0, n)
	for _, p := range parts {
		line = append(line, p...)
	}
	m.hw.Log.Write(append(line, '\n'))
}

// shortHash formats the first 8 bytes of a digest in hex.
func shortHash(h []byte) string { return hex.EncodeToString(h[:8]) + "…" }

func (m *machine) run() {
	desc, ok := readDescriptor(m.hw.Flash)
	if !ok {
		m.log("sbm: no SBM installed (the SBM region holds no valid descriptor)")
		return
	}
	m.version = desc.versionString()
	if m.opts.Version != "" {
		m.version = m.opts.Version
	}
	m.log("sbm: SBM ", m.version, " on device ", hex.EncodeToString(m.hw.ID[:]))
	if err := m.store.open(m.hw.Flash, m.hw.PUF); err != nil {
		m.log("sbm: ", err.Error())
		return
	}
	m.store.load(&m.st)
	if i, f := m.store.refused(); f != faultNone {
		m.log("sbm: secure storage: bank ", strconv.Itoa(i), " refused: ", f.String())
	}
	m.locks, _ = hal.ReadLocks(m.hw.Fuses)
	m.target.m = m
	m.readRetained()
	m.countBoot()

	m.serveMailbox()
	m.syncFuses()
	if m.st.pending.present {
		m.resume()
	} else if m.ret.updateRequested() {
		m.ret.flags &^= flagUpdateReq
		m.writeRetained()
		m.st.updateRequested = true
		m.update()
	}
	app, werr := m.verifyApp()
	requested := m.takeRecoveryFlag()
	if werr == nil && !m.hw.System.RecoveryPin() && !requested {
		m.launch(app)
		return
	}
	switch {
	case werr == nil && requested:
		m.log("sbm: recovery: requested by the application")
	case werr == nil:
		m.log("sbm: recovery: recovery pin held")
	default:
		m.log("sbm: recovery: ", werr.Detail)
		m.noteError(werr)
	}
	m.recovery()
}

// noteError records a boot failure as the last error, committing it only
// when it changes (a provisioned device) so that a boot loop wears nothing.
func (m *machine) noteError(werr *wire.Error) {
	if m.st.lastError == werr.Code && m.st.lastErrorText() == werr.Detail {
		return
	}
	m.st.setError(werr.Code, werr.Detail)
	if m.st.provisioned {
		m.commit()
	}
}

// verifyApp checks the primary slot against the signature table.
func (m *machine) verifyApp() (*AppInfo, *wire.Error) {
	st := &m.st
	if !st.provisioned {
		return nil, wire.Errorf(wire.CodeNotProvisioned, "not provisioned")
	}
	if werr := m.checkRoot(); werr != nil {
		return nil, werr
	}
	if !st.app.present {
		return nil, wire.Errorf(wire.CodeNoApplication, "no application installed")
	}
	if werr := m.checkRollback(); werr != nil {
		return nil, werr
	}
	r, ok := m.hw.Flash.Geometry().Region(hal.RegionPrimary)
	if !ok || st.app.size > r.Size {
		return nil, wire.Errorf(wire.CodeBootHash, "application does not fit the primary slot")
	}
	sum, err := hashFlash(m.hw.Flash, r.Start, st.app.size)
	if err != nil {
		return nil, wire.Errorf(wire.CodeFlash, "cannot read the primary slot")
	}
	if !bytes.Equal(sum[:], st.app.digest[:]) {
		return nil, wire.Errorf(wire.CodeBootHash, "application hash mismatch")
	}
	return &AppInfo{
		Version: st.app.versionString(), Size: st.app.size, Digest: sum,
		ManifestDigest: st.app.manifestDigest, SecurityCounter: st.app.counter,
		Region: r, SBMVersion: m.version, Lifecycle: m.lifecycle(),
	}, nil
}

// launch runs the verified application.
func (m *machine) launch(app *AppInfo) {
	m.log("sbm: verified application ", app.Version, " (sha256 ", shortHash(app.Digest[:]), ")")
	app.Services = m.services(app)
	if m.opts.Launch != nil {
		var reason string
		app.NotRunnable = func(r string) {
			if reason == "" {
				reason = r
			}
		}
		m.opts.Launch(app)
		if reason != "" {
			werr := wire.Errorf(wire.CodeAppStart, reason)
			m.log("sbm: recovery: the application cannot start: ", reason)
			m.noteError(werr)
			m.recovery()
		}
		return
	}
	m.log("sbm: no application runtime; idle until reset")
	for {
		m.hw.System.Sleep(time.Second)
	}
}

// recovery serves the connection protocol until an install completes or
// the host asks for a reset (then it resets), or a session times out while
// a verified application exists (then it runs it).
func (m *machine) recovery() {
	serve := m.opts.Serve
	if serve == nil {
		serve = serveWire
	}
	for {
		m.log("sbm: recovery: waiting for a programmer on the UART")
		reset := serve(m.hw.UART, &m.target, m.hw.System, m.opts.Timeout)
		if m.target.installed {
			m.log("sbm: install complete; resetting")
			m.hw.System.Reset()
			return
		}
		if reset {
			m.log("sbm: reset requested")
			m.hw.System.Reset()
			return
		}
		if app, werr := m.verifyApp(); werr == nil {
			m.launch(app)
			return
		}
	}
}

// serveWire runs one wire.Session.
func serveWire(u hal.UART, t wire.Target, sys hal.System, timeout time.Duration) bool {
	end, err := wire.NewSession(u, sys, t, wire.Config{Inactivity: timeout}).Serve()
	if err != nil {
		sys.Sleep(100 * time.Millisecond) // a failed link: do not spin
	}
	return end == wire.EndReset || end == wire.EndInstalled
}

// lifecycle returns the device's lifecycle state.
func (m *machine) lifecycle() uint8 {
	switch {
	case !m.st.provisioned:
		return wire.LifecycleBlank
	case m.locks&hal.LockDebug != 0:
		return wire.LifecycleLocked
	}
	return wire.LifecycleProvisioned
}

// commit writes the state; on failure it reloads the stored state so that
// the machine's view never differs from the flash.
func (m *machine) commit() error {
	err := m.store.commit(&m.st)
	if err != nil {
		m.store.load(&m.st)
		m.log("sbm: secure storage write failed: ", err.Error())
	}
	return err
}

var errRootMismatch = errs.New("sbm: stored root key does not match the fuses")

// checkRoot checks the stored root key against the hash in the current
// root-key fuse slot (fuse counter FuseRootIndex).
func (m *machine) checkRoot() *wire.Error {
	idx, werr := m.fuseValue(FuseRootIndex)
	if werr != nil {
		return werr
	}
	h, err := hal.ReadRootKeySlot(m.hw.Fuses, int(idx))
	if rk := secpkg.KeyID(m.st.root()); err != nil || !bytes.Equal(rk[:], h[:]) {
		return wire.Errorf(wire.CodeNotProvisioned, "stored root key does not match the fuses")
	}
	return nil
}

// deviceAnchors returns the verifier anchors, checked against the fuses
// and with both key certificates verified once.
func (m *machine) deviceAnchors() (*secpkg.Anchors, *wire.Error) {
	if m.anchorsOK {
		return &m.anchors, nil
	}
	st := &m.st
	if !st.provisioned {
		return nil, wire.Errorf(wire.CodeNotProvisioned, "not provisioned")
	}
	if werr := m.checkRoot(); werr != nil {
		return nil, werr
	}
	m.anchors = secpkg.Anchors{Suite: st.suite, RootKey: st.root(), VendorID: st.vendorID, ClassID: st.classID}
	for _, r := range []secpkg.Role{secpkg.RoleImageSigning, secpkg.RoleUpdateAuthority} {
		e, werr := m.epochFloor(r)
		if werr != nil {
			return nil, werr
		}
		m.anchors.MinEpoch[r] = e
	}
	// The key certificates stored at provisioning only spare the root
	// signature check of packages that carry them: once revoked, or after
	// a root transition, they no longer verify and are simply not used.
	m.anchors.TrustKeyCert(st.imageCert(), secpkg.RoleImageSigning)
	m.anchors.TrustKeyCert(st.updateCert(), secpkg.RoleUpdateAuthority)
	m.anchorsOK = true
	return &m.anchors, nil
}

// deviceKeys recovers the PUF key and derives the device keys.
func (m *machine) deviceKeys() (*deviceKeys, *wire.Error) {
	if m.keys != nil {
		return m.keys, nil
	}
	if !m.st.provisioned {
		return nil, wire.Errorf(wire.CodeNotProvisioned, "not provisioned")
	}
	// Loading secure storage recovered the PUF key of its helper data.
	if !m.store.keysFor(&m.st.helper) {
		return nil, wire.Errorf(wire.CodeInternal, "puf key recovery failed")
	}
	k, _ := m.store.key()
	keys, err := deriveKeys(m.st.suite, k)
	if errs.Is(err, errSuiteNotBuilt) {
		return nil, wire.Errorf(wire.CodeUnsupported, "the device's suite is not compiled into this SBM")
	}
	if err != nil {
		return nil, wire.Errorf(wire.CodeInternal, "key derivation failed")
	}
	m.keys = keys
	return keys, nil
}
