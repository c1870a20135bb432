// Package upk issues Update Protection Keys: signed envelopes that hand the
// content-encryption key (CEK) of one package to one recipient — a device,
// a device class, or the OEM's escrow — bound to that package's manifest,
// a validity window and a unique ID (docs/spec/package.md §7).
//
// The CEK is wrapped with ECDH-ES + HKDF-SHA-256 + AES-256 key wrap (COSE
// algorithm -31) to the recipient's key-agreement key; only the holder of
// the matching private key can unwrap it.
package upk

import (
	"crypto"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/sbm-project/sbm/internal/aeskw"
	"github.com/sbm-project/sbm/internal/hostcose"
	"github.com/sbm-project/sbm/trust"
)

// Kind says who a UPK is for.
type Kind uint

const (
	// Device addresses one device's key-agreement key.
	Device Kind = 1
	// Class addresses the device class's key-agreement key.
	Class Kind = 2
	// Escrow addresses the security context's own escrow key; devices
	// never accept it.
	Escrow Kind = 3
)

func (k Kind) String() string {
	switch k {
	case Device:
		return "device"
	case Class:
		return "class"
	case Escrow:
		return "escrow"
	}
	return fmt.Sprintf("kind(%d)", uint(k))
}

// Recipient is who can unwrap a UPK.
type Recipient struct {
	Kind Kind
	// Key is the recipient's key-agreement public key.
	Key *ecdh.PublicKey
	// DeviceID is the device's unique ID (Kind Device only).
	DeviceID []byte
}

// ClassRecipient returns the recipient for the context's device class.
func ClassRecipient(c *trust.Context) Recipient {
	return Recipient{Kind: Class, Key: c.ClassPublicKey()}
}

// EscrowRecipient returns the recipient for the context's escrow key.
func EscrowRecipient(c *trust.Context) Recipient {
	return Recipient{Kind: Escrow, Key: c.EscrowPublicKey()}
}

// Options configures Issue.
type Options struct {
	// NotBefore defaults to the issue time.
	NotBefore time.Time
	// NotAfter defaults to one year after NotBefore.
	NotAfter time.Time
	// Now defaults to time.Now.
	Now func() time.Time
	// Rand supplies the UPK ID and the ephemeral key; it defaults to
	// crypto/rand. Tests set it for reproducible output.
	Rand io.Reader
}

// DefaultValidity is the validity of a UPK when Options.NotAfter is zero.
const DefaultValidity = 365 * 24 * time.Hour

// kdfOther is SuppPubInfo.other in the KDF context (spec §7.2).
var kdfOther = []byte("SBM UPK v1")

// recipientProtected is the protected header of the wrapped key: {1: -31}.
var recipientProtected = []byte{0xa1, 0x01, 0x38, 0x1e}

type payload struct {
	Format         uint       `cbor:"1,keyasint"`
	ID             []byte     `cbor:"2,keyasint"`
	ManifestDigest []byte     `cbor:"3,keyasint"`
	VendorID       []byte     `cbor:"4,keyasint"`
	ClassID        []byte     `cbor:"5,keyasint"`
	Recipient      recipient  `cbor:"6,keyasint"`
	NotBefore      uint64     `cbor:"7,keyasint"`
	NotAfter       uint64     `cbor:"8,keyasint"`
	WrappedKey     wrappedKey `cbor:"9,keyasint"`
	Issued         uint64     `cbor:"10,keyasint"`
}

type recipient struct {
	Kind     uint   `cbor:"1,keyasint"`
	KeyID    []byte `cbor:"2,keyasint"`
	DeviceID []byte `cbor:"3,keyasint,omitempty"`
}

type wrappedKey struct {
	_           struct{} `cbor:",toarray"`
	Protected   []byte
	Unprotected map[int64]coseKey
	Ciphertext  []byte
}

type coseKey struct {
	Kty int    `cbor:"1,keyasint"`
	Crv int    `cbor:"-1,keyasint"`
	X   []byte `cbor:"-2,keyasint"`
	Y   []byte `cbor:"-3,keyasint,omitempty"`
}

// Issue returns a UPK, signed by the context's update-authority key, that
// hands cek to r for the package whose manifest COSE_Sign1 is manifest.
// To issue many, use an Issuer.
func Issue(c *trust.Context, manifest []byte, cek *[32]byte, r Recipient, opts *Options) ([]byte, error) {
	is, err := NewIssuer(c, manifest, cek)
	if err != nil {
		return nil, err
	}
	return is.Issue(r, opts)
}

// An Issuer issues UPKs for one package to many recipients. What does not
// depend on the recipient — the manifest digest, the IDs, the
// update-authority key and its certificate — is prepared once, so a UPK
// costs its ephemeral key, one key agreement and one signature. Its Issue
// method is safe for concurrent use.
type Issuer struct {
	c              *trust.Context
	cek            [32]byte
	manifestDigest [32]byte
	vendor, class  trust.UUID
	signer         crypto.Signer
	keyCert        []byte
}

