package secpkg

import (
	"encoding/binary"
	"io"
)

// Magic is the 8-byte signature that starts a package file (spec §8).
var Magic = [8]byte{0x89, 'S', 'B', 'M', '\r', '\n', 0x1a, '\n'}

// Record types (spec §8).
const (
	RecordManifest = 1
	RecordUPK      = 2
	RecordPayload  = 3
)

// MaxUPKs is the largest number of UPK records in a container.
const MaxUPKs = 16

// recordHeaderSize is the size of a record header.
const recordHeaderSize = 8

// Span locates a record body in the container.
type Span struct {
	Offset int64
	Length int64
}

// Container lists the records of a package file. It holds positions only;
// the caller reads the bodies it needs.
type Container struct {
	Manifest Span
	UPKs     [MaxUPKs]Span
	NumUPKs  int
	Payload  Span
}

// ParseContainer reads the record headers of a package file of size bytes
// (spec §8) and checks their types, order, reserved bytes and size limits
// and that the payload record ends the file. It reads only the magic and
// the 8-byte record headers, never a record body.
func ParseContainer(r io.ReaderAt, size int64) (*Container, error) {
	var hdr [recordHeaderSize]byte
	if size < int64(len(Magic)) {
		return nil, wrap(ErrTruncated, errMagic)
	}
	if _, err := r.ReadAt(hdr[:], 0); err != nil {
		return nil, wrap(ErrTruncated, err)
	}
	if hdr != Magic {
		return nil, wrap(ErrMalformed, errMagic)
	}
	c := new(Container)
	off := int64(len(Magic))
	for state := 0; ; { // 0: manifest expected, 1: UPKs or payload
		if off == size {
			return nil, ErrTruncated // no payload record
		}
		if size-off < recordHeaderSize {
			return nil, ErrTruncated
		}
		if _, err := r.ReadAt(hdr[:], off); err != nil {
			return nil, wrap(ErrTruncated, err)
		}
		typ := hdr[0]
		if hdr[1] != 0 || hdr[2] != 0 || hdr[3] != 0 {
			return nil, wrap(ErrMalformed, errReserved)
		}
		n := int64(binary.LittleEndian.Uint32(hdr[4:]))
		body := Span{Offset: off + recordHeaderSize, Length: n}
		if n > size-body.Offset {
			return nil, ErrTruncated
		}
		switch {
		case typ == RecordManifest && state == 0:
			if n > MaxManifestSize {
				return nil, ErrTooLarge
			}
			c.Manifest, state = body, 1
		case typ == RecordUPK && state == 1:
			if n > MaxUPKSize || c.NumUPKs == MaxUPKs {
				return nil, ErrTooLarge
			}
			c.UPKs[c.NumUPKs] = body
			c.NumUPKs++
		case typ == RecordPayload && state == 1:
			c.Payload = body
			if body.Offset+n != size {
				return nil, ErrTrailingData
			}
			return c, nil
		case typ >= RecordManifest && typ <= RecordPayload:
			return nil, wrap(ErrMalformed, errRecordOrder)
		default:
			return nil, wrap(ErrMalformed, errRecordType)
		}
		off = body.Offset + n
	}
}

// CheckPayload checks that the payload record has exactly the size the
// manifest implies, payload-size + 16·N (spec §6, §8).
func (c *Container) CheckPayload(m *Manifest) error {
	switch want := m.EncryptedSize(); {
	case c.Payload.Length < want:
		return ErrTruncated
	case c.Payload.Length > want:
		return ErrTrailingData
	}
	return nil
}
