package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/sbm-project/sbm/internal/cbor"
)

// codec is implemented by every message body.
type codec interface {
	AppendCBOR([]byte) []byte
	DecodeCBOR([]byte) error
}

func TestMessageRoundTrip(t *testing.T) {
	tests := []struct {
		in, out codec
	}{
		{&Hello{MinVersion: 1, MaxVersion: 3}, new(Hello)},
		{&HelloReply{Version: 1, MaxData: 2048, Window: 8192, Inactivity: 60000, MaxFrame: MaxFrame}, new(HelloReply)},
		{&GetCert{Offset: 1 << 20}, new(GetCert)},
		{&Begin{Size: 0xFFFFFFFF}, new(Begin)},
		{&Data{Offset: 4096, Bytes: bytes.Repeat([]byte{0}, MaxData)}, new(Data)},
		{&Ack{Offset: 77}, new(Ack)},
		{&CertReply{Total: 10, Offset: 4, Bytes: []byte{1, 2, 3}}, new(CertReply)},
		{&Result{Code: CodeOK}, new(Result)},
		{&Result{Code: CodeSignature, Detail: "manifest signature"}, new(Result)},
		{&StatusReply{State: StateReceiving, Size: 100, Received: 50}, new(StatusReply)},
		{&StatusReply{State: StateIdle, Code: CodeDecrypt, Detail: "chunk 3"}, new(StatusReply)},
		{&DeviceInfo{ID: []byte{1, 2}, Lifecycle: LifecycleLocked, SBMVersion: "1.2", AppVersion: "3.4", SecurityCounter: 9, LastError: CodeBootHash, LastErrorDetail: "slot 0", StagingSize: 1 << 20}, new(DeviceInfo)},
	}
	for _, tt := range tests {
		b := tt.in.AppendCBOR(nil)
		if err := tt.out.DecodeCBOR(b); err != nil {
			t.Fatalf("%T: decode: %v (%x)", tt.in, err, b)
		}
		if !reflect.DeepEqual(tt.in, tt.out) {
			t.Fatalf("%T: round trip: got %+v, want %+v", tt.in, tt.out, tt.in)
		}
		// Every strict prefix is rejected.
		for i := 0; i < len(b); i++ {
			if err := tt.out.DecodeCBOR(b[:i]); err == nil {
				t.Fatalf("%T: prefix of %d bytes accepted", tt.in, i)
			}
		}
	}
}

func TestDetailTruncated(t *testing.T) {
	long := strings.Repeat("é", MaxDetail) // 2 bytes each
	r := Result{Code: CodeFormat, Detail: long}
	var got Result
	if err := got.DecodeCBOR(r.AppendCBOR(nil)); err != nil {
		t.Fatal(err)
	}
	if len(got.Detail) > MaxDetail || !strings.HasPrefix(long, got.Detail) || len(got.Detail) < MaxDetail-1 {
		t.Fatalf("detail of %d bytes", len(got.Detail))
	}
	// A longer detail on the wire is rejected.
	b := cbor.AppendMapHeader(nil, 2)
	b = cbor.AppendText(cbor.AppendUint(cbor.AppendUint(cbor.AppendUint(b, 1), 7), 2), strings.Repeat("x", MaxDetail+1))
	if err := got.DecodeCBOR(b); err == nil {
		t.Fatal("detail over MaxDetail accepted")
	}
}

func TestMessageRejects(t *testing.T) {
	tests := []struct {
		name string
		msg  codec
		hex  string
		want error // nil: any error
	}{
		{"empty body", new(Begin), "", cbor.ErrTruncated},
		{"not a map", new(Begin), "8101", cbor.ErrType},
		{"missing field", new(Begin), "a0", errBodyMissing},
		{"zero size", new(Begin), "a10100", errBodyValue},
		{"unknown key", new(Begin), "a201010201", errBodyUnknown},
		{"big unknown key", new(Begin), "a20101182001", errBodyUnknown},
		{"text key", new(Begin), "a1616101", errBodyKey},
		{"duplicate key", new(Begin), "a201010102", cbor.ErrDuplicateKey},
		{"trailing bytes", new(Begin), "a1010100", cbor.ErrTrailing},
		{"size over 32 bits", new(Begin), "a1011b0000000100000000", cbor.ErrRange},
		{"non-preferred", new(Begin), "a1011801", cbor.ErrNotPreferred},
		{"indefinite map", new(Begin), "bf0101ff", nil},
		{"float", new(Begin), "a101f93c00", nil},
		{"empty data", new(Data), "a201000240", errBodyValue},
		{"data too large", new(Data), "a2010002591001" + strings.Repeat("00", MaxData+1), errBodyValue},
		{"data as text", new(Data), "a201000261ff", nil},
		{"hello min > max", new(Hello), "a201020201", errBodyValue},
		{"hello reply window < data", new(HelloReply), "a5010102190800030104010506", errBodyValue},
		{"cert beyond total", new(CertReply), "a3010202020343010203", errBodyValue},
		{"result code over 255", new(Result), "a1011901ff", errBodyValue},
		{"result detail not utf-8", new(Result), "a2010102 61ff", nil},
		{"status received > size", new(StatusReply), "a3010102010302", errBodyValue},
		{"status bad state", new(StatusReply), "a3010902000300", errBodyValue},
		{"empty with field", nil, "a10100", errBodyUnknown},
		{"too many entries", nil, "b1" + strings.Repeat("2000", 17), cbor.ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := hex.DecodeString(strings.ReplaceAll(tt.hex, " ", ""))
			if err != nil {
				t.Fatal(err)
			}
			if tt.msg == nil {
				err = DecodeEmpty(b)
			} else {
				err = tt.msg.DecodeCBOR(b)
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
		})
	}
}

func TestNegativeKeysIgnored(t *testing.T) {
	var b Begin
	// {-1: "ext", 1: 5, -100: [1, 2]}
	if err := b.DecodeCBOR(mustHex(t, "a32063657874010538638201 02")); err != nil || b.Size != 5 {
		t.Fatalf("Begin = %+v, %v", b, err)
	}
	if err := DecodeEmpty(mustHex(t, "a120f6")); err != nil {
		t.Fatalf("empty body with extension: %v", err)
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
