package secpkg

import (
	"bytes"
	"crypto/sha256"

	"github.com/sbm-project/sbm/internal/cbor"
	"github.com/sbm-project/sbm/internal/cose"
	"github.com/sbm-project/sbm/internal/errs"
)

// Manifest is a decoded manifest (spec §5).
type Manifest struct {
	VendorID        [16]byte
	ClassID         [16]byte
	Version         string
	SecurityCounter uint32
	PayloadSize     uint32 // plaintext bytes, ≥ 1
	PayloadDigest   [32]byte
	Slot            string
	ChunkSize       uint32 // power of two, 256..65536
	NoncePrefix     [7]byte
	Created         uint64
	LoadAddress     uint32
	HasLoadAddress  bool
	SourceFormat    string   // "" when absent
	Digest          [32]byte // manifest digest (spec §5.2): SHA-256 of the whole COSE_Sign1
	SignerKID       [32]byte // kid of the image-signing key
	SignerEpoch     uint8    // key epoch of the image-signing key (spec §4)
	// Revocation is the root-signed revocation statement the manifest
	// carries (unprotected label -65538, spec §4.1), verified; nil if none.
	Revocation *Revocation
}

// Limits of spec §5.
const (
	MinChunkSize = 256
	MaxChunkSize = 65536
	algA256GCM   = 3
)

var manifestSpec = mapSpec{
	name: "manifest",
	names: []string{"", "format", "vendor-id", "class-id", "version", "security-counter",
		"payload-size", "payload-digest", "slot", "encryption", "created", "load-address", "source-format"},
	required: 0x7fe, // keys 1..10
}

var encryptionSpec = mapSpec{
	name:     "encryption",
	names:    []string{"", "alg", "chunk-size", "nonce-prefix"},
	required: 1<<1 | 1<<2 | 1<<3,
}

// DecodeManifest decodes a manifest COSE_Sign1 and checks its structure,
// content type and field values, without verifying any signature or
// comparing IDs. It is meant for inspection; devices use VerifyManifest.
func DecodeManifest(sign1 []byte) (*Manifest, error) {
	s, err := decodeSigned(sign1, MaxManifestSize, ContentTypeManifest)
	if err != nil {
		return nil, err
	}
	return decodeManifest(&s, sign1)
}

// VerifyManifest verifies a manifest COSE_Sign1 against the anchors (key
// certificate with role 1 chaining to the root, signature; spec §4) and
// decodes it (spec §5), checking that its vendor and class IDs are the
// anchors'. It does not check the security counter, which the caller
// compares with its stored one.
func VerifyManifest(a *Anchors, sign1 []byte) (*Manifest, error) {
	s, err := verifySigned(a, sign1, MaxManifestSize, ContentTypeManifest, RoleImageSigning)
	if err != nil {
		return nil, err
	}
	m, err := decodeManifest(&s, sign1)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(m.VendorID[:], a.VendorID[:]) {
		return nil, ErrVendor
	}
	if !bytes.Equal(m.ClassID[:], a.ClassID[:]) {
		return nil, ErrClass
	}
	raw, err := s.msg.UnprotectedBytes(LabelRevocation)
	switch {
	case err == nil:
		if m.Revocation, err = VerifyRevocation(a, raw); err != nil {
			return nil, err
		}
		// The statement takes effect only with an image signed by a key
		// it does not revoke.
		if m.Revocation.Role == RoleImageSigning && m.SignerEpoch < m.Revocation.MinEpoch {
			return nil, wrap(ErrRevoked, errRevokesOwnKey)
		}
	case !errs.Is(err, cose.ErrNotFound):
		return nil, wrap(ErrMalformed, err)
	}
	return m, nil
}

func decodeManifest(s *signed, sign1 []byte) (*Manifest, error) {
	m := new(Manifest)
	d := cbor.NewDecoder(s.msg.Payload)
	err := decodeMap(&d, &manifestSpec, func(k int64, d *cbor.Decoder) error {
		var err error
		var v uint64
		var b []byte
		switch k {
		case 1:
			return readFormat(d)
		case 2:
			return readFixed(d, m.VendorID[:])
		case 3:
			return readFixed(d, m.ClassID[:])
		case 4:
			b, err = readText(d, 1, 64)
			m.Version = string(b)
		case 5:
			v, err = readUint(d, 0, 1<<32-1)
			m.SecurityCounter = uint32(v)
		case 6:
			v, err = readUint(d, 1, 1<<32-1)
			m.PayloadSize = uint32(v)
		case 7:
			return readFixed(d, m.PayloadDigest[:])
		case 8:
			b, err = readText(d, 1, 16)
			m.Slot = string(b)
		case 9:
			return decodeEncryption(d, m)
		case 10:
			m.Created, err = d.Uint()
		case 11:
			v, err = readUint(d, 0, 1<<32-1)
			m.LoadAddress, m.HasLoadAddress = uint32(v), true
		case 12:
			b, err = readText(d, 0, 16)
			m.SourceFormat = string(b)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := d.Finish(); err != nil {
		return nil, wrap(ErrTrailingData, err)
	}
	m.Digest = sha256.Sum256(sign1)
	m.SignerKID = s.header.KID
	m.SignerEpoch = s.epoch
	return m, nil
}

func decodeEncryption(d *cbor.Decoder, m *Manifest) error {
	return decodeMap(d, &encryptionSpec, func(k int64, d *cbor.Decoder) error {
		switch k {
		case 1:
			v, err := d.Int()
			if err == nil && v != algA256GCM {
				return ErrAlgorithm
			}
			return err
		case 2:
			v, err := readUint(d, MinChunkSize, MaxChunkSize)
			if err == nil && v&(v-1) != 0 {
				return errRange
			}
			m.ChunkSize = uint32(v)
			return err
		default: // 3
			return readFixed(d, m.NoncePrefix[:])
		}
	})
}

// NumChunks returns the number of payload chunks N (spec §6).
func (m *Manifest) NumChunks() uint32 {
	if m.ChunkSize == 0 {
		return 0
	}
	return uint32((uint64(m.PayloadSize) + uint64(m.ChunkSize) - 1) / uint64(m.ChunkSize))
}

// EncryptedSize returns the size of the encrypted payload,
// payload-size + 16·N bytes (spec §6).
func (m *Manifest) EncryptedSize() int64 {
	return int64(m.PayloadSize) + tagSize*int64(m.NumChunks())
}
