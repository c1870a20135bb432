// Package mailbox is the provisioning mailbox (docs/spec/provisioning.md):
// the messages a provisioning tool and the SBM exchange through device RAM
// over the debug port, before the device is locked.
//
// The host writes a request frame at RAM offset Offset and resets the
// device; the SBM acts on it at boot and replaces it with a response frame.
//
// mailbox is device-side code: standard library only, bounded, no fmt.
package mailbox

import (
	"encoding/binary"

	"github.com/sbm-project/sbm/internal/cbor"
	"github.com/sbm-project/sbm/internal/crc"
	"github.com/sbm-project/sbm/internal/errs"
)

// Offset is the RAM offset of the mailbox.
const Offset = 0

// MaxBody is the largest message body.
const MaxBody = 8192

// HeaderSize is the size of a frame header.
const HeaderSize = 12

// Frame magics.
var (
	MagicRequest  = [4]byte{'S', 'B', 'M', 'Q'}
	MagicResponse = [4]byte{'S', 'B', 'M', 'R'}
)

// Op is a mailbox operation.
type Op uint8

const (
	// OpProvision asks the SBM to take its anchors, enrol its PUF, derive
	// its keys, write its secure storage and answer with a CSR.
	OpProvision Op = 1
	// OpInstallCertificate gives the SBM its device certificate.
	OpInstallCertificate Op = 2
)

// Errors.
var (
	ErrNoFrame   = errs.New("mailbox: no frame")
	ErrMalformed = errs.New("mailbox: malformed message")
	ErrTooLarge  = errs.New("mailbox: message too large")
)

// Request is a message from the provisioning tool.
type Request struct {
	Op Op
	// OpProvision:
	Suite           uint8    // 1 p256, 2 ed25519 (secpkg.Suite)
	RootKey         []byte   // raw root public key; its SHA-256 must equal the fuses' root key hash
	VendorID        [16]byte //
	ClassID         [16]byte //
	ImageKeyCert    []byte   // image-signing key certificate (COSE_Sign1)
	UpdateKeyCert   []byte   // update-authority key certificate (COSE_Sign1)
	ClassKey        []byte   // class key-agreement private key (raw scalar), or nil
	SecurityCounter uint32   // initial security counter
	Time            uint64   // provisioning time, epoch seconds: the device's initial time floor
	// OpInstallCertificate:
	Certificate []byte // device certificate, DER
	// CAChain is the device CA chain (optional, OpInstallCertificate): the
	// issuer of the device certificate first, each DER certificate
	// prefixed by its 2-byte big-endian length, ending with the
	// certificate the root key signed (the root certificate itself is not
	// included: the device trusts the root key in its fuses).
	CAChain []byte
}

// Response is the SBM's answer.
type Response struct {
	Op     Op
	Code   uint8  // 0 success, else a wire.Code
	Detail string // explanation of a failure
	// OpProvision:
	DeviceID     []byte // the device's unique ID
	CSR          []byte // PKCS#10 request for the identity key, DER
	KeyAgreement []byte // raw key-agreement public key
}

// Frame wraps body as a frame: magic, length (LE), CRC-32 (IEEE, LE) of
// body, body.
func Frame(dst []byte, magic [4]byte, body []byte) ([]byte, error) {
	if len(body) > MaxBody {
		return dst, ErrTooLarge
	}
	dst = append(dst, magic[:]...)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(body)))
	dst = binary.LittleEndian.AppendUint32(dst, crc.IEEE(body))
	return append(dst, body...), nil
}

// ParseHeader checks a frame header and returns the body length.
func ParseHeader(h []byte, magic [4]byte) (int, error) {
	if len(h) < HeaderSize || [4]byte(h[:4]) != magic {
		return 0, ErrNoFrame
	}
	n := binary.LittleEndian.Uint32(h[4:8])
	if n > MaxBody {
		return 0, ErrTooLarge
	}
	return int(n), nil
}

// Unframe returns the body of a complete frame.
func Unframe(f []byte, magic [4]byte) ([]byte, error) {
	n, err := ParseHeader(f, magic)
	if err != nil {
		return nil, err
	}
	if len(f) < HeaderSize+n {
		return nil, ErrMalformed
	}
	body := f[HeaderSize : HeaderSize+n]
	if crc.IEEE(body) != binary.LittleEndian.Uint32(f[8:12]) {
		return nil, ErrMalformed
	}
	return body, nil
}

