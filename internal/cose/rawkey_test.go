package cose

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"testing"
)

func TestRawPublicKey(t *testing.T) {
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	epub, _, _ := ed25519.GenerateKey(rand.Reader)
	x, _ := ecdh.X25519().GenerateKey(rand.Reader)
	for name, tc := range map[string]struct {
		pub  any
		size int // 0: ErrKey
	}{
		"p256":    {&ek.PublicKey, 65},
		"ed25519": {epub, 32},
		"p384":    {&p384.PublicKey, 97}, // a curve crypto/ecdh knows; Sign refuses it
		"x25519":  {x.PublicKey(), 0},
		"nil":     {nil, 0},
	} {
		raw, err := RawPublicKey(tc.pub)
		if tc.size == 0 {
			if !errors.Is(err, ErrKey) {
				t.Errorf("%s: %v, want ErrKey", name, err)
			}
			continue
		}
		if err != nil || len(raw) != tc.size {
			t.Errorf("%s: %d bytes, %v; want %d", name, len(raw), err, tc.size)
		}
	}
}
