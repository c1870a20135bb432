package secpkg

import (
	"bytes"
	"crypto/elliptic"
	"errors"
	"math/big"
	"testing"

	"github.com/sbm-project/sbm/internal/cose"
)

// toHighS returns msg, a tagged ES256 COSE_Sign1, with its signature
// replaced by the other one of the pair, r ‖ n − s, which crypto/ecdsa
// also accepts.
func toHighS(t *testing.T, msg []byte) []byte {
	t.Helper()
	s, err := cose.DecodeSign1(msg)
	if err != nil {
		t.Fatal(err)
	}
	if !cose.IsLowS(s.Signature) {
		t.Fatal("signer produced a high-S signature")
	}
	sig := bytes.Clone(s.Signature)
	n := elliptic.P256().Params().N
	new(big.Int).Sub(n, new(big.Int).SetBytes(sig[32:])).FillBytes(sig[32:])
	return cose.AppendSign1(nil, s.Protected, s.Unprotected, s.Payload, sig)
}

// TestHighSRejected checks that every ES256 structure of the format —
// manifest, key certificate, UPK — is refused when its valid signature is
// replaced by the high-S one (spec §2).
func TestHighSRejected(t *testing.T) {
	c := newCtx(t, SuiteP256)
	p := c.build(3000, 1024)
	kcImg := c.keyCert(c.keyCertMap(RoleImageSigning, c.img))
	kcUA := c.keyCert(c.keyCertMap(RoleUpdateAuthority, c.ua))
	um := c.upkMap(p.manifest, RecipientDevice, p.cek)
	upk := c.sign(c.ua, ContentTypeUPK, um.enc(), kcUA)
	highS := func(err error) bool {
		return errors.Is(err, ErrSignature) && errors.Is(err, cose.ErrHighS)
	}

	if _, err := VerifyManifest(c.anchors, p.manifest); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyManifest(c.anchors, toHighS(t, p.manifest)); !highS(err) {
		t.Errorf("high-S manifest: %v", err)
	}
	if _, err := VerifyUPK(c.anchors, upk); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyUPK(c.anchors, toHighS(t, upk)); !highS(err) {
		t.Errorf("high-S UPK: %v", err)
	}
	// Key certificates, both as carried in a structure and as trusted at
	// provisioning.
	m := c.sign(c.img, ContentTypeManifest, p.m.enc(), toHighS(t, kcImg))
	if _, err := VerifyManifest(c.anchors, m); !highS(err) || !errors.Is(err, ErrKeyCert) {
		t.Errorf("manifest with a high-S key certificate: %v", err)
	}
	u := c.sign(c.ua, ContentTypeUPK, um.enc(), toHighS(t, kcUA))
	if _, err := VerifyUPK(c.anchors, u); !highS(err) || !errors.Is(err, ErrKeyCert) {
		t.Errorf("UPK with a high-S key certificate: %v", err)
	}
	a := *c.anchors
	if err := a.TrustKeyCert(toHighS(t, kcImg), RoleImageSigning); !highS(err) {
		t.Errorf("TrustKeyCert(high-S): %v", err)
	}
	// Trusting the low-S key certificate does not make its high-S twin
	// trusted: it has another digest, so its signature is checked.
	if err := a.TrustKeyCert(kcImg, RoleImageSigning); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyManifest(&a, m); !highS(err) {
		t.Errorf("high-S twin of a trusted key certificate: %v", err)
	}
}
