package cose

import (
	"errors"
	"testing"
)

func TestDecodeBare(t *testing.T) {
	kid := make([]byte, KIDSize)
	kid[0] = 7
	prot := AppendProtected(nil, AlgEdDSA, "application/x-test", kid)
	sig := make([]byte, 64)
	good := AppendSign1(nil, prot, []byte{0xa0}, []byte("payload"), sig)
	if _, h, err := DecodeBare(good, len(good), "application/x-test"); err != nil || h.KID[0] != 7 {
		t.Fatalf("good message: %v", err)
	}
	tests := []struct {
		name string
		msg  []byte
		max  int
		ct   string
		want error
	}{
		{"over the size", good, len(good) - 1, "application/x-test", ErrMalformed},
		{"another content type", good, len(good), "application/x-other", ErrHeader},
		{"unprotected header not empty", AppendSign1(nil, prot, []byte{0xa1, 0x04, 0x41, 0x00}, []byte("payload"), sig), 1024, "application/x-test", ErrMalformed},
		{"truncated", good[:len(good)-1], 1024, "application/x-test", ErrMalformed},
	}
	for _, tt := range tests {
		if _, _, err := DecodeBare(tt.msg, tt.max, tt.ct); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
}
