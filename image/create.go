// Package image builds, inspects and verifies secure image packages: a
// manifest signed with COSE_Sign1, the payload encrypted once with a fresh
// content-encryption key as a stream of authenticated chunks, and Update
// Protection Keys that hand that key to devices (docs/spec/package.md).
package image

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/sbm-project/sbm/internal/firmware"
	"github.com/sbm-project/sbm/internal/hostcose"
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

// Create builds a package for img, signed with the context's image-signing
// key and encrypted with a fresh CEK.
func Create(c *trust.Context, img *firmware.Image, opts *CreateOptions) (*Created, error) {
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
	chunk := opts.ChunkSize
	if chunk == 0 {
		chunk = DefaultChunkSize
	}
	if chunk < 256 || chunk > 65536 || chunk&(chunk-1) != 0 {
		return nil, fmt.Errorf("chunk size %d: want a power of two from 256 to 65536", chunk)
	}
	size := len(img.Data)
	if size == 0 {
		return nil, errors.New("empty payload")
	}
	if size > math.MaxUint32-1 {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, size)
	}
	nUPK := 0
	if opts.ClassUPK {
		nUPK = 1
	}
	if opts.MaxPackageSize > 0 {
		if need := PackageSize(size, chunk, nUPK+1); need > opts.MaxPackageSize {
			return nil, fmt.Errorf("%w: a %d-byte payload needs up to %d bytes of slot, the slot holds %d", ErrTooLarge, size, need, opts.MaxPackageSize)
		}
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	rnd := opts.Rand
	if rnd == nil {
		rnd = rand.Reader
	}

	var cek [32]byte
	prefix := make([]byte, 7)
	if _, err := io.ReadFull(rnd, cek[:]); err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(rnd, prefix); err != nil {
		return nil, err
	}
	payload, err := sealChunks(&cek, prefix, img.Data, chunk)
	if err != nil {
		return nil, err
	}
	digest := sha256.Sum256(img.Data)
	vendor, class := c.VendorID(), c.ClassID()
	mp := manifestPayload{
		Format:          1,
		VendorID:        vendor[:],
		ClassID:         class[:],
		Version:         opts.Version,
		SecurityCounter: opts.SecurityCounter,
		PayloadSize:     uint32(size),
		PayloadDigest:   digest[:],
		Slot:            slot,
		Encryption:      encryption{Alg: 3, ChunkSize: uint32(chunk), NoncePrefix: prefix},
		Created:         uint64(now().Unix()),
		SourceFormat:    string(img.Format),
	}
	if img.HasLoadAddress {
		la := img.LoadAddress
		mp.LoadAddress = &la
	}
	enc, err := hostcose.Marshal(mp)
	if err != nil {
		return nil, err
	}
	signer, err := c.Signer(trust.ImageSigningKey)
	if err != nil {
		return nil, err
	}
	manifest, err := hostcose.Sign1(signer, hostcose.ContentTypeManifest, enc, c.ImageSigningKeyCert())
	if err != nil {
		return nil, err
	}
	if len(manifest) > MaxManifestSize {
		return nil, fmt.Errorf("manifest is %d bytes, over the format's %d-byte limit", len(manifest), MaxManifestSize)
	}
	out := &Created{Package: &Package{Manifest: manifest, Payload: payload}, CEK: cek, ManifestDigest: sha256.Sum256(manifest)}
	uo := opts.UPKOptions
	uo.Now, uo.Rand = now, rnd
	if opts.ClassUPK {
		u, err := upk.Issue(c, manifest, &cek, upk.ClassRecipient(c), &uo)
		if err != nil {
			return nil, fmt.Errorf("class UPK: %w", err)
		}
		out.Package.UPKs = append(out.Package.UPKs, u)
	}
	// The escrow UPK never expires: it is how the OEM issues UPKs later.
	eo := upk.Options{Now: now, Rand: rnd, NotBefore: time.Unix(0, 0), NotAfter: time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)}
	if out.Escrow, err = upk.Issue(c, manifest, &cek, upk.EscrowRecipient(c), &eo); err != nil {
		return nil, fmt.Errorf("escrow UPK: %w", err)
	}
	return out, nil
}

// sealChunks encrypts data as the chunk stream of spec §6.
func sealChunks(cek *[32]byte, prefix, data []byte, chunk int) ([]byte, error) {
	block, err := aes.NewCipher(cek[:])
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	n := (len(data) + chunk - 1) / chunk
	out := make([]byte, 0, len(data)+16*n)
	nonce := make([]byte, 12)
	copy(nonce, prefix)
	for i := range n {
		binary.BigEndian.PutUint32(nonce[7:11], uint32(i))
		nonce[11] = 0
		end := (i + 1) * chunk
		if i == n-1 {
			nonce[11] = 1
			end = len(data)
		}
		out = gcm.Seal(out, nonce, data[i*chunk:end], nil)
	}
	return out, nil
}
