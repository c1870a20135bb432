package image

import (
	"crypto/sha256"
	"errors"
	"time"

	"github.com/sbm-project/sbm/internal/firmware"
	"github.com/sbm-project/sbm/internal/secpkg"
	"github.com/sbm-project/sbm/trust"
)

// RecoverCEK returns the content-encryption key of a package made with
// context c, from the context's escrow record for it or, failing that,
// from a class UPK carried in the package. The manifest must verify; only
// p's Manifest and UPKs are used (File.Records gives them without the
// payload).
func RecoverCEK(c *trust.Context, p *Package) (*[32]byte, error) {
	a, err := Anchors(c)
	if err != nil {
		return nil, err
	}
	m, err := secpkg.VerifyManifest(a, p.Manifest)
	if err != nil {
		return nil, stepError("manifest", err, "image-signing")
	}
	if err := firmware.CheckImageSize(uint64(m.PayloadSize)); err != nil {
		return nil, err
	}
	now := uint64(time.Now().Unix())
	if escrow, err := c.LoadRelease(sha256.Sum256(p.Manifest)); err == nil {
		key, err := c.EscrowKey()
		if err != nil {
			return nil, err
		}
		u, err := bindUPK(a, m, escrow)
		var cek [32]byte
		if err == nil {
			cek, err = openUPK(u, &VerifyOptions{Key: key, Escrow: true}, now)
		}
		if err != nil {
			return nil, stepError("escrow record", err, "update-authority")
		}
		return &cek, nil
	} else if !errors.Is(err, trust.ErrNoRelease) {
		return nil, err
	}
	var upks []*secpkg.UPK
	for _, b := range p.UPKs {
		if u, err := bindUPK(a, m, b); err == nil && u.Kind == secpkg.RecipientClass {
			upks = append(upks, u)
		}
	}
	if len(upks) > 0 {
		key, err := c.ClassKey()
		if err != nil {
			return nil, err
		}
		if cek, _, err := pickUPK(upks, &VerifyOptions{Key: key}, now); err == nil {
			return &cek, nil
		}
	}
	return nil, errors.New("cannot recover the package's content key: the context has no escrow record for it and it carries no class UPK (was it created with another context?)")
}
