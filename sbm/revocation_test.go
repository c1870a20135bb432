package sbm

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"

	"github.com/sbm-project/sbm/hal"

	"github.com/sbm-project/sbm/internal/cbor"
	"github.com/sbm-project/sbm/internal/cose"
	"github.com/sbm-project/sbm/internal/hostcose"
	"github.com/sbm-project/sbm/internal/secpkg"
	"github.com/sbm-project/sbm/trust"
	"github.com/sbm-project/sbm/vmcu"
	"github.com/sbm-project/sbm/wire"
)

// rootSign signs payload with c's root key under content type ct, as the
// root signs key certificates and statements (spec §4).
func rootSign(t testing.TB, c *trust.Context, ct string, payload []byte) []byte {
	t.Helper()
	root, err := c.Signer(trust.RootKey)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := hostcose.RawPublicKey(root.Public())
	if err != nil {
		t.Fatal(err)
	}
	return signBy(t, c, root, raw, ct, nil, payload)
}

// signingKey is a subordinate signing key with its key certificate.
type signingKey struct {
	signer  crypto.Signer
	raw     []byte
	keyCert []byte
}

// newImageKey makes a new image-signing key for c with a key certificate
// of epoch (key 6 of spec §4) from c's root: a rotation.
func newImageKey(t testing.TB, c *trust.Context, epoch uint64) *signingKey {
	t.Helper()
	root, err := c.Signer(trust.RootKey)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := hostcose.RawPublicKey(root.Public())
	if err != nil {
		t.Fatal(err)
	}
	return certify(t, c, root, raw, secpkg.RoleImageSigning, epoch)
}

// revocation is a root-signed statement revoking role's keys below epoch.
func revocation(t testing.TB, c *trust.Context, role secpkg.Role, epoch uint64) []byte {
	vendor := c.VendorID()
	p := cbor.AppendMapHeader(nil, 5)
	p = cbor.AppendUint(cbor.AppendUint(p, 1), 1)
	p = cbor.AppendBytes(cbor.AppendUint(p, 2), vendor[:])
	p = cbor.AppendUint(cbor.AppendUint(p, 3), uint64(role))
	p = cbor.AppendUint(cbor.AppendUint(p, 4), epoch)
	p = cbor.AppendUint(cbor.AppendUint(p, 5), uint64(fixedNow.Unix()))
	return rootSign(t, c, secpkg.ContentTypeRevocation, p)
}

