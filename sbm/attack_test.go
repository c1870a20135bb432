package sbm

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/upk"
	"github.com/sbm-project/sbm/vmcu"
	"github.com/sbm-project/sbm/wire"
)

// These tests play the attackers of issue 8: someone holding the flash
// chip (dump, restore, rewrite: vmcu.DumpFlash/RestoreFlash and the
// SBM-privileged view, which a clip on an external NOR chip amounts to)
// and a hostile application.

// fuseCounter reads the anti-rollback fuse counter of d.
func fuseCounter(t *testing.T, d *vmcu.Device) int {
	t.Helper()
	n, err := hal.ReadCounter(d.Fuses(), FuseSecurityCounter)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRollbackByFlashRestore: a dump taken while 1.0.0 (counter 2) runs,
// written back after 2.0.0 (counter 3) installed, does not bring 1.0.0
// back: the fuse counter says 3.
func TestRollbackByFlashRestore(t *testing.T) {
	v, rel1 := withV1(t, ctxA, 60)
	if got := fuseCounter(t, v.d); got != 2 {
		t.Fatalf("fuse counter %d after installing counter 2", got)
	}
	dump, err := v.d.DumpFlash()
	if err != nil {
		t.Fatal(err)
	}
	rel2 := newRelease(t, ctxA, appData(6000, 2), "2.0.0", 3)
	if err := v.install(rel2.forDevice(v)); err != nil {
		t.Fatal(err)
	}
	v.expectBoot(rel2)
	if got := fuseCounter(t, v.d); got != 3 {
		t.Fatalf("fuse counter %d after installing counter 3", got)
	}
	if err := v.d.RestoreFlash(dump); err != nil {
		t.Fatal(err)
	}
	v.log.Reset()
	v.boot(false, false)
	if v.launched != nil {
		t.Fatalf("restored 1.0.0 launched\nlog:\n%s", v.log.String())
	}
	if !strings.Contains(v.log.String(), "below the anti-rollback fuse 3") {
		t.Fatalf("no reason in the boot log:\n%s", v.log.String())
	}
	// Nor can 1.0.0 be programmed again with a fresh UPK; 2.0.0 can.
	if err := v.install(rel1.forDevice(v)); codeOfErr(err) != wire.CodeDowngrade {
		t.Fatalf("1.0.0 over the UART after the restore: %v", err)
	}
	if err := v.install(rel2.forDevice(v)); err != nil {
		t.Fatal(err)
	}
	v.expectBoot(rel2)
}

// forgeRecord writes st as a record into bank i of d's secure storage the
// way an attacker can: a correct layout and SHA-256 check, and a MAC it
// cannot compute (here the newest record's, copied).
func forgeRecord(t *testing.T, d *vmcu.Device, i int, st *state) {
	t.Helper()
	f := d.Flash(hal.PrivSBM)
	var s storage
	if err := s.open(f, nil); err != nil {
		t.Fatal(err)
	}
	body := st.encode(nil, &[32]byte{})
	rec := []byte("SBM2")
	rec = binary.LittleEndian.AppendUint32(rec, st.seq+10)
	rec = binary.LittleEndian.AppendUint32(rec, uint32(len(body)))
	rec = append(rec, body...)
	sum := sha256.Sum256(rec)
	rec = append(rec, sum[:]...)
	rec = append(rec, bytes.Repeat([]byte{0x5a}, recordMAC)...)
	for len(rec)%int(f.Geometry().WriteSize) != 0 {
		rec = append(rec, 0xFF)
	}
	b := s.banks[i]
	g := f.Geometry()
	for k := range b.numSec {
		if err := f.Erase(g.Sectors[b.firstSec+k].Start); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Program(b.start, rec); err != nil {
		t.Fatal(err)
	}
}

// loadState reads d's state as the SBM does.
func loadState(t *testing.T, d *vmcu.Device) state {
	t.Helper()
	var s storage
	if err := s.open(d.Flash(hal.PrivSBM), d.PUF()); err != nil {
		t.Fatal(err)
	}
	var st state
	s.load(&st)
	return st
}

// TestForgedRecord: an attacker with the flash chip writes a table entry
// of their own (with and without their own code in the primary slot),
// lowers the counter, or empties the replay list. Every forged record is
// refused at boot with the reason in the log; the attacker's code never
// runs and the device never signs for it.
func TestForgedRecord(t *testing.T) {
	v, rel1 := withV1(t, ctxA, 62)
	evil := appData(4000, 0xee)
	cases := []struct {
		name     string
		code     bool // the attacker's code in the primary slot
		both     bool // both banks overwritten
		edit     func(st *state)
		launches bool // the authentic record survives and 1.0.0 runs
	}{
		// The other bank's authentic record (the install-pending marker
		// of 1.0.0) wins: the SBM reinstalls 1.0.0 from staging.
		{"own code, table entry, one bank", true, false, func(st *state) {
			st.app.size, st.app.digest = uint32(len(evil)), sha256.Sum256(evil)
		}, true},
		{"own code, table entry, both banks", true, true, func(st *state) {
			st.app.size, st.app.digest = uint32(len(evil)), sha256.Sum256(evil)
		}, false},
		{"counter lowered", false, false, func(st *state) { st.counter, st.app.counter = 0, 0 }, true},
		{"replay list emptied", false, true, func(st *state) { st.replayLen, st.replayFloor = 0, 0 }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := v.on(v.d.Clone())
			w.t = t
			st := loadState(t, w.d)
			tc.edit(&st)
			forgeRecord(t, w.d, 0, &st)
			if tc.both {
				forgeRecord(t, w.d, 1, &st)
			}
			if tc.code {
				f := w.d.Flash(hal.PrivSBM)
				pr, _ := f.Geometry().Region(hal.RegionPrimary)
				for a := pr.Start; a < pr.Start+8192; a += 2048 {
					if err := f.Erase(a); err != nil {
						t.Fatal(err)
					}
				}
				if err := f.Program(pr.Start, evil); err != nil {
					t.Fatal(err)
				}
			}
			w.boot(false, false)
			log := w.log.String()
			if !strings.Contains(log, "refused: record not authentic") {
				t.Fatalf("forged record not reported:\n%s", log)
			}
			if w.launched != nil && (!tc.launches || w.launched.Digest != sha256.Sum256(rel1.data)) {
				t.Fatalf("launched %s (%x; evil %x)\n%s", w.launched.Version, w.launched.Digest[:8], sha256.Sum256(evil), log)
			}
			if tc.launches && w.launched == nil {
				t.Fatalf("the authentic record was lost\n%s", log)
			}
		})
	}
}

// TestRecordFromAnotherDevice: secure storage copied from another device
// of the same OEM (same context, same application) is refused: its PUF
// helper data does not recover on this device, and its MAC key is that
// device's.
func TestRecordFromAnotherDevice(t *testing.T) {
	a, _ := withV1(t, ctxA, 63)
	b, _ := withV1(t, ctxA, 64)
	fb := b.d.Flash(hal.PrivSBM)
	fa := a.d.Flash(hal.PrivSBM)
	sr, _ := fa.Geometry().Region(hal.RegionSecure)
	other := make([]byte, sr.Size)
	if err := fb.Read(sr.Start, other); err != nil {
		t.Fatal(err)
	}
	for off := uint32(0); off < sr.Size; off += 2048 {
		fa.Erase(sr.Start + off)
	}
	if err := fa.Program(sr.Start, other); err != nil {
		t.Fatal(err)
	}
	a.boot(false, false)
	log := a.log.String()
	if a.launched != nil || !strings.Contains(log, "refused: record from another device") ||
		!strings.Contains(log, "recovery: not provisioned") {
		t.Fatalf("foreign storage accepted:\n%s", log)
	}
}

// TestClassKeyEncrypted: the class key-agreement private key is never in
// secure storage in the clear, in any bank, after several commits.
func TestClassKeyEncrypted(t *testing.T) {
	v := newDev(t, ctxA, 65)
	v.provision(true)
	rel := newRelease(t, ctxA, appData(3000, 1), "1.0.0", 2)
	if err := v.install(rel.container(t, rel.upkFor(t, upk.ClassRecipient(ctxA), nil))); err != nil {
		t.Fatal(err)
	}
	v.expectBoot(rel)
	secret, err := ctxA.ExportClassKey()
	if err != nil {
		t.Fatal(err)
	}
	secure := v.region(hal.RegionSecure)
	if bytes.Contains(secure, secret) || bytes.Contains(secure, secret[:16]) || bytes.Contains(secure, secret[16:]) {
		t.Fatal("class private key stored in the clear")
	}
	if st := loadState(t, v.d); !st.hasClassKey || !bytes.Equal(st.classKey[:], secret) {
		t.Fatal("the SBM cannot decrypt its class key")
	}
}

// TestHostileWearLoop: an application that, for twice the part's rated
// erase endurance, stages garbage and requests an update (and its
// recovery) causes no secure-storage erase at all and cannot wear the
// staging slot out: after a power cycle the OEM's genuine update installs
// through the same application path, and over the UART.
func TestHostileWearLoop(t *testing.T) {
	b, err := vmcu.LookupBoard("small")
	if err != nil {
		t.Fatal(err)
	}
	worn := *b
	worn.Endurance = 150
	v := &dev{t: t, d: vmcu.NewMemory(&worn, 66), c: ctxA}
	v.installSBM()
	v.provision(false)
	rel1 := newRelease(t, ctxA, appData(5000, 1), "1.0.0", 2)
	if err := v.install(rel1.forDevice(v)); err != nil {
		t.Fatal(err)
	}
	v.expectBoot(rel1)
	g := v.d.Flash(hal.PrivSBM).Geometry()
	sr, _ := g.Region(hal.RegionSecure)
	stg, _ := g.Region(hal.RegionStaging)
	first, _ := g.SectorAt(sr.Start)
	last, _ := g.SectorAt(sr.End() - 1)
	wear0 := v.d.Wear()
	garbage := appData(3000, 0x66)
	refusedErase := 0
	for i := range 2 * int(worn.Endurance) {
		v.run(func(s Services) {
			if s.StagingErase() != nil || s.StagingWrite(0, garbage) != nil {
				refusedErase++ // the staging budget is spent: keep asking anyway
			}
			if i%10 == 9 {
				s.RequestRecovery()
			}
			s.RequestUpdate()
		})
		if i%10 == 9 {
			v.boot(true, false) // the recovery the application asked for
		}
	}
	wear := v.d.Wear()
	for i := first; i <= last; i++ {
		if wear[i] != wear0[i] {
			t.Fatalf("secure sector %d erased %d times by the hostile loop", i, wear[i]-wear0[i])
		}
	}
	s0, _ := g.SectorAt(stg.Start)
	if refusedErase == 0 || wear[s0]-wear0[s0] > StagingEraseRounds*uint32(stg.Size/2048) {
		t.Fatalf("staging sector 0 erased %d times (%d refused)", wear[s0]-wear0[s0], refusedErase)
	}
	if wear[s0] >= worn.Endurance {
		t.Fatalf("staging sector 0 worn out: %d erases", wear[s0])
	}
	// A power cycle renews the budget: the genuine update installs.
	rel2 := newRelease(t, ctxA, appData(6000, 2), "2.0.0", 3)
	v.boot(false, false)
	v.requestUpdate(t, rel2.forDevice(v))
	if v.launched == nil || v.launched.Version != "2.0.0" {
		t.Fatalf("genuine update refused after the hostile loop\n%s", v.log.String())
	}
	rel3 := newRelease(t, ctxA, appData(6000, 3), "3.0.0", 4)
	if err := v.install(rel3.forDevice(v)); err != nil {
		t.Fatal(err)
	}
	v.expectBoot(rel3)
}

// TestReplayAfterManyInstalls: an old package and its UPK, captured when
// they installed, are refused after 1,000 later installs of the same
// security counter (no ID is ever forgotten: the replay floor).
func TestReplayAfterManyInstalls(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 installs")
	}
	v := newDev(t, ctxA, 67)
	v.provision(false)
	rel := newRelease(t, ctxA, appData(1500, 1), "1.0.0", 2)
	at := func(i int) *upk.Options {
		ts := fixedNow.Add(time.Duration(i) * time.Second)
		return &upk.Options{Now: func() time.Time { return ts }}
	}
	old := rel.container(t, rel.upkFor(t, v.recipient(), at(0)))
	if err := v.install(old); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 1000; i++ {
		if err := v.install(rel.container(t, rel.upkFor(t, v.recipient(), at(i)))); err != nil {
			t.Fatalf("install %d: %v", i, err)
		}
	}
	before := v.region(hal.RegionSecure)
	if err := v.install(old); codeOfErr(err) != wire.CodeReplay {
		t.Fatalf("old package after 1,000 installs: %v", err)
	}
	if !bytes.Equal(v.region(hal.RegionSecure), before) {
		t.Fatal("the refused replay wrote secure storage")
	}
	// A UPK issued in the same second as the last one, never used, installs.
	if err := v.install(rel.container(t, rel.upkFor(t, v.recipient(), at(1000)))); err != nil {
		t.Fatal(err)
	}
}
