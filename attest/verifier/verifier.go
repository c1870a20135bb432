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
	Device      string     `json:"device_id"`
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

// ErrUnlocked is returned (wrapped) for a token whose device reports a
// lifecycle other than locked: its debug port is open, so its keys and
// firmware are not protected. Options.AllowUnlocked accepts it.
var ErrUnlocked = errors.New("device is not locked")

// ErrUnknownSBM is returned (wrapped) for a token whose SBM measurement is
// not known: neither the expected one nor the one recorded in the device's
// production record at provisioning. Options.AllowUnknownSBM accepts it.
var ErrUnknownSBM = errors.New("unknown sbm measurement")

// Options configures Check. The zero value is the strict policy.
type Options struct {
	// Nonce is the challenge sent to the device (required).
	Nonce []byte
	// SBMMeasurement, if not nil, is the expected SBM measurement; a token
	// with another one is refused, even with AllowUnknownSBM. If nil, the
	// SBM measurement must equal the one in the device's production
	// record.
	SBMMeasurement []byte
	// AppMeasurement, if not nil, is an application measurement accepted
	// even if it is no release of the context.
	AppMeasurement []byte
	// AllowUnlocked accepts a device whose lifecycle is not locked.
	AllowUnlocked bool
	// AllowUnknownSBM accepts an SBM measurement that is not known (the
	// production record holds none, or another one).
	AllowUnknownSBM bool
}

// Verify is Check with the strict policy: it checks an attestation token
// against context c with the given nonce, expected SBM measurement wantSBM
// (nil: the production record's) and extra accepted application
// measurement wantApp (nil: none).
func Verify(c *trust.Context, tok, nonce, wantSBM, wantApp []byte) (*Result, error) {
	return Check(c, tok, &Options{Nonce: nonce, SBMMeasurement: wantSBM, AppMeasurement: wantApp})
}

// Check checks an attestation token against context c, the way "sbm
// attest verify" does: the device named by the token's UEID must be in the
// production records with a certificate of c's device CA; the signature
// must verify with that certificate's key; the nonce must equal
// opts.Nonce; the device must report the locked lifecycle (unless
// opts.AllowUnlocked); the SBM measurement must equal
// opts.SBMMeasurement if it is not nil, else the one recorded at
// provisioning (unless opts.AllowUnknownSBM); the application measurement
// must be a release of c (version and counter agreeing) or equal
// opts.AppMeasurement.
func Check(c *trust.Context, tok []byte, opts *Options) (*Result, error) {
	if opts == nil {
		opts = &Options{}
	}
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
	if !bytes.Equal(claims.Nonce, opts.Nonce) {
		return nil, errors.New("nonce mismatch: the token does not answer this challenge (replayed?)")
	}
	res := &Result{
		Device: id, Board: rec.Board, Lifecycle: LifecycleName(claims.Lifecycle),
		Nonce: hex.EncodeToString(claims.Nonce), BootSeed: hex.EncodeToString(claims.BootSeed),
		SBM: Component{Measurement: hex.EncodeToString(claims.SBM.Measurement[:]), Version: claims.SBM.Version},
	}
	if claims.Lifecycle != attest.LifecycleLocked && !opts.AllowUnlocked {
		return nil, fmt.Errorf("device %s: %w: lifecycle %s, its debug port is open (--allow-unlocked accepts it)", id, ErrUnlocked, res.Lifecycle)
	}
	got := claims.SBM.Measurement[:]
	switch {
	case opts.SBMMeasurement != nil:
		if !bytes.Equal(opts.SBMMeasurement, got) {
			return nil, fmt.Errorf("sbm measurement %x differs from the expected %x", got, opts.SBMMeasurement)
		}
	case opts.AllowUnknownSBM:
	case rec.SBMMeasurement == "":
		return nil, fmt.Errorf("device %s: %w %x: its production record holds no sbm measurement (--sbm-measurement gives the expected one, --allow-unknown-sbm accepts any)", id, ErrUnknownSBM, got)
	case rec.SBMMeasurement != hex.EncodeToString(got):
		return nil, fmt.Errorf("device %s: %w %x: provisioning recorded %s (--allow-unknown-sbm accepts it)", id, ErrUnknownSBM, got, rec.SBMMeasurement)
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
	case opts.AppMeasurement != nil && bytes.Equal(opts.AppMeasurement, app.Measurement[:]):
	default:
		return nil, fmt.Errorf("application measurement %x (version %s) is no known release of the context", app.Measurement, app.Version)
	}
	return res, nil
}
