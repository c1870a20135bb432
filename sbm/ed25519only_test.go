//go:build sbm_ed25519only

package sbm

import (
	"bytes"
	"strings"
	"testing"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/wire"
)

// The Ed25519-only SBM (the firmware's board-ed25519 build, docs/silicon.md):
// run with go test -tags sbm_ed25519only -run Ed25519Only ./sbm.

// TestEd25519OnlyRefusesP256 provisions a P-256 device: refused with
// CodeUnsupported and a message naming the suite, nothing stored.
func TestEd25519OnlyRefusesP256(t *testing.T) {
	v := newDev(t, ctxA, 40)
	v.programRootHash(ctxA)
	before := v.region(hal.RegionSecure)
	resp := v.exchange(provisionRequest(t, ctxA, false))
	if resp.Code != uint8(wire.CodeUnsupported) || resp.CSR != nil || !strings.Contains(resp.Detail, "P-256") {
		t.Fatalf("code %d (%s), want %d naming P-256", resp.Code, resp.Detail, wire.CodeUnsupported)
	}
	if !bytes.Equal(v.region(hal.RegionSecure), before) {
		t.Fatal("secure storage changed")
	}
	if v.state().Lifecycle != wire.LifecycleBlank {
		t.Fatal("provisioned")
	}
}

// TestEd25519OnlyInstalls is the whole Ed25519 flow without P-256:
// provisioning, an install, a verified boot, an attestation token and the
// refusals of a tampered package and a downgrade.
func TestEd25519OnlyInstalls(t *testing.T) {
	v := newDev(t, ctxE, 41)
	v.provision(true)
	rel := newRelease(t, ctxE, appData(5000, 3), "1.1.0", 2)
	if err := v.install(rel.forDevice(v)); err != nil {
		t.Fatalf("install: %v\nlog:\n%s", err, v.log.String())
	}
	v.expectBoot(rel)
	s := v.snapshot()
	bad := rel.forDevice(v)
	bad[len(bad)-len(rel.created.Package.Payload)+10] ^= 1
	if err := v.install(bad); codeOfErr(err) != wire.CodeDecrypt {
		t.Fatalf("tampered: %v", err)
	}
	v.unchanged("tampered", s)
	old := newRelease(t, ctxE, appData(5000, 4), "1.0.0", 1)
	if err := v.install(old.forDevice(v)); codeOfErr(err) != wire.CodeDowngrade {
		t.Fatalf("downgrade: %v", err)
	}
	v.unchanged("downgrade", s)
}
