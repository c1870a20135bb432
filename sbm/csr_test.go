package sbm

import (
	"encoding/base64"
	"testing"
)

// TestAppendBase64URL compares the CSR's base64url encoder with
// encoding/base64's RawURLEncoding for every length up to 70 bytes.
func TestAppendBase64URL(t *testing.T) {
	src := make([]byte, 70)
	for i := range src {
		src[i] = byte(i*37 + 251)
	}
	for n := 0; n <= len(src); n++ {
		got := string(appendBase64URL([]byte("x:"), src[:n]))
		if want := "x:" + base64.RawURLEncoding.EncodeToString(src[:n]); got != want {
			t.Fatalf("%d bytes: %q, want %q", n, got, want)
		}
	}
}
