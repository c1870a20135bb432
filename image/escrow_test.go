package image

import (
	"bytes"
	"crypto/elliptic"
	"encoding/hex"
	"errors"
	"math/big"
	"os"
	"strings"
	"testing"

	"github.com/sbm-project/sbm/internal/cose"
	"github.com/sbm-project/sbm/internal/secpkg"
	"github.com/sbm-project/sbm/trust"
	"github.com/sbm-project/sbm/upk"
)

// TestVerifyEscrow checks that Verify refuses escrow (kind 3) UPKs unless
// asked for the OEM's escrow check, and that the escrow check accepts only
// escrow UPKs for the context's escrow key (spec §7.3).
func TestVerifyEscrow(t *testing.T) {
	f := newFixture(t, trust.SuiteP256, 5000)
	ek, err := f.ctx.EscrowKey()
	if err != nil {
		t.Fatal(err)
	}
	// A kind-3 UPK re-signed by the update authority for a device's key:
	// before, verify accepted it with the device's key.
	devEscrow, err := upk.Issue(f.ctx, f.pkg.Manifest, &f.created.CEK, upk.Recipient{Kind: upk.Escrow, Key: f.dev.PublicKey()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts VerifyOptions
		want []error // nil: accepted
	}{
		{"device UPK", VerifyOptions{Key: f.dev, UPK: f.upk, DeviceID: f.devID}, nil},
		{"escrow UPK with the escrow key", VerifyOptions{Key: ek, UPK: f.created.Escrow}, []error{ErrEscrowUPK, secpkg.ErrNotRecipient}},
		{"escrow UPK for a device key", VerifyOptions{Key: f.dev, UPK: devEscrow}, []error{ErrEscrowUPK, secpkg.ErrNotRecipient}},
		{"escrow UPK for a device key and ID", VerifyOptions{Key: f.dev, UPK: devEscrow, DeviceID: f.devID}, []error{ErrEscrowUPK}},
		{"escrow mode: escrow UPK", VerifyOptions{Key: ek, UPK: f.created.Escrow, Escrow: true}, nil},
		{"escrow mode: device UPK", VerifyOptions{Key: ek, UPK: f.upk, Escrow: true}, []error{ErrNotEscrowUPK, secpkg.ErrNotRecipient}},
		{"escrow mode: device UPK, device key", VerifyOptions{Key: f.dev, UPK: f.upk, Escrow: true}, []error{ErrNotEscrowUPK}},
		{"escrow mode: kind 3 for a device key", VerifyOptions{Key: ek, UPK: devEscrow, Escrow: true}, []error{secpkg.ErrNotRecipient}},
	}
	for _, tt := range tests {
		_, err := Verify(f.ctx, f.pkg, &tt.opts)
		if tt.want == nil {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		for _, w := range tt.want {
			if !errors.Is(err, w) {
				t.Errorf("%s: %v, want %v", tt.name, err, w)
			}
		}
	}
	// An escrow UPK in the package is no more accepted than a separate one.
	p := *f.pkg
	p.UPKs = [][]byte{f.created.Escrow}
	if _, err := Verify(f.ctx, &p, &VerifyOptions{Key: ek}); !errors.Is(err, ErrEscrowUPK) {
		t.Errorf("escrow UPK in the package: %v", err)
	}
	// RecoverCEK still opens the context's escrow record.
	rel := &trust.Release{ManifestDigest: hex.EncodeToString(f.created.ManifestDigest[:]), Version: "1.0.0"}
	if err := f.ctx.SaveRelease(rel, f.created.Escrow); err != nil {
		t.Fatal(err)
	}
	cek, err := RecoverCEK(f.ctx, f.pkg)
	if err != nil || *cek != f.created.CEK {
		t.Errorf("RecoverCEK: %v", err)
	}
}

// TestHighSContextKeyCert checks the message for a context whose key
// certificate was signed before the low-S rule (spec §2).
func TestHighSContextKeyCert(t *testing.T) {
	f := newFixture(t, trust.SuiteP256, 10)
	path := f.ctx.Path("update-authority.keycert")
	kc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := cose.DecodeSign1(kc)
	if err != nil {
		t.Fatal(err)
	}
	sig := bytes.Clone(s.Signature)
	n := elliptic.P256().Params().N
	new(big.Int).Sub(n, new(big.Int).SetBytes(sig[32:])).FillBytes(sig[32:])
	if err := os.WriteFile(path, cose.AppendSign1(nil, s.Protected, s.Unprotected, s.Payload, sig), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := trust.Open(f.ctx.Dir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Anchors(c)
	if !errors.Is(err, cose.ErrHighS) || !strings.Contains(err.Error(), "update-authority key certificate has a high-S") {
		t.Fatalf("Anchors = %v", err)
	}
}
