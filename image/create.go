// Package image builds, inspects and verifies secure image packages: a
// manifest signed with COSE_Sign1, the payload encrypted once with a fresh
// content-encryption key as a stream of authenticated chunks, and Update
// Protection Keys that hand that key to devices (docs/spec/package.md).
package image

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/sbm-project/sbm/internal/firmware"
	"github.com/sbm-project/sbm/internal/hostcose"
	"github.com/sbm-project/sbm/internal/secpkg"
	"github.com/sbm-project/sbm/trust"
	"github.com/sbm-project/sbm/upk"
)

// DefaultChunkSize is the plaintext size of a payload chunk.
const DefaultChunkSize = 4096

// ErrTooLarge is returned when the payload does not fit the target slot.
var ErrTooLarge = errors.New("payload too large")

// CreateOptions configures Create.
type CreateOptions struct {
	// Version is the application's semantic version (required).
	Version string
	// SecurityCounter is the anti-rollback counter.
	SecurityCounter uint32
	// Slot is the target slot name; default "primary".
	Slot string
	// ChunkSize is the plaintext bytes per chunk: a power of two from 256
	// to 65536; default 4096.
	ChunkSize int
	// MaxPackageSize, if not zero, rejects a payload whose package would be
	// larger (the size of the slot the package must fit in).
	MaxPackageSize int
	// ClassUPK adds a UPK for the whole device class to the package.
	ClassUPK bool
	// UPKOptions sets the validity of the class UPK.
	UPKOptions upk.Options
	// Revocation is a root-signed revocation statement (trust.Context.Revoke,
	// spec §4.1) for the manifest to carry: devices that install the
	// package stop accepting the keys it revokes. It must not revoke the
	// keys signing this package.
	Revocation []byte
	// Now defaults to time.Now.
	Now func() time.Time
	// Rand supplies the CEK, nonce prefix and UPK randomness; default
	// crypto/rand. Tests set it for reproducible output.
	Rand io.Reader
}

// Created is the result of Create.
type Created struct {
	Package *Package
	// CEK is the content-encryption key. It is secret: the escrow UPK
	// carries it for later UPK issuance.
	CEK [32]byte
	// Escrow is a UPK for the context's escrow key, to be kept by the OEM
	// (see trust.Context.SaveRelease).
	Escrow []byte
	// ManifestDigest is SHA-256 of the manifest COSE_Sign1.
	ManifestDigest [32]byte
	// PayloadDigest is SHA-256 of the plaintext payload, as the manifest
	// states it.
	PayloadDigest [32]byte
	// Size is the size of the package container.
	Size int64
}

type manifestPayload struct {
	Format          uint       `cbor:"1,keyasint"`
	VendorID        []byte     `cbor:"2,keyasint"`
	ClassID         []byte     `cbor:"3,keyasint"`
	Version         string     `cbor:"4,keyasint"`
	SecurityCounter uint32     `cbor:"5,keyasint"`
	PayloadSize     uint32     `cbor:"6,keyasint"`
	PayloadDigest   []byte     `cbor:"7,keyasint"`
	Slot            string     `cbor:"8,keyasint"`
	Encryption      encryption `cbor:"9,keyasint"`
	Created         uint64     `cbor:"10,keyasint"`
	LoadAddress     *uint32    `cbor:"11,keyasint,omitempty"`
	SourceFormat    string     `cbor:"12,keyasint,omitempty"`
}

type encryption struct {
	Alg         int    `cbor:"1,keyasint"`
	ChunkSize   uint32 `cbor:"2,keyasint"`
	NoncePrefix []byte `cbor:"3,keyasint"`
}

// ChunkSizeOrDefault returns the chunk size Create uses.
func (o *CreateOptions) ChunkSizeOrDefault() int {
	if o.ChunkSize == 0 {
		return DefaultChunkSize
	}
	return o.ChunkSize
}