// NewIssuer returns an Issuer for the package whose manifest COSE_Sign1 is
// manifest and whose content-encryption key is cek. It loads the context's
// update-authority key.
func NewIssuer(c *trust.Context, manifest []byte, cek *[32]byte) (*Issuer, error) {
	signer, err := c.Signer(trust.UpdateAuthorityKey)
	if err != nil {
		return nil, err
	}
	return &Issuer{c: c, cek: *cek, manifestDigest: sha256.Sum256(manifest), vendor: c.VendorID(), class: c.ClassID(),
		signer: signer, keyCert: c.UpdateAuthorityKeyCert()}, nil
}

// Issue returns a UPK for r; see the function Issue.
func (is *Issuer) Issue(r Recipient, opts *Options) ([]byte, error) {
	c := is.c
	if opts == nil {
		opts = &Options{}
	}
	if r.Key == nil {
		return nil, errors.New("recipient has no key-agreement key")
	}
	if r.Key.Curve() != c.Suite().KeyAgreementCurve() {
		return nil, fmt.Errorf("recipient key is not a %s key-agreement key", c.Suite())
	}
	switch r.Kind {
	case Device:
		if len(r.DeviceID) < 1 || len(r.DeviceID) > 32 {
			return nil, fmt.Errorf("device ID must be 1 to 32 bytes, got %d", len(r.DeviceID))
		}
	case Class, Escrow:
		if r.DeviceID != nil {
			return nil, fmt.Errorf("a %v recipient has no device ID", r.Kind)
		}
	default:
		return nil, fmt.Errorf("unknown recipient kind %d", r.Kind)
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	rnd := opts.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	issued := now().UTC()
	nb, na := opts.NotBefore, opts.NotAfter
	if nb.IsZero() {
		nb = issued
	}
	if na.IsZero() {
		na = nb.Add(DefaultValidity)
	}
	if na.Before(nb) {
		return nil, fmt.Errorf("validity window is empty: not-after %s is before not-before %s", na.Format(time.RFC3339), nb.Format(time.RFC3339))
	}
	if nb.Unix() < 0 {
		return nil, errors.New("not-before is before 1970")
	}

	id := make([]byte, 16)
	if _, err := io.ReadFull(rnd, id); err != nil {
		return nil, err
	}
	eph, err := ephemeralKey(r.Key.Curve(), rnd)
	if err != nil {
		return nil, err
	}
	keyID, err := hostcose.KeyID(r.Key)
	if err != nil {
		return nil, err
	}
	kek, err := deriveKEK(eph, r.Key, keyID[:])
	if err != nil {
		return nil, err
	}
	wrapped, err := aeskw.Wrap(kek, is.cek[:])
	if err != nil {
		return nil, err
	}
	md, vendor, class := is.manifestDigest, is.vendor, is.class
	p := payload{
		Format:         1,
		ID:             id,
		ManifestDigest: md[:],
		VendorID:       vendor[:],
		ClassID:        class[:],
		Recipient:      recipient{Kind: uint(r.Kind), KeyID: keyID[:], DeviceID: r.DeviceID},
		NotBefore:      uint64(nb.Unix()),
		NotAfter:       uint64(na.Unix()),
		WrappedKey: wrappedKey{
			Protected:   recipientProtected,
			Unprotected: map[int64]coseKey{-1: ephemeralCOSEKey(eph.PublicKey())},
			Ciphertext:  wrapped,
		},
		Issued: uint64(issued.Unix()),
	}
	enc, err := hostcose.Marshal(p)
	if err != nil {
		return nil, err
	}
	return hostcose.Sign1(is.signer, hostcose.ContentTypeUPK, enc, is.keyCert)
}

// ephemeralKey derives a fresh key-agreement key from rnd.
func ephemeralKey(curve ecdh.Curve, rnd io.Reader) (*ecdh.PrivateKey, error) {
	b := make([]byte, 32)
	for range 16 {
		if _, err := io.ReadFull(rnd, b); err != nil {
			return nil, err
		}
		if k, err := curve.NewPrivateKey(b); err == nil {
			return k, nil
		}
	}
	return nil, errors.New("random source produced no valid key")
}

func ephemeralCOSEKey(pub *ecdh.PublicKey) coseKey {
	b := pub.Bytes()
	if pub.Curve() == ecdh.X25519() {
		return coseKey{Kty: 1, Crv: 4, X: b}
	}
	return coseKey{Kty: 2, Crv: 1, X: b[1:33], Y: b[33:65]}
}

// deriveKEK computes the key-encryption key of spec §7.2.
func deriveKEK(priv *ecdh.PrivateKey, pub *ecdh.PublicKey, keyID []byte) ([]byte, error) {
	z, err := priv.ECDH(pub)
	if err != nil {
		return nil, fmt.Errorf("key agreement: %w", err)
	}
	info, err := hostcose.Marshal([]any{
		-5,
		[]any{nil, nil, nil},
		[]any{keyID, nil, nil},
		[]any{256, recipientProtected, kdfOther},
	})
	if err != nil {
		return nil, err
	}
	return hkdf.Key(sha256.New, z, nil, string(info), 32)
}
