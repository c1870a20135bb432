package sbm

import (
	"bytes"
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/upk"
	"github.com/sbm-project/sbm/wire"
)

// stage writes pkg into the staging slot in unaligned pieces, as an
// updater application downloading it would.
func stage(t *testing.T, s Services, pkg []byte) {
	t.Helper()
	if err := s.StagingErase(); err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(pkg); off += 777 {
		end := min(off+777, len(pkg))
		if err := s.StagingWrite(uint32(off), pkg[off:end]); err != nil {
			t.Fatal(err)
		}
	}
}

// requestUpdate stages pkg, requests the update (the device resets) and
// boots again: the SBM applies the request. The request itself writes no
// secure storage (it is kept in RAM across the reset).
func (v *dev) requestUpdate(t *testing.T, pkg []byte) {
	t.Helper()
	seq := v.state().Seq
	v.run(func(s Services) {
		stage(t, s, pkg)
		err := s.RequestUpdate()
		t.Fatalf("RequestUpdate returned: %v", err)
	})
	if !strings.Contains(v.log.String(), "sbm: update requested; resetting") {
		t.Fatal("request not made")
	}
	if st := v.state(); st.Seq != seq || st.UpdateRequested {
		t.Fatalf("the request committed secure storage (seq %d -> %d)", seq, st.Seq)
	}
	v.boot(true, false)
}

func TestUpdate(t *testing.T) {
	v, _ := withV1(t, ctxA, 40)
	rel2 := newRelease(t, ctxA, appData(7000, 2), "2.0.0", 3)
	v.requestUpdate(t, rel2.forDevice(v))
	if v.launched == nil || v.launched.Version != "2.0.0" || v.launched.Digest != sha256.Sum256(rel2.data) {
		t.Fatalf("2.0.0 not launched\nlog:\n%s", v.log.String())
	}
	bi := v.launched.Services.BootInfo()
	if !bi.UpdatedThisBoot || bi.LastUpdate != 0 || bi.AppVersion != "2.0.0" || bi.SecurityCounter != 3 || bi.LastUpdateDetail != "installed 2.0.0" {
		t.Fatalf("boot info %+v", bi)
	}
	st := v.state()
	if st.UpdateRequested || st.InstallPending || st.SecurityCounter != 3 || st.App.Version != "2.0.0" || st.LastError != 0 {
		t.Fatalf("state %+v", st)
	}
	v.expectBoot(rel2)
	if v.launched.Services.BootInfo().UpdatedThisBoot {
		t.Fatal("UpdatedThisBoot on the next boot")
	}
	// A second update, from 2.0.0, also works.
	rel3 := newRelease(t, ctxA, appData(3000, 3), "3.0.0", 3)
	v.requestUpdate(t, rel3.forDevice(v))
	v.expectBoot(rel3)
}

// TestUpdateRejects: every bad staged package is refused after the reset,
// the reason is reported through BootInfo, 1.0.0 runs byte-identical, and
// secure storage is not written at all (no wear from a rejection).
func TestUpdateRejects(t *testing.T) {
	v, rel1, pkg1 := withV1Pkg(t, ctxA, 41)
	other, _ := withV1(t, ctxA, 42)
	rel2 := newRelease(t, ctxA, appData(7000, 2), "2.0.0", 3)
	good := rel2.forDevice(v)
	flip := func(b []byte, i int) []byte {
		b = bytes.Clone(b)
		b[(i+len(b))%len(b)] ^= 0x10
		return b
	}
	foreign := newRelease(t, ctxB, appData(7000, 2), "2.0.0", 3)
	foreignPkg := foreign.container(t, foreign.upkFor(t, v.recipient(), nil))
	down := newRelease(t, ctxA, appData(7000, 4), "0.9.0", 1)
	manifestEnd := 16 + len(rel2.created.Package.Manifest) // magic, record header, manifest
	cases := []struct {
		name string
		pkg  []byte
		code wire.Code
	}{
		{"bad manifest signature", flip(good, manifestEnd-10), wire.CodeSignature},
		{"signed by another context", foreignPkg, wire.CodeSignature},
		{"other device's upk", rel2.forDevice(other), wire.CodeNotRecipient},
		{"escrow upk", rel2.container(t, rel2.created.Escrow), wire.CodeNotRecipient},
		{"downgrade", down.forDevice(v), wire.CodeDowngrade},
		{"expired upk", rel2.container(t, rel2.upkFor(t, v.recipient(), &upk.Options{Now: now, NotBefore: fixedNow.AddDate(-2, 0, 0), NotAfter: fixedNow.AddDate(-1, 0, 0)})), wire.CodeExpired},
		{"truncated", good[:len(good)-1500], wire.CodeDecrypt},
		{"truncated headers", good[:40], wire.CodeFormat},
		{"bit flip in the last chunk", flip(good, -5), wire.CodeDecrypt},
		{"garbage", appData(9000, 0x5a), wire.CodeFormat},
		{"nothing staged", nil, wire.CodeFormat},
		{"replayed upk", pkg1, wire.CodeReplay},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := v.on(v.d.Clone())
			w.t = t
			before := w.region(hal.RegionPrimary)
			st0 := w.state()
			w.requestUpdate(t, tc.pkg)
			if w.launched == nil || w.launched.Version != "1.0.0" {
				t.Fatalf("1.0.0 not running\nlog:\n%s", w.log.String())
			}
			bi := w.launched.Services.BootInfo()
			if wire.Code(bi.LastUpdate) != tc.code || bi.LastUpdateDetail == "" || bi.UpdatedThisBoot {
				t.Fatalf("boot info %+v, want code %d\nlog:\n%s", bi, tc.code, w.log.String())
			}
			if !bytes.Equal(w.region(hal.RegionPrimary), before) {
				t.Fatal("primary slot changed")
			}
			st := w.state()
			if st.Seq != st0.Seq || st.UpdateRequested || st.InstallPending || st.SecurityCounter != st0.SecurityCounter ||
				*st.App != *st0.App || st.ReplayIDs != st0.ReplayIDs || st.TimeFloor != st0.TimeFloor {
				t.Fatalf("state %+v", st)
			}
			if !bytes.Equal(w.region(hal.RegionSecure), v.region(hal.RegionSecure)) {
				t.Fatal("secure storage written by a rejected update")
			}
			// The next boot runs 1.0.0 without trying again.
			w.expectBoot(rel1)
		})
	}
	// After all that, the good package installs (nothing was consumed).
	v.requestUpdate(t, good)
	v.expectBoot(rel2)
	// And it cannot be replayed.
	v.requestUpdate(t, good)
	if v.launched == nil || wire.Code(v.launched.Services.BootInfo().LastUpdate) != wire.CodeReplay {
		t.Fatal("replay of the installed package not refused")
	}
}
