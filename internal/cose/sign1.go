package cose

import "github.com/sbm-project/sbm/internal/cbor"

// TagSign1 is the CBOR tag of a COSE_Sign1 message.
const TagSign1 = 18

// Header labels used in protected headers (RFC 9052 §3.1).
const (
	LabelAlg         = 1
	LabelContentType = 3
	LabelKID         = 4
)

// maxHeaderEntries bounds the size of a header map.
const maxHeaderEntries = cbor.MaxMapKeys

// Sign1 is a decoded COSE_Sign1 message. Every field is a sub-slice of the
// decoded input.
type Sign1 struct {
	// Protected is the content of the protected bstr: the serialized
	// protected header map.
	Protected []byte
	// Unprotected is the raw CBOR encoding of the unprotected header map.
	Unprotected []byte
	// Payload is the content of the payload bstr.
	Payload []byte
	// Signature is the content of the signature bstr.
	Signature []byte
}

// DecodeSign1 decodes msg, which must be exactly one tagged COSE_Sign1 with
// an attached payload and nothing after it. It checks the structure only:
// the unprotected header is a well-formed map without duplicate labels, but
// neither header is interpreted and the signature is not verified.
func DecodeSign1(msg []byte) (Sign1, error) {
	var s Sign1
	d := cbor.NewDecoder(msg)
	tag, err := d.Tag()
	if err != nil {
		return s, wrap(ErrMalformed, err)
	}
	if tag != TagSign1 {
		return s, ErrMalformed
	}
	n, err := d.ArrayHeader(4)
	if err != nil {
		return s, wrap(ErrMalformed, err)
	}
	if n != 4 {
		return s, ErrMalformed
	}
	if s.Protected, err = d.Bytes(); err != nil {
		return s, wrap(ErrMalformed, err)
	}
	start := d.Offset()
	if err := skipHeaderMap(&d); err != nil {
		return s, wrap(ErrMalformed, err)
	}
	s.Unprotected = d.Since(start)
	if s.Payload, err = d.Bytes(); err != nil { // nil payload (detached) is rejected here
		return s, wrap(ErrMalformed, err)
	}
	if s.Signature, err = d.Bytes(); err != nil {
		return s, wrap(ErrMalformed, err)
	}
	if err := d.Finish(); err != nil {
		return s, wrap(ErrMalformed, err)
	}
	return s, nil
}

// skipHeaderMap consumes a header map, checking that its labels are
// integers or text strings and unique, and that its values are acceptable
// CBOR.
func skipHeaderMap(d *cbor.Decoder) error {
	n, err := d.MapHeader(maxHeaderEntries)
	if err != nil {
		return err
	}
	var seen cbor.KeySet
	for i := 0; i < n; i++ {
		m, err := d.PeekType()
		if err != nil {
			return err
		}
		if m != cbor.MajorUint && m != cbor.MajorNegInt && m != cbor.MajorText {
			return cbor.ErrType
		}
		key, err := d.RawItem()
		if err != nil {
			return err
		}
		if err := seen.Add(key); err != nil {
			return err
		}
		if err := d.Skip(); err != nil {
			return err
		}
	}
	return nil
}

// UnprotectedBytes returns the byte-string value of the integer label in the
// unprotected header, or ErrNotFound. A value of another type is an error.
func (s *Sign1) UnprotectedBytes(label int64) ([]byte, error) {
	d := cbor.NewDecoder(s.Unprotected)
	n, err := d.MapHeader(maxHeaderEntries)
	if err != nil {
		return nil, wrap(ErrMalformed, err)
	}
	for i := 0; i < n; i++ {
		m, err := d.PeekType()
		if err != nil {
			return nil, wrap(ErrMalformed, err)
		}
		if m == cbor.MajorUint || m == cbor.MajorNegInt {
			k, err := d.Int()
			if err == nil && k == label {
				v, err := d.Bytes()
				if err != nil {
					return nil, wrap(ErrMalformed, err)
				}
				return v, nil
			}
			if err != nil {
				if err := d.Skip(); err != nil { // an integer label outside int64
					return nil, wrap(ErrMalformed, err)
				}
			}
		} else if err := d.Skip(); err != nil {
			return nil, wrap(ErrMalformed, err)
		}
		if err := d.Skip(); err != nil {
			return nil, wrap(ErrMalformed, err)
		}
	}
	return nil, ErrNotFound
}

// AppendSign1 appends the tagged COSE_Sign1 [protected, unprotected,
// payload, signature]. unprotected must be the encoding of a CBOR map; if
// it is empty, an empty map is written.
func AppendSign1(dst, protected, unprotected, payload, signature []byte) []byte {
	dst = cbor.AppendTag(dst, TagSign1)
	dst = cbor.AppendArrayHeader(dst, 4)
	dst = cbor.AppendBytes(dst, protected)
	if len(unprotected) == 0 {
		dst = cbor.AppendMapHeader(dst, 0)
	} else {
		dst = append(dst, unprotected...)
	}
	dst = cbor.AppendBytes(dst, payload)
	return cbor.AppendBytes(dst, signature)
}

// AppendSigStructure appends the RFC 9052 §4.4 Sig_structure for a
// COSE_Sign1 with an empty external_aad:
// ["Signature1", protected, empty bstr, payload].
func AppendSigStructure(dst, protected, payload []byte) []byte {
	dst = cbor.AppendArrayHeader(dst, 4)
	dst = cbor.AppendText(dst, "Signature1")
	dst = cbor.AppendBytes(dst, protected)
	dst = cbor.AppendBytes(dst, nil)
	return cbor.AppendBytes(dst, payload)
}

// DecodeBare decodes a COSE_Sign1 of at most maxSize bytes as the
// project's formats sign them: its unprotected header the empty map
// (nothing travels outside the signature) and its protected header naming
// contentType. It returns the message and the parsed protected header;
// errors wrap ErrMalformed or ErrHeader.
func DecodeBare(msg []byte, maxSize int, contentType string) (Sign1, Header, error) {
	if len(msg) > maxSize {
		return Sign1{}, Header{}, ErrMalformed
	}
	s, err := DecodeSign1(msg)
	if err != nil {
		return s, Header{}, err
	}
	if len(s.Unprotected) != 1 || s.Unprotected[0] != 0xa0 {
		return s, Header{}, ErrMalformed
	}
	h, err := ParseProtected(s.Protected)
	if err != nil {
		return s, h, err
	}
	if string(h.ContentType) != contentType {
		return s, h, ErrHeader
	}
	return s, h, nil
}
