package image

import (
	"encoding/hex"
	"fmt"
	"time"

	"github.com/sbm-project/sbm/internal/firmware"
	"github.com/sbm-project/sbm/internal/secpkg"
)

// Description is what Inspect reports about a package. It needs no secrets
// and verifies nothing.
type Description struct {
	Version         string    `json:"version"`
	SecurityCounter uint32    `json:"security_counter"`
	VendorID        string    `json:"vendor_id"`
	ClassID         string    `json:"class_id"`
	Slot            string    `json:"slot"`
	PayloadSize     uint32    `json:"payload_size"`
	PayloadSHA256   string    `json:"payload_sha256"`
	SourceFormat    string    `json:"source_format,omitempty"`
	LoadAddress     *uint32   `json:"load_address,omitempty"`
	Created         time.Time `json:"created"`
	Encryption      string    `json:"encryption"`
	ChunkSize       uint32    `json:"chunk_size"`
	Chunks          uint32    `json:"chunks"`
	// Signer is the key ID of the image-signing key.
	Signer         string    `json:"signer"`
	ManifestDigest string    `json:"manifest_digest"`
	ManifestSize   int       `json:"manifest_size"`
	UPKs           []UPKInfo `json:"upks"`
	PackageSize    int       `json:"package_size"`
}

// UPKInfo describes a UPK.
type UPKInfo struct {
	ID        string    `json:"id"`
	Recipient string    `json:"recipient"` // "device" or "class"
	DeviceID  string    `json:"device_id,omitempty"`
	KeyID     string    `json:"key_id"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	Signer    string    `json:"signer"`
	// BoundToManifest reports whether the UPK names this package's
	// manifest digest.
	BoundToManifest bool `json:"bound_to_manifest"`
}

// Inspect decodes a package's manifest and UPKs without verifying them.
func Inspect(p *Package) (*Description, error) {
	return inspect(p.Manifest, p.UPKs, containerSize(p.Manifest, p.UPKs, int64(len(p.Payload))))
}

// InspectFile is Inspect for a package read with Open; it reads nothing
// more from the file.
func InspectFile(f *File) (*Description, error) {
	return inspect(f.Manifest, f.UPKs, f.Size)
}

func inspect(manifest []byte, upks [][]byte, size int64) (*Description, error) {
	m, err := secpkg.DecodeManifest(manifest)
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if err := firmware.CheckImageSize(uint64(m.PayloadSize)); err != nil {
		return nil, err
	}
	d := &Description{
		Version: m.Version, SecurityCounter: m.SecurityCounter,
		VendorID: uuidString(m.VendorID), ClassID: uuidString(m.ClassID),
		Slot: m.Slot, PayloadSize: m.PayloadSize, PayloadSHA256: hex.EncodeToString(m.PayloadDigest[:]),
		SourceFormat: m.SourceFormat, Created: time.Unix(int64(m.Created), 0).UTC(),
		Encryption: "A256GCM", ChunkSize: m.ChunkSize, Chunks: m.NumChunks(),
		Signer: hex.EncodeToString(m.SignerKID[:]), ManifestDigest: hex.EncodeToString(m.Digest[:]),
		ManifestSize: len(manifest), UPKs: []UPKInfo{}, PackageSize: int(size),
	}
	if m.HasLoadAddress {
		la := m.LoadAddress
		d.LoadAddress = &la
	}
	for i, b := range upks {
		info, err := InspectUPK(b)
		if err != nil {
			return nil, fmt.Errorf("UPK %d: %w", i+1, err)
		}
		u, _ := secpkg.DecodeUPK(b)
		info.BoundToManifest = u.ManifestDigest == m.Digest
		d.UPKs = append(d.UPKs, *info)
	}
	return d, nil
}

// InspectUPK decodes a UPK without verifying it.
func InspectUPK(b []byte) (*UPKInfo, error) {
	u, err := secpkg.DecodeUPK(b)
	if err != nil {
		return nil, err
	}
	info := &UPKInfo{
		ID: hex.EncodeToString(u.ID[:]), KeyID: hex.EncodeToString(u.KeyID[:]),
		NotBefore: time.Unix(int64(u.NotBefore), 0).UTC(), NotAfter: time.Unix(int64(u.NotAfter), 0).UTC(),
		Signer: hex.EncodeToString(u.SignerKID[:]),
	}
	switch u.Kind {
	case secpkg.RecipientDevice:
		info.Recipient, info.DeviceID = "device", hex.EncodeToString(u.DeviceID)
	case secpkg.RecipientClass:
		info.Recipient = "class"
	case secpkg.RecipientEscrow:
		info.Recipient = "escrow"
	default:
		info.Recipient = fmt.Sprintf("kind %d", u.Kind)
	}
	return info, nil
}

func uuidString(u [16]byte) string {
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