// PackageSize returns the size of a package container for a payload of
// size bytes with the given chunk size and number of UPKs of at most
// MaxUPKSize bytes: an upper bound callers use to check slot capacity.
func PackageSize(size, chunkSize, upks int) int {
	n := (size + chunkSize - 1) / chunkSize
	return len(Magic) + 8 + MaxManifestSize + upks*(8+MaxUPKSize) + 8 + size + 16*n
}

// MaxPayloadSize is the largest payload the host tools package, verify,
// inspect or issue UPKs for; it is firmware.MaxImageSize, defined there
// once, and the error for a larger one is firmware.CheckImageSize's.
const MaxPayloadSize = firmware.MaxImageSize

// Source is a payload read as a stream, for CreateTo.
type Source struct {
	// R yields the payload: exactly Size bytes.
	R io.Reader
	// Size is the payload size, 1 to MaxPayloadSize bytes.
	Size int64
	// Format, LoadAddress and HasLoadAddress describe the input the
	// payload came from, as in firmware.Image.
	Format         firmware.Format
	LoadAddress    uint32
	HasLoadAddress bool
}

// Create builds a package for img, signed with the context's image-signing
// key and encrypted with a fresh CEK, in memory: Created.Package holds the
// whole payload. CreateTo streams instead.
func Create(c *trust.Context, img *firmware.Image, opts *CreateOptions) (*Created, error) {
	src := &Source{R: bytes.NewReader(img.Data), Size: int64(len(img.Data)), Format: img.Format, LoadAddress: img.LoadAddress, HasLoadAddress: img.HasLoadAddress}
	b, err := newBuilder(c, src, opts)
	if err != nil {
		return nil, err
	}
	var payload bytes.Buffer
	payload.Grow(int(b.encryptedSize()))
	digest, err := b.seal(src.R, &payload)
	if err != nil {
		return nil, err
	}
	out, err := b.finish(digest, nil)
	if err != nil {
		return nil, err
	}
	out.Package.Payload = payload.Bytes()
	out.Size = containerSize(out.Package.Manifest, out.Package.UPKs, int64(payload.Len()))
	return out, nil
}

// CreateTo builds a package like Create from the stream src and writes the
// container to out (typically the temporary file of an atomic write) from
// offset 0, in memory bounded independently of the payload size.
// Created.Package holds the manifest and UPKs, not the payload.
//
// The input is read once and hashed once: each chunk is hashed, encrypted
// and written in one pass. The manifest, which comes first in the
// container, needs the plaintext digest, so the payload is written at its
// final offset first and the records before it last. That offset is known
// in advance because the manifest and class UPK have a fixed length for
// given fields (deterministic CBOR, a 32-byte digest, 64-byte signatures):
// CreateTo signs placeholders of the same length first, and checks the
// real ones against them. This avoids both reading the input twice (a file
// changing between two passes would give a package whose digest does not
// match its payload) and a temporary copy of the ciphertext.
func CreateTo(c *trust.Context, src *Source, out io.WriterAt, opts *CreateOptions) (*Created, error) {
	b, err := newBuilder(c, src, opts)
	if err != nil {
		return nil, err
	}
	// The records' lengths, from placeholders bound to a zero digest.
	hdr, err := b.finish([32]byte{}, constReader(0x5a))
	if err != nil {
		return nil, err
	}
	hdrLen := int64(len(containerHeader(hdr.Package.Manifest, hdr.Package.UPKs, b.encryptedSize())))
	digest, err := b.seal(src.R, io.NewOffsetWriter(out, hdrLen))
	if err != nil {
		return nil, err
	}
	res, err := b.finish(digest, nil)
	if err != nil {
		return nil, err
	}
	h := containerHeader(res.Package.Manifest, res.Package.UPKs, b.encryptedSize())
	if int64(len(h)) != hdrLen {
		return nil, fmt.Errorf("internal error: package records of %d bytes, %d reserved", len(h), hdrLen)
	}
	if _, err := out.WriteAt(h, 0); err != nil {
		return nil, err
	}
	res.Size = hdrLen + b.encryptedSize()
	return res, nil
}

