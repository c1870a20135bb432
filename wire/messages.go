package wire

import (
	"unicode/utf8"

	"github.com/sbm-project/sbm/internal/cbor"
	"github.com/sbm-project/sbm/internal/errs"
)

// Type is a frame type (docs/spec/protocol.md §3). Requests, sent by the
// host, are below 0x80; responses, sent by the device, are 0x80 and above.
type Type uint8

// Requests.
const (
	TypeHello   Type = 0x01 // body Hello; reply HelloReply
	TypeInfo    Type = 0x02 // empty body; reply InfoReply (a DeviceInfo)
	TypeGetCert Type = 0x03 // body GetCert; reply CertReply
	TypeBegin   Type = 0x04 // body Begin; reply Result
	TypeData    Type = 0x05 // body Data; reply Ack or Nak (or Result on error)
	TypeStatus  Type = 0x06 // empty body; reply StatusReply
	TypeFinish  Type = 0x07 // empty body; reply Result
	TypeAbort   Type = 0x08 // empty body; reply Result
	TypeReset   Type = 0x09 // empty body; reply Result, then the device resets
)

// Responses.
const (
	TypeResult      Type = 0x80 // body Result: success or an error code and detail
	TypeHelloReply  Type = 0x81 // body HelloReply
	TypeInfoReply   Type = 0x82 // body DeviceInfo
	TypeCertReply   Type = 0x83 // body CertReply
	TypeAck         Type = 0x85 // body Ack: cumulative received offset
	TypeNak         Type = 0x86 // body Ack: the offset the device expects
	TypeStatusReply Type = 0x87 // body StatusReply
)

// IsResponse reports whether t is a response type (sent by the device).
func (t Type) IsResponse() bool { return t >= 0x80 }

// Protocol versions this package speaks.
const (
	MinVersion = 1
	MaxVersion = 1
)

// MaxDetail is the longest error detail, in bytes, that a Result or
// StatusReply may carry. Encoders truncate longer details.
const MaxDetail = 200

// maxMapEntries bounds every map of the protocol.
const maxMapEntries = 16

// Errors for malformed bodies. They are *Error values with
// CodeMalformed so that a Session can send them as they are.
var (
	errBodyMissing    = &Error{Code: CodeMalformed, Detail: "missing required field"}
	errBodyUnknown    = &Error{Code: CodeMalformed, Detail: "unknown field"}
	errBodyKey        = &Error{Code: CodeMalformed, Detail: "map key is not an integer"}
	errBodyValue      = &Error{Code: CodeMalformed, Detail: "field value out of range"}
	errBodyDetailSize = &Error{Code: CodeMalformed, Detail: "detail too long"}
)

// fieldFunc decodes the value of key k at d. It reports whether the key
// is known.
type fieldFunc func(k uint64, d *cbor.Decoder) (known bool, err error)

// decodeMap is cbor.DecodeMap with the protocol's entry limit and errors.
func decodeMap(b []byte, field fieldFunc) (seen uint32, err error) {
	seen, err = cbor.DecodeMap(b, maxMapEntries, cbor.FieldFunc(field))
	switch {
	case errs.Is(err, cbor.ErrMapKey):
		err = errBodyKey
	case errs.Is(err, cbor.ErrUnknownKey):
		err = errBodyUnknown
	}
	return seen, err
}

// require returns errBodyMissing unless every key in want was seen.
func require(seen, want uint32) error {
	if seen&want != want {
		return errBodyMissing
	}
	return nil
}

func decodeU8(d *cbor.Decoder) (uint8, error) {
	v, err := d.Uint32()
	if err != nil {
		return 0, err
	}
	if v > 0xff {
		return 0, errBodyValue
	}
	return uint8(v), nil
}

func appendUintField(b []byte, k uint64, v uint64) []byte {
	return cbor.AppendUint(cbor.AppendUint(b, k), v)
}

