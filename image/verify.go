package image

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sbm-project/sbm/internal/cose"
	"github.com/sbm-project/sbm/internal/firmware"
	"github.com/sbm-project/sbm/internal/hostcose"
	"github.com/sbm-project/sbm/internal/secpkg"
	"github.com/sbm-project/sbm/trust"
)

// Parse decodes a package container (spec §8) held in memory; Open reads
// one from a file instead. It checks the container's structure, not
// signatures, and refuses a manifest whose payload is over MaxPayloadSize.
func Parse(b []byte) (*Package, error) {
	c, err := secpkg.ParseContainer(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, fmt.Errorf("not a valid package: %w", err)
	}
	span := func(s secpkg.Span) []byte { return b[s.Offset : s.Offset+s.Length] }
	p := &Package{Manifest: span(c.Manifest), Payload: span(c.Payload)}
	for _, s := range c.UPKs[:c.NumUPKs] {
		p.UPKs = append(p.UPKs, span(s))
	}
	if err := checkManifestLimit(p.Manifest); err != nil {
		return nil, err
	}
	return p, nil
}

// Anchors returns what a device provisioned from c trusts: the root key,
// the IDs, and the context's key certificates, verified against the root.
func Anchors(c *trust.Context) (*secpkg.Anchors, error) {
	raw, err := hostcose.RawPublicKey(c.RootPublicKey())
	if err != nil {
		return nil, err
	}
	a := &secpkg.Anchors{Suite: secpkg.SuiteP256, RootKey: raw, VendorID: c.VendorID(), ClassID: c.ClassID()}
	if c.Suite() == trust.SuiteEd25519 {
		a.Suite = secpkg.SuiteEd25519
	}
	if err := a.TrustKeyCert(c.ImageSigningKeyCert(), secpkg.RoleImageSigning); err != nil {
		return nil, contextKeyCertError("image-signing", err)
	}
	if err := a.TrustKeyCert(c.UpdateAuthorityKeyCert(), secpkg.RoleUpdateAuthority); err != nil {
		return nil, contextKeyCertError("update-authority", err)
	}
	return a, nil
}

// contextKeyCertError describes a context key certificate that does not
// verify.
func contextKeyCertError(role string, err error) error {
	if errors.Is(err, cose.ErrHighS) {
		// Contexts made before the low-S rule (spec §2) may have one.
		return fmt.Errorf("context's %s key certificate has a high-S ES256 signature, which the format no longer accepts: sign it again with the root key (signing is deterministic; the new signature is low-S): %w", role, err)
	}
	return fmt.Errorf("context's %s key certificate: %w", role, err)
}

// A Verifier verifies packages against one context's anchors, which it
// builds (and checks) once.
type Verifier struct {
	anchors *secpkg.Anchors
}

// NewVerifier returns a Verifier for context c.
func NewVerifier(c *trust.Context) (*Verifier, error) {
	a, err := Anchors(c)
	if err != nil {
		return nil, err
	}
	return &Verifier{anchors: a}, nil
}

// VerifyOptions configures Verify.
type VerifyOptions struct {
	// Key is the recipient's key-agreement private key (a file key, or a
	// context's token-held class or escrow key). Without it, Verify checks
	// signatures and structure only and cannot decrypt.
	Key trust.KeyAgreer
	// UPK is a UPK to use instead of those in the package.
	UPK []byte
	// DeviceID is the ID of the device that holds Key; when set, a device
	// UPK must name it. (The key itself is always checked.)
	DeviceID []byte
	// Escrow selects the OEM's escrow check: the UPK must be an escrow UPK
	// (recipient kind 3) and Key the context's escrow key. Without it, an
	// escrow UPK is refused (ErrEscrowUPK), as a device refuses it (spec
	// §7.3), and only device and class UPKs (kinds 1 and 2) are accepted.
	Escrow bool
	// Now is the time the UPK's validity is checked at; default time.Now.
	Now time.Time
	// Plaintext, if set, receives the decrypted payload as it is
	// authenticated. The caller must discard it if Verify fails.
	Plaintext io.Writer
}

// Errors of Verify, besides those of package secpkg, which Verify's errors
// wrap (errors.Is finds the secpkg sentinel of the failed check).
var (
	// ErrEscrowUPK means a UPK for the OEM's escrow key (recipient kind 3)
	// was presented without VerifyOptions.Escrow. It also matches
	// secpkg.ErrNotRecipient.
	ErrEscrowUPK = errors.New("an escrow UPK (recipient kind 3), which no device accepts")
	// ErrNotEscrowUPK means VerifyOptions.Escrow was set but the UPK is for
	// a device or the class. It also matches secpkg.ErrNotRecipient.
	ErrNotEscrowUPK = errors.New("not an escrow UPK")
)

