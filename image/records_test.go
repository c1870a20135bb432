package image

import (
	"bytes"
	"errors"
	"testing"

	"github.com/sbm-project/sbm/internal/firmware"
	"github.com/sbm-project/sbm/internal/secpkg"
	"github.com/sbm-project/sbm/trust"
	"github.com/sbm-project/sbm/upk"
)

// TestUnusedUPKRecords checks spec §8: every UPK record of a package must
// be a valid UPK bound to the manifest, also those the verifier does not
// use, with or without a recipient key.
func TestUnusedUPKRecords(t *testing.T) {
	f := newFixture(t, trust.SuiteEd25519, 3000)
	other, err := Create(f.ctx, &firmware.Image{Data: f.plain, Format: firmware.FormatBinary}, &CreateOptions{Version: "1.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	otherUPK, err := upk.Issue(f.ctx, other.Package.Manifest, &other.CEK, upk.ClassRecipient(f.ctx), nil)
	if err != nil {
		t.Fatal(err)
	}
	classUPK, err := upk.Issue(f.ctx, f.pkg.Manifest, &f.created.CEK, upk.ClassRecipient(f.ctx), nil)
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(classUPK)
	flipped[len(flipped)-1] ^= 1
	tests := []struct {
		name  string
		extra []byte
		want  error // nil: accepted
	}{
		{"valid class UPK", classUPK, nil},
		{"escrow UPK (valid, unused)", f.created.Escrow, nil},
		{"garbage", []byte("not a UPK at all"), secpkg.ErrMalformed},
		{"bad signature", flipped, secpkg.ErrSignature},
		{"bound to another manifest", otherUPK, secpkg.ErrManifestMismatch},
		{"a manifest", f.pkg.Manifest, secpkg.ErrContentType},
	}
	for _, tt := range tests {
		for _, order := range []string{"before", "after"} {
			p := *f.pkg
			p.UPKs = [][]byte{f.upk, tt.extra}
			if order == "before" {
				p.UPKs = [][]byte{tt.extra, f.upk}
			}
			enc, err := p.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			parsed, err := Parse(enc)
			if err != nil {
				t.Fatal(err)
			}
			for _, opts := range []*VerifyOptions{nil, {Key: f.dev, DeviceID: f.devID}} {
				_, err := Verify(f.ctx, parsed, opts)
				if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
					t.Errorf("%s %s the used UPK, key %v: %v, want %v", tt.name, order, opts != nil, err, tt.want)
				}
			}
		}
	}
}
