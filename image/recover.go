package image

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/sbm-project/sbm/internal/secpkg"
	"github.com/sbm-project/sbm/trust"
)

// RecoverCEK returns the content-encryption key of a package made with
// context c, from the context's escrow record for it or, failing that,
// from a class UPK carried in the package. The manifest must verify.
func RecoverCEK(c *trust.Context, p *Package) (*[32]byte, error) {
	a, err := Anchors(c)
	if err != nil {
		return nil, err
	}
	m, err := secpkg.VerifyManifest(a, p.Manifest)
	if err != nil {
		return nil, fmt.Errorf("manifest %s", describe(err, "image-signing"))
	}
	now := uint64(time.Now().Unix())
	if escrow, err := c.LoadRelease(sha256.Sum256(p.Manifest)); err == nil {
		key, err := c.EscrowKey()
		if err != nil {
			return nil, err
		}
		cek, _, err := checkUPK(a, m, escrow, &VerifyOptions{Key: key}, now)
		if err != nil {
			return nil, fmt.Errorf("escrow record %s", describe(err, "update-authority"))
		}
		return &cek, nil
	} else if !errors.Is(err, trust.ErrNoRelease) {
		return nil, err
	}
	if len(p.UPKs) > 0 {
		key, err := c.ClassKey()
		if err != nil {
			return nil, err
		}
		cek, _, err := unwrapCEK(a, m, p, &VerifyOptions{Key: key}, now)
		if err == nil {
			return &cek, nil
		}
	}
	return nil, errors.New("cannot recover the package's content key: the context has no escrow record for it and it carries no class UPK (was it created with another context?)")
}