// Verified describes a package that passed Verify.
type Verified struct {
	Manifest *secpkg.Manifest
	// UPK is the UPK that unwrapped the key (nil without VerifyOptions.Key).
	UPK *secpkg.UPK
	// Decrypted reports whether the payload was decrypted and its digest
	// checked.
	Decrypted bool
}

// Verify checks a package against the anchors of context c the way a
// device does: the manifest's signature and key certificate chain to the
// root, and its IDs; every UPK record of the package (signature, chain and
// binding to this manifest, spec §8); with a recipient key, also the UPK it
// uses (recipient, validity), the key unwrap, every chunk and the
// plaintext digest. Errors say which step failed and wrap the secpkg
// sentinel of that step.
func Verify(c *trust.Context, p *Package, opts *VerifyOptions) (*Verified, error) {
	v, err := NewVerifier(c)
	if err != nil {
		return nil, err
	}
	return v.Verify(p, opts)
}

// VerifyFile checks a package read with Open like Verify, streaming the
// payload from the file through the device-side decrypter: its memory does
// not depend on the payload size.
func VerifyFile(c *trust.Context, f *File, opts *VerifyOptions) (*Verified, error) {
	v, err := NewVerifier(c)
	if err != nil {
		return nil, err
	}
	return v.VerifyFile(f, opts)
}

// Verify checks a package; see the function Verify.
func (ver *Verifier) Verify(p *Package, opts *VerifyOptions) (*Verified, error) {
	return ver.verify(p.Manifest, p.UPKs, int64(len(p.Payload)), &sliceChunks{p.Payload}, opts)
}

// VerifyFile checks a package read with Open; see the function VerifyFile.
func (ver *Verifier) VerifyFile(f *File, opts *VerifyOptions) (*Verified, error) {
	return ver.verify(f.Manifest, f.UPKs, f.PayloadLen(), &readerChunks{r: f.payloadReader()}, opts)
}

