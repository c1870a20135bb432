package sbm

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/image"
	"github.com/sbm-project/sbm/internal/firmware"
	"github.com/sbm-project/sbm/trust"
	"github.com/sbm-project/sbm/upk"
	"github.com/sbm-project/sbm/wire"
)

func TestInstallAndBoot(t *testing.T) {
	for _, c := range []*trust.Context{ctxA, ctxE} {
		t.Run(string(c.Suite()), func(t *testing.T) {
			v := newDev(t, c, 10)
			v.provision(false)
			rel := newRelease(t, c, appData(6<<10+100, 1), "1.2.0", 3)
			if err := v.install(rel.forDevice(v)); err != nil {
				t.Fatalf("install: %v\nlog:\n%s", err, v.log.String())
			}
			st := v.state()
			if st.App == nil || st.App.Version != "1.2.0" || st.SecurityCounter != 3 || st.ReplayIDs != 1 ||
				st.App.ManifestDigest != rel.created.ManifestDigest || st.LastError != 0 || st.InstallPending {
				t.Fatalf("state %+v", st)
			}
			v.expectBoot(rel)
			if !strings.Contains(v.log.String(), "sbm: verified application 1.2.0 (sha256 ") {
				t.Fatalf("log: %s", v.log.String())
			}
			// An update replaces it.
			rel2 := newRelease(t, c, appData(3000, 2), "1.3.0", 3)
			if err := v.install(rel2.forDevice(v)); err != nil {
				t.Fatal(err)
			}
			v.expectBoot(rel2)
		})
	}
}

// snapshot is what a rejected install must leave unchanged.
type snapshot struct {
	app     AppEntry
	counter uint32
	replay  int
	floor   uint64
	primary []byte
}

func (v *dev) snapshot() snapshot {
	st := v.state()
	return snapshot{*st.App, st.SecurityCounter, st.ReplayIDs, st.TimeFloor, v.region(hal.RegionPrimary)}
}

func (v *dev) unchanged(name string, s snapshot) {
	v.t.Helper()
	st := v.state()
	if st.App == nil || *st.App != s.app || st.SecurityCounter != s.counter || st.ReplayIDs != s.replay || st.TimeFloor != s.floor {
		v.t.Errorf("%s: table changed: %+v", name, st)
	}
	if st.InstallPending {
		v.t.Errorf("%s: install pending", name)
	}
	if !bytes.Equal(v.region(hal.RegionPrimary), s.primary) {
		v.t.Errorf("%s: primary slot changed", name)
	}
}

