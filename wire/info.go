package wire

import "github.com/sbm-project/sbm/internal/cbor"

// Limits of DeviceInfo fields (docs/spec/protocol.md §4.2).
const (
	maxInfoID      = 64
	maxInfoVersion = 64
)

// AppendCBOR appends the encoding of the INFO reply body to dst: a map
// with keys 1 ID (bytes), 2 Lifecycle, 3 SBMVersion (text), 4 AppVersion
// (text), 5 SecurityCounter, 6 LastError, 7 LastErrorDetail (text, at most
// MaxDetail bytes, truncated), 8 StagingSize. Every key is present.
// Target implementations use it in Info.
func (m *DeviceInfo) AppendCBOR(dst []byte) []byte {
	dst = cbor.AppendMapHeader(dst, 8)
	dst = cbor.AppendUint(dst, 1)
	dst = cbor.AppendBytes(dst, m.ID)
	dst = appendUintField(dst, 2, uint64(m.Lifecycle))
	dst = cbor.AppendUint(dst, 3)
	dst = cbor.AppendText(dst, m.SBMVersion)
	dst = cbor.AppendUint(dst, 4)
	dst = cbor.AppendText(dst, m.AppVersion)
	dst = appendUintField(dst, 5, uint64(m.SecurityCounter))
	dst = appendUintField(dst, 6, uint64(m.LastError))
	dst = cbor.AppendUint(dst, 7)
	dst = cbor.AppendText(dst, truncDetail(m.LastErrorDetail))
	return appendUintField(dst, 8, uint64(m.StagingSize))
}

// DecodeCBOR decodes an INFO reply body into m.
func (m *DeviceInfo) DecodeCBOR(b []byte) error {
	var v DeviceInfo
	seen, err := decodeMap(b, func(k uint64, d *cbor.Decoder) (bool, error) {
		var err error
		switch k {
		case 1:
			var id []byte
			if id, err = d.Bytes(); err == nil && len(id) > maxInfoID {
				err = errBodyValue
			}
			v.ID = append([]byte(nil), id...)
		case 2:
			v.Lifecycle, err = decodeU8(d)
		case 3:
			v.SBMVersion, err = decodeShortText(d, maxInfoVersion)
		case 4:
			v.AppVersion, err = decodeShortText(d, maxInfoVersion)
		case 5:
			v.SecurityCounter, err = d.Uint32()
		case 6:
			var c uint8
			c, err = decodeU8(d)
			v.LastError = Code(c)
		case 7:
			v.LastErrorDetail, err = decodeDetail(d)
		case 8:
			v.StagingSize, err = d.Uint32()
		default:
			return false, nil
		}
		return true, err
	})
	if err == nil {
		err = require(seen, 0x1fe) // keys 1..8
	}
	if err != nil {
		return err
	}
	*m = v
	return nil
}

func decodeShortText(d *cbor.Decoder, max int) (string, error) {
	t, err := d.Text()
	if err != nil {
		return "", err
	}
	if len(t) > max {
		return "", errBodyValue
	}
	return string(t), nil
}
