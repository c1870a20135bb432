package secpkg

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.NewReplacer(" ", "", "\n", "", "\t", "").Replace(s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestKDFContext checks CBOR(KDF_Context) against the reference of spec
// §7.2: 84 24 83 F6 F6 F6 83 58 20 ‖ K ‖ F6 F6 83 19 0100 44 A101381E 4A
// 53424D2055504B207631.
func TestKDFContext(t *testing.T) {
	var kid [32]byte
	for j := range kid {
		kid[j] = byte(0xc0 + j)
	}
	want := unhex(t, "84 24 83 F6 F6 F6 83 58 20"+hex.EncodeToString(kid[:])+
		"F6 F6 83 19 0100 44 A101381E 4A 53424D2055504B207631")
	got := appendKDFContext(nil, &kid)
	if !bytes.Equal(got, want) {
		t.Errorf("KDF_Context =\n%x\nwant\n%x", got, want)
	}
	if len(got) != kdfContextSize {
		t.Errorf("kdfContextSize = %d, encoding is %d bytes", kdfContextSize, len(got))
	}
	// The KEK is HKDF-SHA-256 with an empty salt over that context.
	z := bytes.Repeat([]byte{0x5a}, 32)
	kek, err := deriveKEK(z, &kid)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := hkdf.Key(sha256.New, z, []byte{}, string(want), 32)
	if !bytes.Equal(kek, ref) {
		t.Errorf("deriveKEK = %x, want %x", kek, ref)
	}
}

// TestHKDF pins crypto/hkdf to RFC 5869 test cases A.1–A.3 (SHA-256).
func TestHKDF(t *testing.T) {
	tests := []struct{ name, ikm, salt, info, prk, okm string }{
		{"A.1",
			"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
			"000102030405060708090a0b0c",
			"f0f1f2f3f4f5f6f7f8f9",
			"077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
			"3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"},
		{"A.2",
			"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f" +
				"202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f" +
				"404142434445464748494a4b4c4d4e4f",
			"606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f" +
				"808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f" +
				"a0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
			"b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecf" +
				"d0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeef" +
				"f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
			"06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244",
			"b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c" +
				"59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71" +
				"cc30c58179ec3e87c14c01d5c1f3434f1d87"},
		{"A.3",
			"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
			"", "",
			"19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
			"8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"},
	}
	for _, tt := range tests {
		ikm, salt, info := unhex(t, tt.ikm), unhex(t, tt.salt), unhex(t, tt.info)
		prk, err := hkdf.Extract(sha256.New, ikm, salt)
		if err != nil || hex.EncodeToString(prk) != tt.prk {
			t.Errorf("%s: PRK = %x, %v", tt.name, prk, err)
		}
		okm, err := hkdf.Key(sha256.New, ikm, salt, string(info), len(tt.okm)/2)
		if err != nil || hex.EncodeToString(okm) != tt.okm {
			t.Errorf("%s: OKM = %x, %v", tt.name, okm, err)
		}
	}
}
