package mailbox

import (
	"bytes"
	"errors"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	req := Request{Op: OpProvision, Suite: 1, RootKey: bytes.Repeat([]byte{4}, 65), VendorID: [16]byte{1}, ClassID: [16]byte{2},
		ImageKeyCert: []byte("ikc"), UpdateKeyCert: []byte("ukc"), ClassKey: bytes.Repeat([]byte{9}, 32), SecurityCounter: 5, Time: 1767225600}
	f, err := Frame(nil, MagicRequest, EncodeRequest(nil, &req))
	if err != nil {
		t.Fatal(err)
	}
	body, err := Unframe(f, MagicRequest)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeRequest(body)
	if err != nil {
		t.Fatal(err)
	}
	if got.Suite != 1 || !bytes.Equal(got.RootKey, req.RootKey) || got.VendorID != req.VendorID || got.ClassID != req.ClassID ||
		!bytes.Equal(got.ClassKey, req.ClassKey) || got.SecurityCounter != 5 || got.Time != req.Time || string(got.UpdateKeyCert) != "ukc" {
		t.Fatalf("got %+v", got)
	}
	cert := Request{Op: OpInstallCertificate, Certificate: []byte("der")}
	if got, err := DecodeRequest(EncodeRequest(nil, &cert)); err != nil || string(got.Certificate) != "der" {
		t.Fatalf("certificate request: %+v %v", got, err)
	}
	resp := Response{Op: OpProvision, Code: 0, DeviceID: []byte{1, 2}, CSR: []byte("csr"), KeyAgreement: []byte("ka")}
	if got, err := DecodeResponse(EncodeResponse(nil, &resp)); err != nil || string(got.CSR) != "csr" || got.Detail != "" {
		t.Fatalf("response: %+v %v", got, err)
	}
}

func TestRejects(t *testing.T) {
	f, _ := Frame(nil, MagicRequest, EncodeRequest(nil, &Request{Op: OpInstallCertificate, Certificate: []byte("x")}))
	f[len(f)-1] ^= 1
	if _, err := Unframe(f, MagicRequest); !errors.Is(err, ErrMalformed) {
		t.Errorf("bad CRC: %v", err)
	}
	if _, err := Unframe(f, MagicResponse); !errors.Is(err, ErrNoFrame) {
		t.Errorf("wrong magic: %v", err)
	}
	if _, err := Frame(nil, MagicRequest, make([]byte, MaxBody+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized: %v", err)
	}
	for _, b := range [][]byte{
		{0xa1, 0x01, 0x01},                   // provision without fields
		{0xa2, 0x01, 0x02, 0x03, 0x01},       // certificate op with a suite
		{0xa1, 0x01, 0x07},                   // unknown op
		{0xa2, 0x01, 0x02, 0x01, 0x02},       // duplicate key
		{0xa2, 0x01, 0x02, 0x02, 0x41, 0x00}, // ok shape but trailing byte
	} {
		if _, err := DecodeRequest(b); err == nil && len(b) != 6 {
			t.Errorf("DecodeRequest(%x) accepted", b)
		}
	}
	if _, err := DecodeRequest([]byte{0xa2, 0x01, 0x02, 0x02, 0x41, 0x00, 0x00}); err == nil {
		t.Error("trailing data accepted")
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(EncodeRequest(nil, &Request{Op: OpInstallCertificate, Certificate: []byte("x")}))
	f.Add(EncodeResponse(nil, &Response{Op: 1, DeviceID: []byte{1}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		DecodeRequest(b)
		DecodeResponse(b)
		Unframe(b, MagicRequest)
	})
}

// TestCAChain checks the optional CA chain (key 12) of OpInstallCertificate:
// it round-trips, is optional, and is refused in OpProvision.
func TestCAChain(t *testing.T) {
	req := Request{Op: OpInstallCertificate, Certificate: []byte("der"), CAChain: []byte{0, 2, 'c', 'a'}}
	got, err := DecodeRequest(EncodeRequest(nil, &req))
	if err != nil || !bytes.Equal(got.CAChain, req.CAChain) || string(got.Certificate) != "der" {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	if got, err := DecodeRequest(EncodeRequest(nil, &Request{Op: OpInstallCertificate, Certificate: []byte("d")})); err != nil || got.CAChain != nil {
		t.Fatalf("without chain: %+v %v", got, err)
	}
	prov := Request{Op: OpProvision, Suite: 1, RootKey: []byte{1}, ImageKeyCert: []byte("i"), UpdateKeyCert: []byte("u")}
	b := EncodeRequest(nil, &prov)
	b[0]++ // one more map entry: key 12
	b = append(b, 0x0c, 0x41, 0x00)
	if _, err := DecodeRequest(b); err == nil {
		t.Fatal("CA chain accepted in OpProvision")
	}
	b[0]--
	if _, err := DecodeRequest(b[:len(b)-3]); err != nil {
		t.Fatalf("control: %v", err)
	}
}
