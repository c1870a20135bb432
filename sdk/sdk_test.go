//go:build !wasip1

package sdk

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// TestNotOnDevice: on the host every service fails with ErrNotOnDevice.
func TestNotOnDevice(t *testing.T) {
	_, err1 := BootInfo()
	_, err2 := Attest(make([]byte, 16))
	_, err3 := Staging.WriteAt([]byte{1}, 0)
	_, err4 := Fetch("http://127.0.0.1/", io.Discard)
	_, err5 := TLSSign(make([]byte, 32))
	_, err6 := Report(nil)
	for i, err := range []error{err1, err2, err3, err4, RequestUpdate(), VerifyChain([][]byte{{1}}), err5, err6} {
		if !errors.Is(err, ErrNotOnDevice) {
			t.Errorf("call %d: %v, want ErrNotOnDevice", i, err)
		}
	}
	if _, err := TLSSign(make([]byte, 33)); !errors.Is(err, ErrBadArgument) {
		t.Errorf("33-byte transcript hash: %v", err)
	}
	var e *Error
	if !errors.As(err2, &e) || e.Op != "attest" || e.Error() != "sdk: attest: not running on a device (code 199)" {
		t.Errorf("attest error %v", err2)
	}
}

// TestChainEncoding: AppendChain and ParseChain are inverse; malformed
// encodings are refused.
func TestChainEncoding(t *testing.T) {
	certs := [][]byte{[]byte("leaf"), bytes.Repeat([]byte{7}, 300)}
	b, err := AppendChain(nil, certs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseChain(b)
	if err != nil || len(got) != 2 || !bytes.Equal(got[0], certs[0]) || !bytes.Equal(got[1], certs[1]) {
		t.Fatalf("round trip: %q, %v", got, err)
	}
	for _, bad := range [][]byte{{0}, {0, 5, 1}, {0, 0}} {
		if _, err := ParseChain(bad); err == nil {
			t.Errorf("%x parsed", bad)
		}
	}
	if _, err := AppendChain(nil, [][]byte{{}}); !errors.Is(err, ErrBadArgument) {
		t.Errorf("empty certificate: %v", err)
	}
}