// builder holds what the steps of Create share.
type builder struct {
	c      *trust.Context
	src    *Source
	slot   string
	chunk  int
	now    time.Time
	rnd    io.Reader
	opts   *CreateOptions
	cek    [32]byte
	prefix []byte
	signer crypto.Signer
}

// newBuilder checks the options and the payload size and draws the CEK
// and nonce prefix.
func newBuilder(c *trust.Context, src *Source, opts *CreateOptions) (*builder, error) {
	if opts == nil {
		opts = &CreateOptions{}
	}
	if err := checkSemver(opts.Version); err != nil {
		return nil, err
	}
	slot := opts.Slot
	if slot == "" {
		slot = "primary"
	}
	if len(slot) > 16 {
		return nil, fmt.Errorf("slot name %q longer than 16 bytes", slot)
	}
	if opts.Revocation != nil {
		if err := checkRevocation(c, opts.Revocation); err != nil {
			return nil, err
		}
	}
	chunk := opts.ChunkSizeOrDefault()
	if chunk < 256 || chunk > 65536 || chunk&(chunk-1) != 0 {
		return nil, fmt.Errorf("chunk size %d: want a power of two from 256 to 65536", chunk)
	}
	size := src.Size
	if size <= 0 {
		return nil, errors.New("empty payload")
	}
	if err := firmware.CheckImageSize(uint64(size)); err != nil {
		return nil, err
	}
	nUPK := 0
	if opts.ClassUPK {
		nUPK = 1
	}
	if opts.MaxPackageSize > 0 {
		if need := PackageSize(int(size), chunk, nUPK+1); need > opts.MaxPackageSize {
			return nil, fmt.Errorf("%w: a %d-byte payload needs up to %d bytes of slot, the slot holds %d", ErrTooLarge, size, need, opts.MaxPackageSize)
		}
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	b := &builder{c: c, src: src, slot: slot, chunk: chunk, now: now(), rnd: opts.Rand, opts: opts, prefix: make([]byte, 7)}
	if b.rnd == nil {
		b.rnd = rand.Reader
	}
	var err error
	if b.signer, err = c.Signer(trust.ImageSigningKey); err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(b.rnd, b.cek[:]); err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(b.rnd, b.prefix); err != nil {
		return nil, err
	}
	return b, nil
}

// encryptedSize is the length of the chunk stream.
func (b *builder) encryptedSize() int64 {
	n := (b.src.Size + int64(b.chunk) - 1) / int64(b.chunk)
	return b.src.Size + 16*n
}

// seal reads the payload from r, chunk by chunk, and writes the chunk
// stream of spec §6 to w, in writes of about 256 KiB; it returns SHA-256
// of the plaintext. Its memory is a chunk and a write buffer whatever the
// payload size.
func (b *builder) seal(r io.Reader, w io.Writer) ([32]byte, error) {
	var digest [32]byte
	block, err := aes.NewCipher(b.cek[:])
	if err != nil {
		return digest, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return digest, err
	}
	h := sha256.New()
	size, chunk := b.src.Size, int64(b.chunk)
	n := (size + chunk - 1) / chunk
	plain := make([]byte, chunk)
	// Sealed chunks are gathered into out and written ~256 KiB at a time.
	perWrite := max(1, (256<<10)/(chunk+16))
	out := make([]byte, 0, perWrite*(chunk+16))
	nonce := make([]byte, 12)
	copy(nonce, b.prefix)
	for i := range n {
		binary.BigEndian.PutUint32(nonce[7:11], uint32(i))
		nonce[11] = 0
		pt := plain
		if i == n-1 {
			nonce[11] = 1
			pt = plain[:size-i*chunk]
		}
		if _, err := io.ReadFull(r, pt); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return digest, fmt.Errorf("input ended after fewer than its %d bytes (did it change while it was read?)", size)
			}
			return digest, err
		}
		h.Write(pt)
		out = gcm.Seal(out, nonce, pt, nil)
		if len(out) == cap(out) || i == n-1 {
			if _, err := w.Write(out); err != nil {
				return digest, err
			}
			out = out[:0]
		}
	}
	h.Sum(digest[:0])
	return digest, nil
}