func (ver *Verifier) verify(manifest []byte, upkRecords [][]byte, payloadLen int64, payload chunkSource, opts *VerifyOptions) (*Verified, error) {
	if opts == nil {
		opts = &VerifyOptions{}
	}
	a := ver.anchors
	m, err := secpkg.VerifyManifest(a, manifest)
	if err != nil {
		return nil, stepError("manifest", err, "image-signing")
	}
	if err := firmware.CheckImageSize(uint64(m.PayloadSize)); err != nil {
		return nil, err
	}
	if want := m.EncryptedSize(); payloadLen != want {
		kind := secpkg.ErrTruncated
		if payloadLen > want {
			kind = secpkg.ErrTrailingData
		}
		return nil, fmt.Errorf("payload length %d bytes, the manifest needs %d (%d chunks): %w", payloadLen, want, m.NumChunks(), kind)
	}
	// Every UPK record must be a valid UPK bound to this manifest, whether
	// or not it is the one used (spec §8).
	upks := make([]*secpkg.UPK, len(upkRecords))
	for i, b := range upkRecords {
		if upks[i], err = bindUPK(a, m, b); err != nil {
			return nil, stepError(fmt.Sprintf("UPK %d in the package", i+1), err, "update-authority")
		}
	}
	v := &Verified{Manifest: m}
	if opts.Key == nil {
		return v, nil
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	var u *secpkg.UPK
	var cek [32]byte
	if opts.UPK != nil {
		if u, err = bindUPK(a, m, opts.UPK); err == nil {
			cek, err = openUPK(u, opts, uint64(now.Unix()))
		}
		if err != nil {
			return nil, stepError("UPK", err, "update-authority")
		}
	} else if cek, u, err = pickUPK(upks, opts, uint64(now.Unix())); err != nil {
		return nil, err
	}
	v.UPK = u
	if err := decrypt(&cek, m, payload, payloadLen, opts.Plaintext); err != nil {
		return nil, err
	}
	v.Decrypted = true
	return v, nil
}

// pickUPK finds the UPK of the package for opts.Key, trying them in order,
// and unwraps the CEK.
func pickUPK(upks []*secpkg.UPK, opts *VerifyOptions, now uint64) ([32]byte, *secpkg.UPK, error) {
	if len(upks) == 0 {
		return [32]byte{}, nil, errors.New("no UPK: the package carries none and none was given")
	}
	var firstErr error
	for i, u := range upks {
		cek, err := openUPK(u, opts, now)
		if err == nil {
			return cek, u, nil
		}
		// Report the first failure, unless it only says "not for this
		// recipient" and a later UPK (the one for this key) says more.
		if firstErr == nil || errors.Is(firstErr, secpkg.ErrNotRecipient) && !errors.Is(err, secpkg.ErrNotRecipient) {
			firstErr = stepError(fmt.Sprintf("UPK %d in the package", i+1), err, "update-authority")
		}
	}
	return [32]byte{}, nil, firstErr
}

// bindUPK verifies a UPK (spec §7.3 steps 1 and 2): signature and key
// certificate chain, structure, IDs, and its binding to manifest m.
func bindUPK(a *secpkg.Anchors, m *secpkg.Manifest, b []byte) (*secpkg.UPK, error) {
	u, err := secpkg.VerifyUPK(a, b)
	if err != nil {
		return nil, err
	}
	if err := u.CheckManifest(m); err != nil {
		return nil, err
	}
	return u, nil
}

// openUPK checks that a bound UPK is for opts.Key (spec §7.3 steps 3 and 4;
// kind 3 only in escrow mode) and unwraps the CEK (step 6).
func openUPK(u *secpkg.UPK, opts *VerifyOptions, now uint64) ([32]byte, error) {
	switch {
	case !opts.Escrow && u.Kind == secpkg.RecipientEscrow:
		return [32]byte{}, fmt.Errorf("%w: %w", ErrEscrowUPK, secpkg.ErrNotRecipient)
	case opts.Escrow && u.Kind != secpkg.RecipientEscrow:
		return [32]byte{}, fmt.Errorf("%w (recipient kind %d): %w", ErrNotEscrowUPK, u.Kind, secpkg.ErrNotRecipient)
	}
	if u.Kind == secpkg.RecipientDevice && opts.DeviceID != nil {
		if err := u.CheckDevice(opts.DeviceID); err != nil {
			return [32]byte{}, err
		}
	}
	if err := u.CheckValidity(now); err != nil {
		return [32]byte{}, fmt.Errorf("%w (valid %s to %s, checked at %s)", err, epoch(u.NotBefore), epoch(u.NotAfter), epoch(now))
	}
	return u.Unwrap(opts.Key)
}

// decrypt authenticates and decrypts the chunk stream of payloadLen bytes
// into w (if not nil), one chunk at a time.
func decrypt(cek *[32]byte, m *secpkg.Manifest, payload chunkSource, payloadLen int64, w io.Writer) error {
	d, err := secpkg.NewDecrypter(cek, m)
	if err != nil {
		return fmt.Errorf("payload: %w", err)
	}
	buf := make([]byte, 0, d.MaxChunkLen())
	var off int64
	for n := d.NextChunkLen(); n > 0; n = d.NextChunkLen() {
		n = int(min(int64(n), payloadLen-off))
		chunk, err := payload.next(n)
		if err != nil {
			return fmt.Errorf("payload: %w", err)
		}
		pt, err := d.Open(buf[:0], chunk)
		if err != nil {
			return stepError("payload", err, "")
		}
		off += int64(n)
		if w != nil {
			if _, err := w.Write(pt); err != nil {
				return err
			}
		}
	}
	if err := d.Finish(); err != nil {
		return stepError("payload", err, "")
	}
	if off != payloadLen {
		return fmt.Errorf("payload: %d bytes after the last chunk", payloadLen-off)
	}
	return nil
}

// stepError returns err described for the step that failed, such as
// "manifest signature does not verify with the image-signing key"; it
// wraps err.
func stepError(step string, err error, signer string) error {
	return &verifyError{msg: step + " " + describe(err, signer), err: err}
}

// verifyError is a described verification failure wrapping its cause.
type verifyError struct {
	msg string
	err error
}

func (e *verifyError) Error() string { return e.msg }
func (e *verifyError) Unwrap() error { return e.err }

// describe turns a secpkg error into a precise message fragment.
func describe(err error, signer string) string {
	detail := strings.ReplaceAll(err.Error(), "secpkg: ", "")
	switch {
	case errors.Is(err, ErrEscrowUPK):
		return "is " + ErrEscrowUPK.Error() + " (spec §7.3)"
	case errors.Is(err, ErrNotEscrowUPK):
		return "is " + strings.TrimSuffix(detail, ": not the recipient of this upk")
	case errors.Is(err, secpkg.ErrKeyCert):
		return "key certificate does not chain to the root: " + detail
	case errors.Is(err, cose.ErrHighS) && !errors.Is(err, secpkg.ErrKeyCert):
		return "signature is high-S (s > n/2), which the format refuses (spec §2)"
	case errors.Is(err, secpkg.ErrSignature):
		return "signature does not verify with the " + signer + " key"
	case errors.Is(err, secpkg.ErrNotRecipient):
		return "is not for this recipient: " + detail
	case errors.Is(err, secpkg.ErrManifestMismatch):
		return "is bound to another manifest: " + detail
	case errors.Is(err, secpkg.ErrChunk), errors.Is(err, secpkg.ErrTruncated), errors.Is(err, secpkg.ErrTrailingData), errors.Is(err, secpkg.ErrDigest):
		return detail
	}
	return "invalid: " + detail
}

func epoch(s uint64) string { return time.Unix(int64(s), 0).UTC().Format(time.RFC3339) }
