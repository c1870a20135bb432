package cose

import "github.com/sbm-project/sbm/internal/cbor"

// KIDSize is the size of a key identifier: SHA-256 of the raw public key.
const KIDSize = 32

// Header is a parsed protected header of the package format (spec §3).
type Header struct {
	// Alg is the COSE algorithm: AlgES256 or AlgEdDSA.
	Alg int64
	// ContentType is the content type text, a sub-slice of the input.
	ContentType []byte
	// KID is the key identifier of the signing key.
	KID [KIDSize]byte
}

// ParseProtected parses the serialized protected header p (the content of
// the protected bstr). It must be a map with exactly the labels alg (1, a
// supported algorithm), content type (3, tstr) and kid (4, 32-byte bstr);
// any other label, a missing or duplicate one, or a wrong type is an error.
func ParseProtected(p []byte) (Header, error) {
	var h Header
	d := cbor.NewDecoder(p)
	n, err := d.MapHeader(3)
	if err != nil {
		return h, wrap(ErrHeader, err)
	}
	if n != 3 {
		return h, ErrHeader
	}
	var have [5]bool
	for i := 0; i < n; i++ {
		label, err := d.Int()
		if err != nil {
			return h, wrap(ErrHeader, err)
		}
		if label < 0 || label >= int64(len(have)) || have[label] {
			return h, ErrHeader
		}
		have[label] = true
		switch label {
		case LabelAlg:
			if h.Alg, err = d.Int(); err != nil {
				return h, wrap(ErrHeader, err)
			}
			if h.Alg != AlgES256 && h.Alg != AlgEdDSA {
				return h, ErrAlg
			}
		case LabelContentType:
			if h.ContentType, err = d.Text(); err != nil {
				return h, wrap(ErrHeader, err)
			}
		case LabelKID:
			kid, err := d.Bytes()
			if err != nil {
				return h, wrap(ErrHeader, err)
			}
			if len(kid) != KIDSize {
				return h, ErrHeader
			}
			copy(h.KID[:], kid)
		default:
			return h, ErrHeader
		}
	}
	if err := d.Finish(); err != nil {
		return h, wrap(ErrHeader, err)
	}
	return h, nil
}

// AppendProtected appends the serialized protected header {1: alg,
// 3: contentType, 4: kid} in deterministic (sorted) order. The result is the
// content of the protected bstr, not the bstr itself.
func AppendProtected(dst []byte, alg int64, contentType string, kid []byte) []byte {
	dst = cbor.AppendMapHeader(dst, 3)
	dst = cbor.AppendUint(dst, LabelAlg)
	dst = cbor.AppendInt(dst, alg)
	dst = cbor.AppendUint(dst, LabelContentType)
	dst = cbor.AppendText(dst, contentType)
	dst = cbor.AppendUint(dst, LabelKID)
	return cbor.AppendBytes(dst, kid)
}
