package sbm

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/internal/cbor"
	"github.com/sbm-project/sbm/internal/cose"
	"github.com/sbm-project/sbm/internal/hostcose"
	"github.com/sbm-project/sbm/internal/secpkg"
	"github.com/sbm-project/sbm/trust"
	"github.com/sbm-project/sbm/wire"
)

// hierarchy is a root key with an image-signing and an update-authority
// key certified by it: the OEM's keys after a root rotation.
type hierarchy struct {
	root       crypto.Signer
	rootRaw    []byte
	image, upd *signingKey
}

// newSigner returns a fresh signing key of c's suite and its raw public key.
func newSigner(t testing.TB, c *trust.Context) (crypto.Signer, []byte) {
	t.Helper()
	var s crypto.Signer
	var err error
	if c.Suite() == trust.SuiteEd25519 {
		_, s, err = ed25519.GenerateKey(rand.Reader)
	} else {
		s, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	raw, err := hostcose.RawPublicKey(s.Public())
	if err != nil {
		t.Fatal(err)
	}
	return s, raw
}

// signBy signs payload with key (raw public key raw) under content type ct
// and the unprotected header un (nil: empty).
func signBy(t testing.TB, c *trust.Context, key crypto.Signer, raw []byte, ct string, un, payload []byte) []byte {
	t.Helper()
	kid := secpkg.KeyID(raw)
	alg := algOf(c)
	b, err := cose.Sign(nil, rand.Reader, key, alg, cose.AppendProtected(nil, alg, ct, kid[:]), un, payload)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// certify makes a key of role certified by root (raw rootRaw) at epoch
// (key 6, left out when 0).
func certify(t testing.TB, c *trust.Context, root crypto.Signer, rootRaw []byte, role secpkg.Role, epoch uint64) *signingKey {
	s, raw := newSigner(t, c)
	vendor := c.VendorID()
	n := uint64(5)
	if epoch > 0 {
		n = 6
	}
	p := cbor.AppendMapHeader(nil, n)
	p = cbor.AppendUint(cbor.AppendUint(p, 1), uint64(role))
	p = cbor.AppendInt(cbor.AppendUint(p, 2), algOf(c))
	p = cbor.AppendBytes(cbor.AppendUint(p, 3), raw)
	p = cbor.AppendBytes(cbor.AppendUint(p, 4), vendor[:])
	p = cbor.AppendUint(cbor.AppendUint(p, 5), uint64(fixedNow.Unix()))
	if epoch > 0 {
		p = cbor.AppendUint(cbor.AppendUint(p, 6), epoch)
	}
	return &signingKey{signer: s, raw: raw, keyCert: signBy(t, c, root, rootRaw, secpkg.ContentTypeKeyCert, nil, p)}
}

// newHierarchy makes a new root and its two subordinate keys.
func newHierarchy(t testing.TB, c *trust.Context) *hierarchy {
	h := &hierarchy{}
	h.root, h.rootRaw = newSigner(t, c)
	h.image = certify(t, c, h.root, h.rootRaw, secpkg.RoleImageSigning, 0)
	h.upd = certify(t, c, h.root, h.rootRaw, secpkg.RoleUpdateAuthority, 0)
	return h
}

// transition is the statement by root (raw rootRaw) handing over to the
// root of slot.
func transition(t testing.TB, c *trust.Context, root crypto.Signer, rootRaw []byte, slot uint64, next []byte) []byte {
	vendor := c.VendorID()
	p := cbor.AppendMapHeader(nil, 5)
	p = cbor.AppendUint(cbor.AppendUint(p, 1), 1)
	p = cbor.AppendBytes(cbor.AppendUint(p, 2), vendor[:])
	p = cbor.AppendUint(cbor.AppendUint(p, 3), slot)
	p = cbor.AppendBytes(cbor.AppendUint(p, 4), next)
	p = cbor.AppendUint(cbor.AppendUint(p, 5), uint64(fixedNow.Unix()))
	return signBy(t, c, root, rootRaw, secpkg.ContentTypeRootTransition, nil, p)
}

// under returns rel re-signed in hierarchy h (its image key signs the
// manifest), carrying the root transition statement tr (nil: none), and
// its package for v with a device UPK re-signed by h's update authority.
func under(t testing.TB, rel *release, h *hierarchy, tr []byte, v *dev) []byte {
	t.Helper()
	m, err := cose.DecodeSign1(rel.created.Package.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	n := uint64(1)
	if tr != nil {
		n = 2
	}
	un := cbor.AppendBytes(cbor.AppendInt(cbor.AppendMapHeader(nil, n), secpkg.LabelKeyCert), h.image.keyCert)
	if tr != nil {
		un = cbor.AppendBytes(cbor.AppendInt(un, secpkg.LabelRootTransition), tr)
	}
	r := resigned(t, rel, h.image, nil)
	r.created.Package.Manifest = signBy(t, rel.c, h.image.signer, h.image.raw, secpkg.ContentTypeManifest, un, m.Payload)
	u, err := cose.DecodeSign1(r.upkFor(t, v.recipient(), nil))
	if err != nil {
		t.Fatal(err)
	}
	uun := cbor.AppendBytes(cbor.AppendInt(cbor.AppendMapHeader(nil, 1), secpkg.LabelKeyCert), h.upd.keyCert)
	return r.container(t, signBy(t, rel.c, h.upd.signer, h.upd.raw, secpkg.ContentTypeUPK, uun, u.Payload))
}

// rootSlotsFor programs root-key fuse slots 1 and 2 of v with the hashes
// of h1's and h2's roots, as the provisioning of a part with successor
// roots does.
func rootSlotsFor(t *testing.T, v *dev, h1, h2 *hierarchy) {
	for i, h := range []*hierarchy{h1, h2} {
		if err := hal.ProgramRootKeySlot(v.d.Fuses(), i+1, secpkg.KeyID(h.rootRaw)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRootRotation: the device moves from root 0 to root 1 to root 2, each
// time through a statement of the current root carried by a package of
// the new hierarchy; after each move the old root's packages are refused,
// also after the flash is restored; statements that skip a slot, name a
// key other than the slot's, or come from an old root are refused or
// ignored; and the last root cannot be revoked.
func TestRootRotation(t *testing.T) {
	for _, c := range []*trust.Context{ctxA, ctxE} {
		t.Run(string(c.Suite()), func(t *testing.T) {
			v, _ := withV1(t, c, 80)
			h1, h2, h3 := newHierarchy(t, c), newHierarchy(t, c), newHierarchy(t, c)
			rootSlotsFor(t, v, h1, h2)
			root0, err := c.Signer(trust.RootKey)
			if err != nil {
				t.Fatal(err)
			}
			raw0, _ := hostcose.RawPublicKey(root0.Public())
			dump, err := v.d.DumpFlash()
			if err != nil {
				t.Fatal(err)
			}
			rel := func(ver string, ctr uint32, tag byte) *release {
				return newRelease(t, c, appData(3000, tag), ver, ctr)
			}
			// Refused moves: a skipped slot, a key that is not the slot's,
			// a package of the new hierarchy without a statement.
			for _, tc := range []struct {
				name string
				pkg  []byte
				code wire.Code
			}{
				{"skips slot 1", under(t, rel("1.1.0", 2, 11), h2, transition(t, c, root0, raw0, 2, h2.rootRaw), v), wire.CodeSignature},
				{"not the slot's key", under(t, rel("1.2.0", 2, 12), h3, transition(t, c, root0, raw0, 1, h3.rootRaw), v), wire.CodeSignature},
				{"no statement", under(t, rel("1.3.0", 2, 13), h1, nil, v), wire.CodeSignature},
				{"statement by an unknown root", under(t, rel("1.4.0", 2, 14), h1, transition(t, c, h3.root, h3.rootRaw, 1, h1.rootRaw), v), wire.CodeSignature},
			} {
				if err := v.install(tc.pkg); codeOfErr(err) != tc.code {
					t.Fatalf("%s: %v, want code %d", tc.name, err, tc.code)
				}
			}
			if fuseValue(t, v.d, FuseRootIndex) != 0 {
				t.Fatal("a refused transition moved the root")
			}
			// Root 0 -> 1.
			r2 := rel("2.0.0", 3, 2)
			if err := v.install(under(t, r2, h1, transition(t, c, root0, raw0, 1, h1.rootRaw), v)); err != nil {
				t.Fatal(err)
			}
			v.expectBoot(r2)
			if got := fuseValue(t, v.d, FuseRootIndex); got != 1 {
				t.Fatalf("root index fuse %d", got)
			}
			if err := v.install(rel("2.1.0", 3, 21).forDevice(v)); codeOfErr(err) != wire.CodeSignature {
				t.Fatalf("root 0's package after the move: %v", err)
			}
			// The same package again: its statement (root 0's) is ignored.
			r22 := rel("2.2.0", 3, 22)
			if err := v.install(under(t, r22, h1, transition(t, c, root0, raw0, 1, h1.rootRaw), v)); err != nil {
				t.Fatalf("an old statement with a package of the current root: %v", err)
			}
			// Root 1 -> 2, as a staged update.
			r3 := rel("3.0.0", 4, 3)
			v.requestUpdate(t, under(t, r3, h2, transition(t, c, h1.root, h1.rootRaw, 2, h2.rootRaw), v))
			v.expectBoot(r3)
			if got := fuseValue(t, v.d, FuseRootIndex); got != 2 {
				t.Fatalf("root index fuse %d", got)
			}
			// The last root cannot be revoked.
			r4 := rel("4.0.0", 5, 4)
			if err := v.install(under(t, r4, h3, transition(t, c, h2.root, h2.rootRaw, 3, h3.rootRaw), v)); codeOfErr(err) != wire.CodeRevoked {
				t.Fatalf("revoking the last root: %v", err)
			}
			if err := v.install(under(t, r4, h2, nil, v)); err != nil {
				t.Fatalf("root 2's package: %v", err)
			}
			v.expectBoot(r4)
			// Restoring the flash of root 0: the device refuses it.
			if err := v.d.RestoreFlash(dump); err != nil {
				t.Fatal(err)
			}
			v.boot(false, false)
			if v.launched != nil {
				t.Fatalf("root 0's storage launched %s\n%s", v.launched.Version, v.log.String())
			}
		})
	}
}

// TestPowerFailRootTransition cuts power (clean and torn) at every flash
// and fuse operation of the install that moves the device to root 1, with
// a second cut during the recovery: the device always ends running 1.0.0
// under root 0 or 2.0.0 under root 1, with the root index fuse matching,
// and accepts the next package of that root.
func TestPowerFailRootTransition(t *testing.T) {
	c := ctxA
	v, rel1 := withV1(t, c, 81)
	h1, h2 := newHierarchy(t, c), newHierarchy(t, c)
	rootSlotsFor(t, v, h1, h2)
	root0, _ := c.Signer(trust.RootKey)
	raw0, _ := hostcose.RawPublicKey(root0.Public())
	rel2 := newRelease(t, c, appData(3000, 2), "2.0.0", 3)
	next0 := newRelease(t, c, appData(2000, 5), "5.0.0", 4).forDevice(v)
	next1 := under(t, newRelease(t, c, appData(2000, 6), "6.0.0", 4), h1, nil, v)
	n, moved := sweepInstall(t, v, under(t, rel2, h1, transition(t, c, root0, raw0, 1, h1.rootRaw), v), FuseRootIndex, rel2.version,
		func(version string, idx int) ([]byte, wire.Code, error) {
			switch {
			case version == rel2.version && idx == 1:
				return next1, 0, nil
			case version == rel1.version && idx == 0:
				return next0, 0, nil
			}
			return nil, 0, fmt.Errorf("%s runs, root index fuse %d", version, idx)
		})
	t.Logf("%d cut points; moved to root 1 in %d runs", n, moved)
}