// truncDetail shortens s to at most MaxDetail bytes on a UTF-8 boundary.
func truncDetail(s string) string {
	if len(s) <= MaxDetail {
		return s
	}
	i := MaxDetail
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

// AppendEmpty appends the empty body (an empty map) of INFO, STATUS,
// FINISH, ABORT and RESET.
func AppendEmpty(dst []byte) []byte { return cbor.AppendMapHeader(dst, 0) }

// DecodeEmpty checks that b is an empty body: a map with no fields other
// than ignored extensions (negative keys).
func DecodeEmpty(b []byte) error {
	_, err := decodeMap(b, func(uint64, *cbor.Decoder) (bool, error) { return false, nil })
	return err
}

// Hello is the HELLO request body: the range of protocol versions the host
// speaks.
type Hello struct {
	MinVersion uint32 // key 1
	MaxVersion uint32 // key 2
	// Nonce (key 3, optional, 1 to MaxNonce bytes) is echoed in the reply,
	// so that the host can tell its HELLO's answer from stale bytes left on
	// the line by an earlier session.
	Nonce []byte
}

// MaxNonce is the longest HELLO nonce.
const MaxNonce = 16

// AppendCBOR appends the encoding of m to dst.
func (m *Hello) AppendCBOR(dst []byte) []byte {
	n := uint64(2)
	if m.Nonce != nil {
		n++
	}
	dst = cbor.AppendMapHeader(dst, n)
	dst = appendUintField(dst, 1, uint64(m.MinVersion))
	dst = appendUintField(dst, 2, uint64(m.MaxVersion))
	if m.Nonce != nil {
		dst = cbor.AppendBytes(cbor.AppendUint(dst, 3), m.Nonce)
	}
	return dst
}

// DecodeCBOR decodes b into m.
func (m *Hello) DecodeCBOR(b []byte) error {
	var v Hello
	seen, err := decodeMap(b, func(k uint64, d *cbor.Decoder) (bool, error) {
		var err error
		switch k {
		case 1:
			v.MinVersion, err = d.Uint32()
		case 2:
			v.MaxVersion, err = d.Uint32()
		case 3:
			v.Nonce, err = d.Bytes()
			if err == nil && (len(v.Nonce) == 0 || len(v.Nonce) > MaxNonce) {
				err = errBodyValue
			}
		default:
			return false, nil
		}
		return true, err
	})
	if err == nil {
		err = require(seen, 1<<1|1<<2)
	}
	if err == nil && v.MinVersion > v.MaxVersion {
		err = errBodyValue
	}
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// HelloReply is the HELLO reply body: the chosen version and the device's
// limits for this session.
type HelloReply struct {
	Version uint32 // key 1: the protocol version chosen
	MaxData uint32 // key 2: largest DATA payload the device accepts
	Window  uint32 // key 3: most unacknowledged DATA payload bytes in flight
	// Inactivity is the device's inactivity timeout in milliseconds (key 4).
	Inactivity uint32
	// MaxFrame is the largest decoded frame the device accepts (key 5).
	MaxFrame uint32
	// Nonce echoes the HELLO's nonce (key 6), if it had one.
	Nonce []byte
}

// AppendCBOR appends the encoding of m to dst.
func (m *HelloReply) AppendCBOR(dst []byte) []byte {
	n := uint64(5)
	if m.Nonce != nil {
		n++
	}
	dst = cbor.AppendMapHeader(dst, n)
	dst = appendUintField(dst, 1, uint64(m.Version))
	dst = appendUintField(dst, 2, uint64(m.MaxData))
	dst = appendUintField(dst, 3, uint64(m.Window))
	dst = appendUintField(dst, 4, uint64(m.Inactivity))
	dst = appendUintField(dst, 5, uint64(m.MaxFrame))
	if m.Nonce != nil {
		dst = cbor.AppendBytes(cbor.AppendUint(dst, 6), m.Nonce)
	}
	return dst
}

// DecodeCBOR decodes b into m.
func (m *HelloReply) DecodeCBOR(b []byte) error {
	var v HelloReply
	seen, err := decodeMap(b, func(k uint64, d *cbor.Decoder) (bool, error) {
		var err error
		switch k {
		case 1:
			v.Version, err = d.Uint32()
		case 2:
			v.MaxData, err = d.Uint32()
		case 3:
			v.Window, err = d.Uint32()
		case 4:
			v.Inactivity, err = d.Uint32()
		case 5:
			v.MaxFrame, err = d.Uint32()
		case 6:
			v.Nonce, err = d.Bytes()
			if err == nil && (len(v.Nonce) == 0 || len(v.Nonce) > MaxNonce) {
				err = errBodyValue
			}
		default:
			return false, nil
		}
		return true, err
	})
	if err == nil {
		err = require(seen, 1<<1|1<<2|1<<3|1<<4|1<<5)
	}
	if err == nil && (v.MaxData == 0 || v.MaxData > MaxData || v.Window < v.MaxData || v.MaxFrame < minFrame) {
		err = errBodyValue
	}
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// GetCert is the GET_CERT request body.
type GetCert struct {
	Offset uint32 // key 1: offset in the certificate of the first byte wanted
}

// AppendCBOR appends the encoding of m to dst.
func (m *GetCert) AppendCBOR(dst []byte) []byte {
	return appendUintField(cbor.AppendMapHeader(dst, 1), 1, uint64(m.Offset))
}

// DecodeCBOR decodes b into m.
func (m *GetCert) DecodeCBOR(b []byte) error {
	return decodeOneUint(b, &m.Offset)
}

// Begin is the BEGIN request body.
type Begin struct {
	Size uint32 // key 1: package size in bytes, at least 1
}

// AppendCBOR appends the encoding of m to dst.
func (m *Begin) AppendCBOR(dst []byte) []byte {
	return appendUintField(cbor.AppendMapHeader(dst, 1), 1, uint64(m.Size))
}

// DecodeCBOR decodes b into m.
func (m *Begin) DecodeCBOR(b []byte) error {
	var v uint32
	if err := decodeOneUint(b, &v); err != nil {
		return err
	}
	if v == 0 {
		return errBodyValue
	}
	m.Size = v
	return nil
}

// Ack is the body of ACK (the cumulative offset received) and NAK (the
// offset the device expects next).
type Ack struct {
	Offset uint32 // key 1
}

// AppendCBOR appends the encoding of m to dst.
func (m *Ack) AppendCBOR(dst []byte) []byte {
	return appendUintField(cbor.AppendMapHeader(dst, 1), 1, uint64(m.Offset))
}

// DecodeCBOR decodes b into m.
func (m *Ack) DecodeCBOR(b []byte) error {
	return decodeOneUint(b, &m.Offset)
}

// decodeOneUint decodes a map whose only field is key 1, a uint32.
func decodeOneUint(b []byte, out *uint32) error {
	var v uint32
	seen, err := decodeMap(b, func(k uint64, d *cbor.Decoder) (bool, error) {
		if k != 1 {
			return false, nil
		}
		var err error
		v, err = d.Uint32()
		return true, err
	})
	if err == nil {
		err = require(seen, 1<<1)
	}
	if err != nil {
		return err
	}
	*out = v
	return nil
}

// Data is the DATA request body: payload bytes at an offset of the package.
type Data struct {
	Offset uint32 // key 1
	// Bytes (key 2) is 1 to MaxData bytes. After DecodeCBOR it aliases the
	// decoded body.
	Bytes []byte
}

// AppendCBOR appends the encoding of m to dst.
func (m *Data) AppendCBOR(dst []byte) []byte {
	dst = cbor.AppendMapHeader(dst, 2)
	dst = appendUintField(dst, 1, uint64(m.Offset))
	dst = cbor.AppendUint(dst, 2)
	return cbor.AppendBytes(dst, m.Bytes)
}

// DecodeCBOR decodes b into m. m.Bytes aliases b.
func (m *Data) DecodeCBOR(b []byte) error {
	var v Data
	seen, err := decodeMap(b, func(k uint64, d *cbor.Decoder) (bool, error) {
		var err error
		switch k {
		case 1:
			v.Offset, err = d.Uint32()
		case 2:
			v.Bytes, err = d.Bytes()
		default:
			return false, nil
		}
		return true, err
	})
	if err == nil {
		err = require(seen, 1<<1|1<<2)
	}
	if err == nil && (len(v.Bytes) == 0 || len(v.Bytes) > MaxData) {
		err = errBodyValue
	}
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// CertReply is the GET_CERT reply body: a piece of the device certificate.
type CertReply struct {
	Total  uint32 // key 1: length of the whole certificate
	Offset uint32 // key 2: offset of Bytes in it
	Bytes  []byte // key 3: at most MaxData bytes; aliases the body after DecodeCBOR
}

// AppendCBOR appends the encoding of m to dst.
func (m *CertReply) AppendCBOR(dst []byte) []byte {
	dst = cbor.AppendMapHeader(dst, 3)
	dst = appendUintField(dst, 1, uint64(m.Total))
	dst = appendUintField(dst, 2, uint64(m.Offset))
	dst = cbor.AppendUint(dst, 3)
	return cbor.AppendBytes(dst, m.Bytes)
}

// DecodeCBOR decodes b into m.
func (m *CertReply) DecodeCBOR(b []byte) error {
	var v CertReply
	seen, err := decodeMap(b, func(k uint64, d *cbor.Decoder) (bool, error) {
		var err error
		switch k {
		case 1:
			v.Total, err = d.Uint32()
		case 2:
			v.Offset, err = d.Uint32()
		case 3:
			v.Bytes, err = d.Bytes()
		default:
			return false, nil
		}
		return true, err
	})
	if err == nil {
		err = require(seen, 1<<1|1<<2|1<<3)
	}
	if err == nil && (len(v.Bytes) > MaxData || uint64(v.Offset)+uint64(len(v.Bytes)) > uint64(v.Total)) {
		err = errBodyValue
	}
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// Result is the RESULT body: Code 0 for success, else an error code and a
// short detail.
type Result struct {
	Code   Code   // key 1
	Detail string // key 2, omitted when empty; at most MaxDetail bytes
}

// AppendCBOR appends the encoding of m to dst, truncating Detail to
// MaxDetail bytes.
func (m *Result) AppendCBOR(dst []byte) []byte {
	detail := truncDetail(m.Detail)
	if detail == "" {
		return appendUintField(cbor.AppendMapHeader(dst, 1), 1, uint64(m.Code))
	}
	dst = appendUintField(cbor.AppendMapHeader(dst, 2), 1, uint64(m.Code))
	dst = cbor.AppendUint(dst, 2)
	return cbor.AppendText(dst, detail)
}

// DecodeCBOR decodes b into m.
func (m *Result) DecodeCBOR(b []byte) error {
	var v Result
	seen, err := decodeMap(b, func(k uint64, d *cbor.Decoder) (bool, error) {
		switch k {
		case 1:
			c, err := decodeU8(d)
			v.Code = Code(c)
			return true, err
		case 2:
			s, err := decodeDetail(d)
			v.Detail = s
			return true, err
		}
		return false, nil
	})
	if err == nil {
		err = require(seen, 1<<1)
	}
	if err != nil {
		return err
	}
	*m = v
	return nil
}

func decodeDetail(d *cbor.Decoder) (string, error) {
	t, err := d.Text()
	if err != nil {
		return "", err
	}
	if len(t) > MaxDetail {
		return "", errBodyDetailSize
	}
	return string(t), nil
}

// Err returns nil for a successful result and an *Error otherwise.
func (m *Result) Err() error {
	if m.Code == CodeOK {
		return nil
	}
	return &Error{Code: m.Code, Detail: m.Detail}
}

// Transfer states reported by STATUS.
const (
	StateIdle      uint8 = 0 // no transfer: none begun, or it failed or was aborted
	StateReceiving uint8 = 1 // a transfer is in progress (possibly complete, awaiting FINISH)
	StateInstalled uint8 = 2 // FINISH succeeded in this session
)

// StatusReply is the STATUS reply body.
type StatusReply struct {
	State    uint8  // key 1: StateIdle, StateReceiving or StateInstalled
	Size     uint32 // key 2: size given by BEGIN, 0 when idle
	Received uint32 // key 3: bytes stored (Target.Received) — resume here
	// Code and Detail (keys 4 and 5, omitted when 0 and "") explain why
	// the last transfer of this session failed.
	Code   Code
	Detail string
}

// AppendCBOR appends the encoding of m to dst.
func (m *StatusReply) AppendCBOR(dst []byte) []byte {
	detail := truncDetail(m.Detail)
	n := uint64(3)
	if m.Code != CodeOK {
		n++
	}
	if detail != "" {
		n++
	}
	dst = cbor.AppendMapHeader(dst, n)
	dst = appendUintField(dst, 1, uint64(m.State))
	dst = appendUintField(dst, 2, uint64(m.Size))
	dst = appendUintField(dst, 3, uint64(m.Received))
	if m.Code != CodeOK {
		dst = appendUintField(dst, 4, uint64(m.Code))
	}
	if detail != "" {
		dst = cbor.AppendUint(dst, 5)
		dst = cbor.AppendText(dst, detail)
	}
	return dst
}

// DecodeCBOR decodes b into m.
func (m *StatusReply) DecodeCBOR(b []byte) error {
	var v StatusReply
	seen, err := decodeMap(b, func(k uint64, d *cbor.Decoder) (bool, error) {
		var err error
		switch k {
		case 1:
			v.State, err = decodeU8(d)
		case 2:
			v.Size, err = d.Uint32()
		case 3:
			v.Received, err = d.Uint32()
		case 4:
			var c uint8
			c, err = decodeU8(d)
			v.Code = Code(c)
		case 5:
			v.Detail, err = decodeDetail(d)
		default:
			return false, nil
		}
		return true, err
	})
	if err == nil {
		err = require(seen, 1<<1|1<<2|1<<3)
	}
	if err == nil && (v.State > StateInstalled || v.Received > v.Size) {
		err = errBodyValue
	}
	if err != nil {
		return err
	}
	*m = v
	return nil
}
