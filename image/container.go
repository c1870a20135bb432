package image

import (
	"encoding/binary"
	"errors"
)

// Magic starts every package file (docs/spec/package.md §8).
var Magic = [8]byte{0x89, 'S', 'B', 'M', '\r', '\n', 0x1a, '\n'}

// Record types of the container.
const (
	recordManifest = 1
	recordUPK      = 2
	recordPayload  = 3
)

// Format limits (spec §3, §8).
const (
	MaxManifestSize = 2048
	MaxUPKSize      = 2048
	MaxUPKs         = 16
)

// Package is a secure image package: the signed manifest, zero or more
// UPKs, and the encrypted payload.
type Package struct {
	// Manifest is the manifest COSE_Sign1.
	Manifest []byte
	// UPKs are UPK COSE_Sign1 messages carried with the package.
	UPKs [][]byte
	// Payload is the encrypted chunk stream.
	Payload []byte
}

// MarshalBinary encodes the package container.
func (p *Package) MarshalBinary() ([]byte, error) {
	if len(p.Manifest) == 0 || len(p.Manifest) > MaxManifestSize {
		return nil, errors.New("manifest missing or larger than 2048 bytes")
	}
	if len(p.UPKs) > MaxUPKs {
		return nil, errors.New("more than 16 UPKs")
	}
	size := len(Magic) + 8 + len(p.Manifest) + 8 + len(p.Payload)
	for _, u := range p.UPKs {
		if len(u) == 0 || len(u) > MaxUPKSize {
			return nil, errors.New("UPK missing or larger than 2048 bytes")
		}
		size += 8 + len(u)
	}
	out := make([]byte, 0, size)
	out = append(out, Magic[:]...)
	out = appendRecord(out, recordManifest, p.Manifest)
	for _, u := range p.UPKs {
		out = appendRecord(out, recordUPK, u)
	}
	return appendRecord(out, recordPayload, p.Payload), nil
}

// containerHeader returns the container up to the payload record's body:
// the magic, the manifest and UPK records, and the payload record header
// for a payload of payloadLen bytes.
func containerHeader(manifest []byte, upks [][]byte, payloadLen int64) []byte {
	out := append([]byte(nil), Magic[:]...)
	out = appendRecord(out, recordManifest, manifest)
	for _, u := range upks {
		out = appendRecord(out, recordUPK, u)
	}
	out = append(out, recordPayload, 0, 0, 0)
	return binary.LittleEndian.AppendUint32(out, uint32(payloadLen))
}

// containerSize is the size of a container with these records.
func containerSize(manifest []byte, upks [][]byte, payloadLen int64) int64 {
	n := int64(len(Magic)+8+len(manifest)+8) + payloadLen
	for _, u := range upks {
		n += int64(8 + len(u))
	}
	return n
}

func appendRecord(b []byte, typ byte, body []byte) []byte {
	b = append(b, typ, 0, 0, 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(body)))
	return append(b, body...)
}
