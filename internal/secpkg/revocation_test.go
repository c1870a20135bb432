package secpkg

import (
	"crypto/rand"
	"errors"
	"testing"

	"github.com/sbm-project/sbm/internal/cbor"
	"github.com/sbm-project/sbm/internal/cose"
)

// revocationMap is a revocation statement payload of c for role below
// epoch.
func (c *testCtx) revocationMap(role Role, epoch uint64) cmap {
	return cmap{{1, u(1)}, {2, bs(c.vendor[:])}, {3, u(uint64(role))}, {4, u(epoch)}, {5, u(c.now)}}
}

// manifestWith signs manifest map m with key k (its key certificate kc),
// carrying the revocation statement rev (nil: none).
func (c *testCtx) manifestWith(k keyPair, kc []byte, m cmap, rev []byte) []byte {
	c.t.Helper()
	kid := KeyID(k.pub)
	prot := cose.AppendProtected(nil, c.suite.Alg(), ContentTypeManifest, kid[:])
	n := uint64(1)
	if rev != nil {
		n = 2
	}
	unprot := cbor.AppendBytes(cbor.AppendInt(cbor.AppendMapHeader(nil, n), LabelKeyCert), kc)
	if rev != nil {
		unprot = cbor.AppendBytes(cbor.AppendInt(unprot, LabelRevocation), rev)
	}
	msg, err := cose.Sign(nil, rand.Reader, k.signer, c.suite.Alg(), prot, unprot, m.enc())
	if err != nil {
		c.t.Fatal(err)
	}
	return msg
}

// TestKeyEpochs: a key certificate's epoch (key 6, 0 when absent) is
// compared with the anchors' minimum for its role: below it, the key is
// revoked for manifests and UPKs alike; at or above, accepted.
func TestKeyEpochs(t *testing.T) {
	for _, s := range suites {
		t.Run(s.name, func(t *testing.T) {
			c := newCtx(t, s.suite)
			p := c.build(3000, 1024)
			kc0 := c.keyCert(c.keyCertMap(RoleImageSigning, c.img))
			kc3 := c.keyCert(c.keyCertMap(RoleImageSigning, c.img).set(6, u(3)))
			m0 := c.manifestWith(c.img, kc0, p.m, nil)
			m3 := c.manifestWith(c.img, kc3, p.m, nil)
			a := *c.anchors
			for _, tc := range []struct {
				name    string
				min     uint8
				msg     []byte
				epoch   uint8
				revoked bool
			}{
				{"no epoch, no floor", 0, m0, 0, false},
				{"epoch 3, no floor", 0, m3, 3, false},
				{"epoch 3, floor 3", 3, m3, 3, false},
				{"no epoch, floor 1", 1, m0, 0, true},
				{"epoch 3, floor 4", 4, m3, 0, true},
			} {
				a.MinEpoch[RoleImageSigning] = tc.min
				m, err := VerifyManifest(&a, tc.msg)
				if tc.revoked {
					if !errors.Is(err, ErrRevoked) {
						t.Errorf("%s: %v, want revoked", tc.name, err)
					}
					continue
				}
				if err != nil || m.SignerEpoch != tc.epoch {
					t.Errorf("%s: %v (epoch %v)", tc.name, err, m)
				}
			}
			// The update-authority floor does not touch image keys, and
			// a revoked UPK key is refused.
			a = *c.anchors
			a.MinEpoch[RoleUpdateAuthority] = 1
			if _, err := VerifyManifest(&a, m0); err != nil {
				t.Errorf("image key refused by the update-authority floor: %v", err)
			}
			upk := c.signUPK(c.upkMap(p.manifest, RecipientDevice, p.cek))
			if _, err := VerifyUPK(&a, upk); !errors.Is(err, ErrRevoked) {
				t.Errorf("UPK with a revoked key: %v", err)
			}
			for _, bad := range []cmap{c.keyCertMap(RoleImageSigning, c.img).set(6, u(256)), c.keyCertMap(RoleImageSigning, c.img).set(6, i(-1))} {
				if _, err := VerifyManifest(c.anchors, c.manifestWith(c.img, c.keyCert(bad), p.m, nil)); !errors.Is(err, ErrKeyCert) {
					t.Errorf("epoch out of range accepted: %v", err)
				}
			}
		})
	}
}