// TestInstallRejects sends every kind of bad package to a device running
// rel1: each is refused with its code, leaves the table and the primary
// slot byte-identical, and rel1 still boots.
func TestInstallRejects(t *testing.T) {
	v := newDev(t, ctxA, 11)
	v.provision(true)
	rel1 := newRelease(t, ctxA, appData(5000, 1), "1.0.0", 2)
	if err := v.install(rel1.forDevice(v)); err != nil {
		t.Fatal(err)
	}
	snap := v.snapshot()
	rel2 := newRelease(t, ctxA, appData(6<<10, 2), "2.0.0", 2)
	payloadOff := len(rel2.forDevice(v)) - len(rel2.created.Package.Payload)

	w := newDev(t, ctxA, 12)
	w.provision(false)
	other := newRelease(t, ctxA, appData(4000, 3), "9.9.9", 2)
	relB := newRelease(t, ctxB, appData(4000, 4), "2.0.0", 2)
	downgrade := newRelease(t, ctxA, appData(4000, 5), "0.9.0", 1)
	slot, err := image.Create(ctxA, &firmware.Image{Data: appData(3000, 6), Format: firmware.FormatBinary},
		&image.CreateOptions{Version: "2.0.0", SecurityCounter: 2, Slot: "secondary", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	relSlot := &release{c: ctxA, created: slot}
	expired := &upk.Options{Now: now, NotBefore: fixedNow.Add(-48 * time.Hour), NotAfter: fixedNow.Add(-time.Hour)}
	wrongClass := upk.ClassRecipient(ctxA)
	wrongClass.Key = ctxB.ClassPublicKey()

	flip := func(pkg []byte, off int) []byte {
		b := bytes.Clone(pkg)
		b[off] ^= 0x10
		return b
	}
	good := rel2.forDevice(v)
	nchunks := (len(rel2.data) + 1023) / 1024
	chunk := func(i int) int { return payloadOff + i*(1024+16) + 7 }
	truncated := bytes.Clone(good[:len(good)-100])
	binary.LittleEndian.PutUint32(truncated[payloadOff-4:], uint32(len(rel2.created.Package.Payload)-100))
	manifestOff := 16

	cases := []struct {
		name   string
		pkg    []byte
		code   wire.Code
		header bool // rejected before any payload byte
	}{
		{"package from another context", relB.container(t, relB.upkFor(t, v.recipient(), nil)), wire.CodeSignature, true},
		{"upk for another device", rel2.container(t, rel2.upkFor(t, w.recipient(), nil)), wire.CodeNotRecipient, true},
		{"upk for another manifest", rel2.container(t, other.upkFor(t, v.recipient(), nil)), wire.CodeManifestBinding, true},
		{"expired upk", rel2.container(t, rel2.upkFor(t, v.recipient(), expired)), wire.CodeExpired, true},
		{"lower security counter", downgrade.forDevice(v), wire.CodeDowngrade, true},
		{"class upk of another class key", rel2.container(t, rel2.upkFor(t, wrongClass, nil)), wire.CodeNotRecipient, true},
		{"escrow upk", rel2.container(t, rel2.created.Escrow), wire.CodeNotRecipient, true},
		{"wrong slot", relSlot.forDevice(v), wire.CodeSlot, true},
		{"flipped manifest bit", flip(good, manifestOff+40), wire.CodeSignature, true},
		{"flipped upk bit", flip(good, payloadOff-60), wire.CodeSignature, true},
		{"flipped bit, first chunk", flip(good, chunk(0)), wire.CodeDecrypt, false},
		{"flipped bit, middle chunk", flip(good, chunk(nchunks/2)), wire.CodeDecrypt, false},
		{"flipped bit, last chunk", flip(good, len(good)-3), wire.CodeDecrypt, false},
		{"short payload record", truncated, wire.CodeFormat, true},
		{"not a package", bytes.Repeat([]byte{0x42}, 4096), wire.CodeFormat, true},
	}
	for _, tc := range cases {
		err := v.install(tc.pkg)
		if codeOfErr(err) != tc.code {
			t.Errorf("%s: got %v, want code %d (%v)", tc.name, err, tc.code, tc.code)
		}
		v.unchanged(tc.name, snap)
		if tc.header {
			// The staging slot holds no byte past the headers.
			st := v.region(hal.RegionStaging)
			off := payloadOffset(tc.pkg)
			for i := off + 8; i < off+256 && i < len(tc.pkg); i++ {
				if st[i] != 0xff {
					t.Errorf("%s: payload byte %d staged before validation", tc.name, i)
					break
				}
			}
		}
		v.expectBoot(rel1)
	}

	// Finish before all bytes arrived.
	var ferr error
	v.session = func(tg wire.Target) {
		tg.Begin(uint32(len(good)))
		tg.Write(0, good[:len(good)-500])
		ferr = tg.Finish()
	}
	v.boot(false, true)
	if codeOfErr(ferr) != wire.CodeDecrypt {
		t.Errorf("early finish: %v", ferr)
	}
	v.unchanged("early finish", snap)

	// A class UPK without the class key.
	if err := w.install(rel2.container(t, rel2.upkFor(t, upk.ClassRecipient(ctxA), nil))); codeOfErr(err) != wire.CodeNotRecipient {
		t.Errorf("class upk without class key: %v", err)
	}
	// Too large for staging.
	v.session = func(tg wire.Target) { ferr = tg.Begin(200 << 10) }
	v.boot(false, true)
	if codeOfErr(ferr) != wire.CodeTooLarge {
		t.Errorf("too large: %v", ferr)
	}
	// Writes out of order.
	v.session = func(tg wire.Target) {
		tg.Begin(uint32(len(good)))
		ferr = tg.Write(10, good[10:100])
	}
	v.boot(false, true)
	if codeOfErr(ferr) != wire.CodeOffset {
		t.Errorf("offset: %v", ferr)
	}
	// After all that, the good package still installs (its UPK was never
	// accepted) — the rejects did not poison anything.
	if err := v.install(good); err != nil {
		t.Fatal(err)
	}
	v.expectBoot(rel2)
}

func TestClassUPK(t *testing.T) {
	v := newDev(t, ctxA, 13)
	v.provision(true)
	rel := newRelease(t, ctxA, appData(3000, 1), "1.0.0", 1)
	if err := v.install(rel.container(t, rel.upkFor(t, upk.ClassRecipient(ctxA), nil))); err != nil {
		t.Fatal(err)
	}
	v.expectBoot(rel)

	// A device of another class (same root, another class ID) refuses
	// the context's packages.
	w := newDev(t, ctxA, 14)
	w.programRootHash(ctxA)
	req := provisionRequest(t, ctxA, true)
	req.ClassID[0] ^= 1
	if r := w.exchange(req); r.Code != 0 {
		t.Fatal(r.Detail)
	}
	ka, _ := ctxA.Suite().KeyAgreementCurve().NewPublicKey(w.exchangeKA(t))
	w.ka = ka
	for _, u := range [][]byte{rel.upkFor(t, w.recipient(), nil), rel.upkFor(t, upk.ClassRecipient(ctxA), nil)} {
		if err := w.install(rel.container(t, u)); codeOfErr(err) != wire.CodeVendorClass {
			t.Errorf("device of another class: %v", err)
		}
	}
}

// exchangeKA returns the key-agreement public key of a provisioned device
// (re-derived as the SBM does).
func (v *dev) exchangeKA(t *testing.T) []byte {
	var st state
	var s storage
	s.open(v.d.Flash(hal.PrivSBM), v.d.PUF())
	s.load(&st)
	k, err := hal.RecoverPUFKey(v.d.PUF(), &st.helper)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := deriveKeys(st.suite, &k)
	if err != nil {
		t.Fatal(err)
	}
	return keys.ka.PublicKey().Bytes()
}

func TestReplay(t *testing.T) {
	v := newDev(t, ctxA, 15)
	v.provision(false)
	rel1 := newRelease(t, ctxA, appData(3000, 1), "1.0.0", 1)
	pkg1 := rel1.forDevice(v)
	if err := v.install(pkg1); err != nil {
		t.Fatal(err)
	}
	rel2 := newRelease(t, ctxA, appData(3000, 2), "2.0.0", 1)
	if err := v.install(rel2.forDevice(v)); err != nil {
		t.Fatal(err)
	}
	snap := v.snapshot()
	// Re-sending the first package with its UPK: a replay (a downgrade
	// attempt with a UPK that was valid once).
	if err := v.install(pkg1); codeOfErr(err) != wire.CodeReplay {
		t.Fatalf("replay: %v", err)
	}
	v.unchanged("replay", snap)
	v.expectBoot(rel2)
	// A fresh UPK for the same package is fine (same counter).
	if err := v.install(rel1.forDevice(v)); err != nil {
		t.Fatal(err)
	}
	v.expectBoot(rel1)
}

func TestBootHashMismatch(t *testing.T) {
	v := newDev(t, ctxA, 16)
	v.provision(false)
	rel := newRelease(t, ctxA, appData(5000, 1), "1.0.0", 1)
	if err := v.install(rel.forDevice(v)); err != nil {
		t.Fatal(err)
	}
	v.expectBoot(rel)
	// Change one byte of the installed application in flash.
	f := v.d.Flash(hal.PrivSBM)
	r, _ := f.Geometry().Region(hal.RegionPrimary)
	sec := make([]byte, 2048)
	f.Read(r.Start+2048, sec)
	sec[100] ^= 1
	f.Erase(r.Start + 2048)
	f.Program(r.Start+2048, sec)
	v.boot(false, false)
	if v.launched != nil || !v.recovered {
		t.Fatal("tampered application launched")
	}
	if !strings.Contains(v.log.String(), "sbm: recovery: application hash mismatch") {
		t.Fatalf("log: %s", v.log.String())
	}
	if st := v.state(); st.LastError != wire.CodeBootHash || st.LastErrorDetail != "application hash mismatch" {
		t.Fatalf("state %+v", st)
	}
	// Recovery installs it again.
	if err := v.install(rel.forDevice(v)); err != nil {
		t.Fatal(err)
	}
	v.expectBoot(rel)
	if st := v.state(); st.LastError != 0 {
		t.Fatalf("last error not cleared: %+v", st)
	}
}

func TestNotProvisioned(t *testing.T) {
	v := newDev(t, ctxA, 17)
	var berr error
	var info wire.DeviceInfo
	v.session = func(tg wire.Target) {
		berr = tg.Begin(1000)
		info.DecodeCBOR(tg.Info(nil))
	}
	v.boot(false, false)
	if codeOfErr(berr) != wire.CodeNotProvisioned || info.Lifecycle != wire.LifecycleBlank || tgCertNil(v) {
		t.Fatalf("begin %v, info %+v", berr, info)
	}
	if st := v.state(); st.Seq != 0 {
		t.Fatal("an unprovisioned device wrote its secure storage")
	}
}

func tgCertNil(v *dev) bool {
	var c []byte
	v.session = func(tg wire.Target) { c = tg.Certificate() }
	v.boot(false, false)
	return c != nil
}

func TestAppCannotReadSecrets(t *testing.T) {
	v := newDev(t, ctxA, 18)
	v.provision(false)
	if err := hal.BlowLocks(v.d.Fuses(), hal.LockSBMWriteProtect|hal.LockSecureHidden|hal.LockDebug); err != nil {
		t.Fatal(err)
	}
	rel := newRelease(t, ctxA, appData(3000, 1), "1.0.0", 1)
	if err := v.install(rel.forDevice(v)); err != nil {
		t.Fatal(err)
	}
	var errs []error
	v.d.PowerOn(t.Context(), vmcuFirmware(func(hw *hal.Hardware) {
		g := hw.AppFlash.Geometry()
		buf := make([]byte, 16)
		for _, k := range []hal.RegionKind{hal.RegionSecure, hal.RegionSBM} {
			r, _ := g.Region(k)
			errs = append(errs, hw.AppFlash.Read(r.Start, buf), hw.AppFlash.Erase(r.Start), hw.AppFlash.Program(r.Start, buf[:8]))
		}
		p, _ := g.Region(hal.RegionPrimary)
		if err := hw.AppFlash.Read(p.Start, buf); err != nil {
			t.Errorf("app cannot read its own slot: %v", err)
		}
	}), vmcuOpts())
	for i, err := range errs {
		if !errorsIs(err, hal.ErrFault) {
			t.Errorf("access %d: %v, want access fault", i, err)
		}
	}
	v.expectBoot(rel)
	// The debug port refuses too.
	if _, err := v.d.DebugPort().Read(t.Context(), 0, 16); err == nil {
		t.Error("debug port reads after lock")
	}
}

// payloadOffset returns the offset of the first byte after the UPK
// record (the payload record header), or the package size if the
// container is too short to say.
func payloadOffset(pkg []byte) int {
	off := 8
	for range 2 {
		if off+8 > len(pkg) {
			return len(pkg)
		}
		off += 8 + int(binary.LittleEndian.Uint32(pkg[off+4:]))
	}
	return min(off, len(pkg))
}