// resigned returns rel with its manifest signed by k instead, carrying the
// revocation statement rev in its unprotected header (nil: none).
func resigned(t testing.TB, rel *release, k *signingKey, rev []byte) *release {
	t.Helper()
	m, err := cose.DecodeSign1(rel.created.Package.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	alg := algOf(rel.c)
	kid := secpkg.KeyID(k.raw)
	n := uint64(1)
	if rev != nil {
		n = 2
	}
	un := cbor.AppendBytes(cbor.AppendInt(cbor.AppendMapHeader(nil, n), secpkg.LabelKeyCert), k.keyCert)
	if rev != nil {
		un = cbor.AppendBytes(cbor.AppendInt(un, secpkg.LabelRevocation), rev)
	}
	man, err := cose.Sign(nil, rand.Reader, k.signer, alg, cose.AppendProtected(nil, alg, secpkg.ContentTypeManifest, kid[:]), un, m.Payload)
	if err != nil {
		t.Fatal(err)
	}
	p := *rel.created.Package
	p.Manifest = man
	p.UPKs = nil
	cr := *rel.created
	cr.Package = &p
	out := *rel
	out.created = &cr
	return &out
}

// TestKeyRevocation: a package signed by a rotated image-signing key
// (epoch 1) installs without reprogramming; carrying a root-signed
// statement that revokes epoch 0, it raises the device's floor and its
// fuse; from then on a package signed by the old key is refused over the
// UART and as a staged update, also after the flash is restored to before
// the revocation; the new key keeps working. A statement that revokes its
// own package's key is refused and changes nothing.
func TestKeyRevocation(t *testing.T) {
	for _, c := range []*trust.Context{ctxA, ctxE} {
		t.Run(string(c.Suite()), func(t *testing.T) {
			v, _ := withV1(t, c, 70)
			dump, err := v.d.DumpFlash()
			if err != nil {
				t.Fatal(err)
			}
			k1 := newImageKey(t, c, 1)
			old3 := newRelease(t, c, appData(4000, 3), "3.0.0", 4)

			// Rotation alone: the device accepts the new key as is.
			plain := resigned(t, newRelease(t, c, appData(4000, 5), "1.5.0", 2), k1, nil)
			if err := v.install(plain.forDevice(v)); err != nil {
				t.Fatalf("rotated key without a statement: %v", err)
			}
			// A statement revoking the package's own key: refused.
			self := resigned(t, newRelease(t, c, appData(4000, 6), "1.6.0", 2), k1, revocation(t, c, secpkg.RoleImageSigning, 2))
			secure := v.region(hal.RegionSecure)
			if err := v.install(self.forDevice(v)); codeOfErr(err) != wire.CodeRevoked {
				t.Fatalf("statement revoking its own signer: %v", err)
			}
			if !bytes.Equal(v.region(hal.RegionSecure), secure) || fuseValue(t, v.d, FuseImageEpoch) != 0 {
				t.Fatal("a refused statement changed the device")
			}
			// A statement for the update authority whose UPK key it revokes.
			ua := resigned(t, newRelease(t, c, appData(4000, 7), "1.7.0", 2), k1, revocation(t, c, secpkg.RoleUpdateAuthority, 1))
			if err := v.install(ua.forDevice(v)); codeOfErr(err) != wire.CodeRevoked {
				t.Fatalf("statement revoking its upk's key: %v", err)
			}

			// The revocation, with an image signed by the new key.
			rel2 := resigned(t, newRelease(t, c, appData(6000, 2), "2.0.0", 3), k1, revocation(t, c, secpkg.RoleImageSigning, 1))
			if err := v.install(rel2.forDevice(v)); err != nil {
				t.Fatal(err)
			}
			v.expectBoot(rel2)
			if got := fuseValue(t, v.d, FuseImageEpoch); got != 1 {
				t.Fatalf("image-signing epoch fuse %d", got)
			}
			// The old key is refused in every path.
			if err := v.install(old3.forDevice(v)); codeOfErr(err) != wire.CodeRevoked {
				t.Fatalf("old key over the UART: %v", err)
			}
			v.requestUpdate(t, old3.forDevice(v))
			if bi := v.launched.Services.BootInfo(); wire.Code(bi.LastUpdate) != wire.CodeRevoked || v.launched.Version != "2.0.0" {
				t.Fatalf("old key as a staged update: %+v", bi)
			}
			// The new key keeps working.
			rel4 := resigned(t, newRelease(t, c, appData(5000, 4), "4.0.0", 4), k1, nil)
			v.requestUpdate(t, rel4.forDevice(v))
			v.expectBoot(rel4)
			// Restoring the flash from before the revocation does not bring
			// the old key back: the floor is in fuses.
			if err := v.d.RestoreFlash(dump); err != nil {
				t.Fatal(err)
			}
			old5 := newRelease(t, c, appData(4000, 9), "5.0.0", 5)
			if err := v.install(old5.forDevice(v)); codeOfErr(err) != wire.CodeRevoked {
				t.Fatalf("old key after restoring the flash: %v", err)
			}
		})
	}
}

// fuseValue reads fuse counter n of d.
func fuseValue(t *testing.T, d *vmcu.Device, n int) int {
	t.Helper()
	v, err := hal.ReadCounter(d.Fuses(), n)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestPowerFailRevocation cuts power (clean and torn) at every flash and
// fuse operation of the install that carries a revocation statement, with
// a second cut during the recovery: the device always ends running 1.0.0
// or 2.0.0; when 2.0.0 is installed the image-signing epoch fuse is 1 (the
// boot completes an interrupted fuse write), and the old key is then
// refused; when 1.0.0 still runs, the old key still installs.
func TestPowerFailRevocation(t *testing.T) {
	v, rel1 := withV1(t, ctxA, 71)
	k1 := newImageKey(t, ctxA, 1)
	rel2 := resigned(t, newRelease(t, ctxA, appData(3000, 2), "2.0.0", 3), k1, revocation(t, ctxA, secpkg.RoleImageSigning, 1))
	oldPkg := newRelease(t, ctxA, appData(3000, 3), "3.0.0", 4).forDevice(v)
	n, moved := sweepInstall(t, v, rel2.forDevice(v), FuseImageEpoch, rel2.version,
		func(version string, epoch int) ([]byte, wire.Code, error) {
			switch {
			case version == rel2.version && epoch == 1:
				return oldPkg, wire.CodeRevoked, nil
			case version == rel1.version && epoch == 0:
				return oldPkg, 0, nil
			}
			return nil, 0, fmt.Errorf("%s runs, epoch fuse %d", version, epoch)
		})
	t.Logf("%d cut points; 2.0.0 with its epoch fuse in %d runs", n, moved)
}

// sweepInstall cuts power (clean and torn, 2 seeds) at every flash and
// fuse operation of installing pkg over the UART on v, cuts again during
// the recovery, boots, reads fuse counter fuse and asks judge about the
// version running: judge returns the package to send next and the code it
// must get (0: it installs). It fails the test if the sweep is too small
// or newVersion never ran, and returns the cut points and the runs in
// which newVersion ran.
func sweepInstall(t *testing.T, v *dev, pkg []byte, fuse int, newVersion string,
	judge func(version string, fuse int) ([]byte, wire.Code, error)) (int, int) {
	t.Helper()
	scenario := func(d *vmcu.Device) error {
		x := v.on(d)
		x.t = t
		var err error
		x.session = func(tg wire.Target) { err = send(tg, pkg, 1000) }
		if _, perr := x.powerOn(false, true); perr != nil {
			return perr
		}
		return err
	}
	moved := 0
	check := func(d *vmcu.Device, cut vmcu.PowerCut) error {
		x := v.on(d)
		x.t = t
		d.ArmPowerCut(vmcu.PowerCut{At: 1 + cut.At%7, Torn: cut.Torn, Seed: cut.Seed + 7})
		if _, err := x.powerOn(false, false); err != nil {
			return err
		}
		d.DisarmPowerCut()
		if _, err := x.powerOn(false, false); err != nil {
			return err
		}
		if x.launched == nil {
			return errors.New("nothing launched")
		}
		f, err := hal.ReadCounter(d.Fuses(), fuse)
		if err != nil {
			return err
		}
		next, want, err := judge(x.launched.Version, f)
		if err != nil {
			return err
		}
		if x.launched.Version == newVersion {
			moved++
		}
		var ierr error
		x.session = func(tg wire.Target) { ierr = send(tg, next, 1000) }
		if _, err := x.powerOn(false, true); err != nil {
			return err
		}
		if codeOfErr(ierr) != want {
			return fmt.Errorf("next package with %s running: %v, want code %d", x.launched.Version, ierr, want)
		}
		return nil
	}
	n, err := vmcu.Sweep(v.d.Clone(), scenario, check, vmcu.SweepOptions{Clean: true, TornSeeds: 2})
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 || moved == 0 {
		t.Fatalf("sweep too small: %d cut points, %d runs with %s", n, moved, newVersion)
	}
	return n, moved
}

// algOf returns the COSE signature algorithm of c's suite.
func algOf(c *trust.Context) int64 {
	if c.Suite() == trust.SuiteEd25519 {
		return cose.AlgEdDSA
	}
	return cose.AlgES256
}