// TestRevocationStatement: a manifest may carry a root-signed statement;
// it is verified (signer, vendor, role, epoch range, content type) and
// must not revoke the key that signed the manifest itself.
func TestRevocationStatement(t *testing.T) {
	for _, s := range suites {
		t.Run(s.name, func(t *testing.T) {
			c := newCtx(t, s.suite)
			p := c.build(3000, 1024)
			kc1 := c.keyCert(c.keyCertMap(RoleImageSigning, c.img).set(6, u(1)))
			good := c.sign(c.root, ContentTypeRevocation, c.revocationMap(RoleImageSigning, 1).enc(), nil)
			m, err := VerifyManifest(c.anchors, c.manifestWith(c.img, kc1, p.m, good))
			if err != nil || m.Revocation == nil || m.Revocation.Role != RoleImageSigning || m.Revocation.MinEpoch != 1 {
				t.Fatalf("valid statement: %v %+v", err, m)
			}
			other := newCtx(t, s.suite)
			for _, tc := range []struct {
				name string
				rev  []byte
				kc   []byte
				want []error
			}{
				{"revokes its own signer", c.sign(c.root, ContentTypeRevocation, c.revocationMap(RoleImageSigning, 2).enc(), nil), kc1, []error{ErrRevoked}},
				{"signed by the image key", c.sign(c.img, ContentTypeRevocation, c.revocationMap(RoleImageSigning, 1).enc(), nil), kc1, []error{ErrRevocation}},
				{"signed by another root", other.sign(other.root, ContentTypeRevocation, c.revocationMap(RoleImageSigning, 1).enc(), nil), kc1, []error{ErrRevocation}},
				{"bad signature", flipLast(good), kc1, []error{ErrRevocation, ErrSignature}},
				{"another vendor", c.sign(c.root, ContentTypeRevocation, c.revocationMap(RoleImageSigning, 1).set(2, bs(make([]byte, 16))).enc(), nil), kc1, []error{ErrRevocation, ErrVendor}},
				{"role 3", c.sign(c.root, ContentTypeRevocation, c.revocationMap(3, 1).enc(), nil), kc1, []error{ErrRevocation}},
				{"epoch 0", c.sign(c.root, ContentTypeRevocation, c.revocationMap(RoleImageSigning, 0).enc(), nil), kc1, []error{ErrRevocation}},
				{"epoch 256", c.sign(c.root, ContentTypeRevocation, c.revocationMap(RoleImageSigning, 256).enc(), nil), kc1, []error{ErrRevocation}},
				{"missing key", c.sign(c.root, ContentTypeRevocation, c.revocationMap(RoleImageSigning, 1).del(5).enc(), nil), kc1, []error{ErrRevocation}},
				{"a key certificate instead", kc1, kc1, []error{ErrRevocation, ErrContentType}},
				{"not a bstr", nil, kc1, []error{ErrMalformed}},
			} {
				msg := c.manifestWith(c.img, tc.kc, p.m, tc.rev)
				if tc.rev == nil { // the label holds an integer
					kid := KeyID(c.img.pub)
					prot := cose.AppendProtected(nil, c.suite.Alg(), ContentTypeManifest, kid[:])
					unprot := cbor.AppendBytes(cbor.AppendInt(cbor.AppendMapHeader(nil, 2), LabelKeyCert), tc.kc)
					unprot = cbor.AppendUint(cbor.AppendInt(unprot, LabelRevocation), 5)
					msg, _ = cose.Sign(nil, rand.Reader, c.img.signer, c.suite.Alg(), prot, unprot, p.m.enc())
				}
				_, err := VerifyManifest(c.anchors, msg)
				checkErr(t, tc.name, err, tc.want...)
			}
		})
	}
}

// FuzzRevocation: any bytes are refused or verified without a panic.
func FuzzRevocation(f *testing.F) {
	c := newCtx(f, SuiteEd25519)
	f.Add(c.sign(c.root, ContentTypeRevocation, c.revocationMap(RoleImageSigning, 1).enc(), nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := VerifyRevocation(c.anchors, b)
		if err == nil && (r.MinEpoch == 0 || r.Role < 1 || r.Role > 2) {
			t.Fatalf("accepted %+v", r)
		}
	})
}

// FuzzRootTransition: any bytes are refused or verified without a panic,
// and an accepted statement names a slot and a key of the suite's size.
func FuzzRootTransition(f *testing.F) {
	c := newCtx(f, SuiteEd25519)
	next := newSigningKey(f, SuiteEd25519)
	good := cmap{{1, u(1)}, {2, bs(c.vendor[:])}, {3, u(1)}, {4, bs(next.pub)}, {5, u(c.now)}}
	f.Add(c.sign(c.root, ContentTypeRootTransition, good.enc(), nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := VerifyRootTransition(c.anchors, b)
		if err == nil && (r.Slot == 0 || len(r.NewRoot) != 32) {
			t.Fatalf("accepted %+v", r)
		}
		ManifestRootTransition(b)
	})
}

// TestRootTransitionStatement: the statement is verified (signer, vendor,
// slot range, key size, content type).
func TestRootTransitionStatement(t *testing.T) {
	for _, s := range suites {
		t.Run(s.name, func(t *testing.T) {
			c := newCtx(t, s.suite)
			next := newSigningKey(t, s.suite)
			m := cmap{{1, u(1)}, {2, bs(c.vendor[:])}, {3, u(1)}, {4, bs(next.pub)}, {5, u(c.now)}}
			tr, err := VerifyRootTransition(c.anchors, c.sign(c.root, ContentTypeRootTransition, m.enc(), nil))
			if err != nil || tr.Slot != 1 || string(tr.NewRoot) != string(next.pub) {
				t.Fatalf("valid statement: %v %+v", err, tr)
			}
			other := newCtx(t, s.suite)
			for _, tc := range []struct {
				name string
				msg  []byte
			}{
				{"signed by another root", other.sign(other.root, ContentTypeRootTransition, m.enc(), nil)},
				{"signed by the image key", c.sign(c.img, ContentTypeRootTransition, m.enc(), nil)},
				{"another vendor", c.sign(c.root, ContentTypeRootTransition, m.set(2, bs(make([]byte, 16))).enc(), nil)},
				{"slot 0", c.sign(c.root, ContentTypeRootTransition, m.set(3, u(0)).enc(), nil)},
				{"short key", c.sign(c.root, ContentTypeRootTransition, m.set(4, bs(next.pub[:20])).enc(), nil)},
				{"revocation content type", c.sign(c.root, ContentTypeRevocation, m.enc(), nil)},
				{"bad signature", flipLast(c.sign(c.root, ContentTypeRootTransition, m.enc(), nil))},
			} {
				if _, err := VerifyRootTransition(c.anchors, tc.msg); !errors.Is(err, ErrRootTransition) {
					t.Errorf("%s: %v", tc.name, err)
				}
			}
		})
	}
}
