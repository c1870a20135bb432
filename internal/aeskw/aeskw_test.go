package aeskw

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rfc3394 are the test vectors of RFC 3394 §4.1–4.6.
var rfc3394 = []struct {
	name, kek, key, wrapped string
}{
	{"4.1 128-bit key, 128-bit KEK",
		"000102030405060708090A0B0C0D0E0F",
		"00112233445566778899AABBCCDDEEFF",
		"1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5"},
	{"4.2 128-bit key, 192-bit KEK",
		"000102030405060708090A0B0C0D0E0F1011121314151617",
		"00112233445566778899AABBCCDDEEFF",
		"96778B25AE6CA435F92B5B97C050AED2468AB8A17AD84E5D"},
	{"4.3 128-bit key, 256-bit KEK",
		"000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
		"00112233445566778899AABBCCDDEEFF",
		"64E8C3F9CE0F5BA263E9777905818A2A93C8191E7D6E8AE7"},
	{"4.4 192-bit key, 192-bit KEK",
		"000102030405060708090A0B0C0D0E0F1011121314151617",
		"00112233445566778899AABBCCDDEEFF0001020304050607",
		"031D33264E15D33268F24EC260743EDCE1C6C7DDEE725A936BA814915C6762D2"},
	{"4.5 192-bit key, 256-bit KEK",
		"000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
		"00112233445566778899AABBCCDDEEFF0001020304050607",
		"A8F9BC1612C68B3FF6E6F4FBE30E71E4769C8B80A32CB8958CD5D17D6B254DA1"},
	{"4.6 256-bit key, 256-bit KEK",
		"000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
		"00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F",
		"28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21"},
}

func TestRFC3394(t *testing.T) {
	for _, tt := range rfc3394 {
		t.Run(tt.name, func(t *testing.T) {
			kek, key, wrapped := unhex(t, tt.kek), unhex(t, tt.key), unhex(t, tt.wrapped)
			got, err := Wrap(kek, key)
			if err != nil || !bytes.Equal(got, wrapped) {
				t.Fatalf("Wrap = %X, %v; want %X", got, err, wrapped)
			}
			got, err = Unwrap(kek, wrapped)
			if err != nil || !bytes.Equal(got, key) {
				t.Fatalf("Unwrap = %X, %v; want %X", got, err, key)
			}
		})
	}
}

func TestUnwrapRejects(t *testing.T) {
	v := rfc3394[5]
	kek, wrapped := unhex(t, v.kek), unhex(t, v.wrapped)
	wrongKEK := bytes.Clone(kek)
	wrongKEK[0] ^= 1
	if _, err := Unwrap(wrongKEK, wrapped); !errors.Is(err, ErrIntegrity) {
		t.Errorf("wrong KEK: %v", err)
	}
	for i := range wrapped {
		c := bytes.Clone(wrapped)
		c[i] ^= 0x80
		if _, err := Unwrap(kek, c); !errors.Is(err, ErrIntegrity) {
			t.Errorf("bit flip at %d: %v", i, err)
		}
	}
	for _, n := range []int{0, 8, 16, 23, 25, 39, 41} {
		if _, err := Unwrap(kek, make([]byte, n)); !errors.Is(err, ErrInvalidLength) {
			t.Errorf("length %d: %v", n, err)
		}
	}
	if _, err := Unwrap(wrapped[:32], wrapped[:39]); !errors.Is(err, ErrInvalidLength) {
		t.Errorf("odd length: %v", err)
	}
	if _, err := Unwrap(kek[:5], wrapped); err == nil {
		t.Error("bad KEK size accepted")
	}
}

func TestWrapRejects(t *testing.T) {
	kek := make([]byte, 32)
	for _, n := range []int{0, 8, 15, 17, 33} {
		if _, err := Wrap(kek, make([]byte, n)); !errors.Is(err, ErrInvalidLength) {
			t.Errorf("length %d: %v", n, err)
		}
	}
	if _, err := Wrap(kek[:7], make([]byte, 16)); err == nil {
		t.Error("bad KEK size accepted")
	}
}

func FuzzUnwrap(f *testing.F) {
	v := rfc3394[5]
	f.Add(unhex(f, v.kek), unhex(f, v.wrapped))
	f.Add(unhex(f, rfc3394[0].kek), unhex(f, rfc3394[0].wrapped))
	f.Fuzz(func(t *testing.T, kek, ct []byte) {
		pt, err := Unwrap(kek, ct)
		if err != nil {
			return
		}
		// Anything that unwraps must wrap back to the same ciphertext.
		again, err := Wrap(kek, pt)
		if err != nil || !bytes.Equal(again, ct) {
			t.Fatalf("re-wrap = %x, %v; want %x", again, err, ct)
		}
	})
}
