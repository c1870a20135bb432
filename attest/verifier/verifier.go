// Package verifier checks a device's attestation token (package attest)
// on the host, against a security context's production records and
// releases.
package verifier

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/sbm-project/sbm/attest"
	"github.com/sbm-project/sbm/internal/cose"
	"github.com/sbm-project/sbm/internal/hostcose"
	"github.com/sbm-project/sbm/trust"
)

// LifecycleName names a lifecycle state.
func LifecycleName(l uint8) string {
	switch l {
	case attest.LifecycleBlank:
		return "blank"
	case attest.LifecycleProvisioned:
		return "provisioned"
	case attest.LifecycleLocked:
		return "locked"
	}
	return fmt.Sprintf("lifecycle %d", l)
}

// Result is the verified content of a token.
type Result struct {
	Device      string     `json:"device"`
	Board       string     `json:"board,omitempty"`
	Lifecycle   string     `json:"lifecycle"`
	Nonce       string     `json:"nonce"`
	BootSeed    string     `json:"boot_seed,omitempty"`
	SBM         Component  `json:"sbm"`
	Application *Component `json:"application,omitempty"`
}

// Component is a measured software component of a token.
type Component struct {
	Measurement     string      `json:"measurement"`
	Version         string      `json:"version,omitempty"`
	Signer          string      `json:"signer,omitempty"`
	SecurityCounter *uint32     `json:"security_counter,omitempty"`
	Release         *ReleaseRef `json:"release,omitempty"`
}

// ReleaseRef names the context release an application measurement matched.
type ReleaseRef struct {
	Version        string `json:"version"`
	ManifestDigest string `json:"manifest_digest"`
}

// Verify checks an attestation token against context c, the way "sbm
// attest verify" does: the device named by the token's UEID must be in the
// production records with a certificate of c's device CA; the signature
// must verify with that certificate's key; the nonce must equal nonce; the
// SBM measurement must equal wantSBM if it is not nil; the application
// measurement must be a release of c (version and counter agreeing) or
// equal wantApp.
func Verify(c *trust.Context, tok, nonce, wantSBM, wantApp []byte) (*Result, error) {
	claims, err := attest.Decode(tok)
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	id := hex.EncodeToString(claims.DeviceID)
	rec, ident, err := c.LoadDevice(id)
	if err != nil {
		return nil, fmt.Errorf("device %s: %w", id, err)
	}
	raw, err := hostcose.RawPublicKey(ident.Certificate.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("device %s certificate: %w", id, err)
	}
	alg := cose.AlgES256
	if _, ok := ident.Certificate.PublicKey.(ed25519.PublicKey); ok {
		alg = cose.AlgEdDSA
	}
	if claims, err = attest.Verify(tok, alg, raw); err != nil {
		return nil, fmt.Errorf("token of device %s: %w", id, err)
	}
	if !bytes.Equal(claims.Nonce, nonce) {
		return nil, errors.New("nonce mismatch: the token does not answer this challenge (replayed?)")
	}
	res := &Result{
		Device: id, Board: rec.Board, Lifecycle: LifecycleName(claims.Lifecycle),
		Nonce: hex.EncodeToString(claims.Nonce), BootSeed: hex.EncodeToString(claims.BootSeed),
		SBM: Component{Measurement: hex.EncodeToString(claims.SBM.Measurement[:]), Version: claims.SBM.Version},
	}
	if wantSBM != nil && !bytes.Equal(wantSBM, claims.SBM.Measurement[:]) {
		return nil, fmt.Errorf("sbm measurement %x differs from the expected %x", claims.SBM.Measurement, wantSBM)
	}
	if !claims.HasApp {
		return nil, errors.New("the token reports no application")
	}
	app := &claims.App
	cj := &Component{Measurement: hex.EncodeToString(app.Measurement[:]), Version: app.Version}
	if app.HasSigner {
		cj.Signer = hex.EncodeToString(app.SignerID[:])
	}
	if app.HasCounter {
		cj.SecurityCounter = &app.SecurityCounter
	}
	res.Application = cj
	rel, err := c.FindRelease(app.Measurement)
	if err != nil {
		return nil, err
	}
	switch {
	case rel != nil:
		if rel.Version != app.Version || app.HasCounter && rel.SecurityCounter != app.SecurityCounter {
			return nil, fmt.Errorf("application %s: version or security counter differs from release %s", app.Version, rel.Version)
		}
		cj.Release = &ReleaseRef{Version: rel.Version, ManifestDigest: rel.ManifestDigest}
	case wantApp != nil && bytes.Equal(wantApp, app.Measurement[:]):
	default:
		return nil, fmt.Errorf("application measurement %x (version %s) is no known release of the context", app.Measurement, app.Version)
	}
	return res, nil
}