// finish signs the manifest for a payload with the given digest and issues
// the package's UPKs. With placeholder set, it only sizes them: the UPKs'
// randomness comes from placeholder, opts.Rand is not used, and no
// escrow UPK is issued.
func (b *builder) finish(digest [32]byte, placeholder io.Reader) (*Created, error) {
	vendor, class := b.c.VendorID(), b.c.ClassID()
	mp := manifestPayload{
		Format:          1,
		VendorID:        vendor[:],
		ClassID:         class[:],
		Version:         b.opts.Version,
		SecurityCounter: b.opts.SecurityCounter,
		PayloadSize:     uint32(b.src.Size),
		PayloadDigest:   digest[:],
		Slot:            b.slot,
		Encryption:      encryption{Alg: 3, ChunkSize: uint32(b.chunk), NoncePrefix: b.prefix},
		Created:         uint64(b.now.Unix()),
		SourceFormat:    string(b.src.Format),
	}
	if b.src.HasLoadAddress {
		la := b.src.LoadAddress
		mp.LoadAddress = &la
	}
	enc, err := hostcose.Marshal(mp)
	if err != nil {
		return nil, err
	}
	extra := map[int64][]byte{}
	if b.opts.Revocation != nil {
		extra[secpkg.LabelRevocation] = b.opts.Revocation
	}
	// After a root rotation every package carries the statement, which
	// moves the devices still on the previous root (spec §4.2).
	if t := b.c.RootTransition(); t != nil {
		extra[secpkg.LabelRootTransition] = t
	}
	manifest, err := hostcose.Sign1With(b.signer, hostcose.ContentTypeManifest, enc, b.c.ImageSigningKeyCert(), extra)
	if err != nil {
		return nil, err
	}
	if len(manifest) > MaxManifestSize {
		return nil, fmt.Errorf("manifest is %d bytes, over the format's %d-byte limit", len(manifest), MaxManifestSize)
	}
	out := &Created{Package: &Package{Manifest: manifest}, CEK: b.cek, ManifestDigest: sha256.Sum256(manifest), PayloadDigest: digest}
	rnd := b.rnd
	if placeholder != nil {
		rnd = placeholder
	}
	now := func() time.Time { return b.now }
	uo := b.opts.UPKOptions
	uo.Now, uo.Rand = now, rnd
	if b.opts.ClassUPK {
		u, err := upk.Issue(b.c, manifest, &b.cek, upk.ClassRecipient(b.c), &uo)
		if err != nil {
			return nil, fmt.Errorf("class UPK: %w", err)
		}
		out.Package.UPKs = append(out.Package.UPKs, u)
	}
	if placeholder != nil {
		return out, nil
	}
	// The escrow UPK never expires: it is how the OEM issues UPKs later.
	eo := upk.Options{Now: now, Rand: rnd, NotBefore: time.Unix(0, 0), NotAfter: time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)}
	if out.Escrow, err = upk.Issue(b.c, manifest, &b.cek, upk.EscrowRecipient(b.c), &eo); err != nil {
		return nil, fmt.Errorf("escrow UPK: %w", err)
	}
	return out, nil
}

// constReader yields an endless run of one byte: placeholder randomness.
type constReader byte

func (c constReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(c)
	}
	return len(p), nil
}

// checkRevocation checks a revocation statement for a package of c: signed
// by c's root for c's vendor, and not revoking the keys c signs with now
// (a device would refuse the package).
func checkRevocation(c *trust.Context, raw []byte) error {
	a, err := Anchors(c)
	if err != nil {
		return err
	}
	r, err := secpkg.VerifyRevocation(a, raw)
	if err != nil {
		return fmt.Errorf("revocation statement: %w", err)
	}
	role := trust.ImageSigningKey
	if r.Role == secpkg.RoleUpdateAuthority {
		role = trust.UpdateAuthorityKey
	}
	if cur := c.Epoch(role); cur < r.MinEpoch {
		return fmt.Errorf("revocation statement revokes the context's current %s key (epoch %d < %d): rotate it first", role, cur, r.MinEpoch)
	}
	return nil
}