// EncodeRequest appends the CBOR encoding of r to dst.
func EncodeRequest(dst []byte, r *Request) []byte {
	if r.Op == OpInstallCertificate {
		n := uint64(2)
		if r.CAChain != nil {
			n++
		}
		dst = cbor.AppendMapHeader(dst, n)
		dst = cbor.AppendUint(cbor.AppendUint(dst, 1), uint64(r.Op))
		dst = cbor.AppendBytes(cbor.AppendUint(dst, 2), r.Certificate)
		if r.CAChain != nil {
			dst = cbor.AppendBytes(cbor.AppendUint(dst, 12), r.CAChain)
		}
		return dst
	}
	n := uint64(9)
	if r.ClassKey != nil {
		n++
	}
	dst = cbor.AppendMapHeader(dst, n)
	dst = cbor.AppendUint(cbor.AppendUint(dst, 1), uint64(r.Op))
	dst = cbor.AppendUint(cbor.AppendUint(dst, 3), uint64(r.Suite))
	dst = cbor.AppendBytes(cbor.AppendUint(dst, 4), r.RootKey)
	dst = cbor.AppendBytes(cbor.AppendUint(dst, 5), r.VendorID[:])
	dst = cbor.AppendBytes(cbor.AppendUint(dst, 6), r.ClassID[:])
	dst = cbor.AppendBytes(cbor.AppendUint(dst, 7), r.ImageKeyCert)
	dst = cbor.AppendBytes(cbor.AppendUint(dst, 8), r.UpdateKeyCert)
	if r.ClassKey != nil {
		dst = cbor.AppendBytes(cbor.AppendUint(dst, 9), r.ClassKey)
	}
	dst = cbor.AppendUint(cbor.AppendUint(dst, 10), uint64(r.SecurityCounter))
	return cbor.AppendUint(cbor.AppendUint(dst, 11), r.Time)
}

// DecodeRequest decodes a request body. Byte strings in r alias b.
func DecodeRequest(b []byte) (Request, error) {
	var r Request
	seen, err := cbor.DecodeMap(b, 16, func(k uint64, d *cbor.Decoder) (bool, error) {
		var err error
		switch k {
		case 1:
			var v uint64
			v, err = d.Uint()
			if v < 1 || v > 2 {
				err = ErrMalformed
			}
			r.Op = Op(v)
		case 2:
			r.Certificate, err = d.Bytes()
		case 3:
			var v uint64
			v, err = d.Uint()
			if v < 1 || v > 2 {
				err = ErrMalformed
			}
			r.Suite = uint8(v)
		case 4:
			r.RootKey, err = d.Bytes()
		case 5, 6:
			var id []byte
			id, err = d.Bytes()
			if err == nil && len(id) != 16 {
				err = ErrMalformed
			}
			if k == 5 {
				copy(r.VendorID[:], id)
			} else {
				copy(r.ClassID[:], id)
			}
		case 7:
			r.ImageKeyCert, err = d.Bytes()
		case 8:
			r.UpdateKeyCert, err = d.Bytes()
		case 9:
			r.ClassKey, err = d.Bytes()
		case 10:
			r.SecurityCounter, err = d.Uint32()
		case 11:
			r.Time, err = d.Uint()
		case 12:
			r.CAChain, err = d.Bytes()
		default:
			return false, nil
		}
		return true, err
	})
	if err != nil || seen&(1<<1) == 0 {
		return r, ErrMalformed
	}
	const provisionKeys = 1<<1 | 1<<3 | 1<<4 | 1<<5 | 1<<6 | 1<<7 | 1<<8 | 1<<10 | 1<<11
	switch r.Op {
	case OpProvision:
		if seen&provisionKeys != provisionKeys || seen&(1<<2|1<<12) != 0 {
			return r, ErrMalformed
		}
	case OpInstallCertificate:
		if seen&^(1<<12) != 1<<1|1<<2 {
			return r, ErrMalformed
		}
	}
	return r, nil
}

// EncodeResponse appends the CBOR encoding of r to dst.
func EncodeResponse(dst []byte, r *Response) []byte {
	n := uint64(3)
	for _, b := range [][]byte{r.DeviceID, r.CSR, r.KeyAgreement} {
		if b != nil {
			n++
		}
	}
	dst = cbor.AppendMapHeader(dst, n)
	dst = cbor.AppendUint(cbor.AppendUint(dst, 1), uint64(r.Op))
	dst = cbor.AppendUint(cbor.AppendUint(dst, 2), uint64(r.Code))
	dst = cbor.AppendText(cbor.AppendUint(dst, 3), r.Detail)
	if r.DeviceID != nil {
		dst = cbor.AppendBytes(cbor.AppendUint(dst, 4), r.DeviceID)
	}
	if r.CSR != nil {
		dst = cbor.AppendBytes(cbor.AppendUint(dst, 5), r.CSR)
	}
	if r.KeyAgreement != nil {
		dst = cbor.AppendBytes(cbor.AppendUint(dst, 6), r.KeyAgreement)
	}
	return dst
}

// DecodeResponse decodes a response body. Byte strings in r alias b.
func DecodeResponse(b []byte) (Response, error) {
	var r Response
	seen, err := cbor.DecodeMap(b, 8, func(k uint64, d *cbor.Decoder) (bool, error) {
		var err error
		switch k {
		case 1:
			var v uint64
			v, err = d.Uint()
			r.Op = Op(v)
		case 2:
			var v uint64
			v, err = d.Uint()
			if v > 255 {
				err = ErrMalformed
			}
			r.Code = uint8(v)
		case 3:
			var t []byte
			t, err = d.Text()
			r.Detail = string(t)
		case 4:
			r.DeviceID, err = d.Bytes()
		case 5:
			r.CSR, err = d.Bytes()
		case 6:
			r.KeyAgreement, err = d.Bytes()
		default:
			return false, nil
		}
		return true, err
	})
	if err != nil || seen&0b1110 != 0b1110 {
		return r, ErrMalformed
	}
	return r, nil
}
