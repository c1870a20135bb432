package attest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sbm-project/sbm/internal/cose"
)

var update = flag.Bool("update", false, "rewrite the test vectors in testdata")

// testKeys returns fixed P-256 and Ed25519 keys.
func testKeys(t testing.TB) (*ecdsa.PrivateKey, ed25519.PrivateKey) {
	seed := sha256.Sum256([]byte("attest test key"))
	ek, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), seed[:])
	if err != nil {
		t.Fatal(err)
	}
	return ek, ed25519.NewKeyFromSeed(seed[:])
}

func raw(t testing.TB, s crypto.Signer) []byte {
	b, err := cose.RawPublicKey(s.Public())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sampleClaims are the claims of the test vectors.
func sampleClaims() *Claims {
	return &Claims{
		Nonce:     []byte("0123456789abcdef"),
		DeviceID:  bytes.Repeat([]byte{0xd1}, 16),
		Lifecycle: LifecycleLocked,
		BootSeed:  bytes.Repeat([]byte{0xb5}, 32),
		SBM:       Component{Type: TypeSBM, Measurement: sha256.Sum256([]byte("sbm")), Version: "0.1.0"},
		App: Component{Type: TypeApp, Measurement: sha256.Sum256([]byte("app")), Version: "2.0.0",
			SignerID: sha256.Sum256([]byte("signer")), HasSigner: true, SecurityCounter: 7, HasCounter: true},
		HasApp: true,
	}
}

func TestRoundTrip(t *testing.T) {
	ek, edk := testKeys(t)
	for _, tc := range []struct {
		name   string
		signer crypto.Signer
		alg    int64
	}{{"es256", ek, cose.AlgES256}, {"eddsa", edk, cose.AlgEdDSA}} {
		t.Run(tc.name, func(t *testing.T) {
			want := sampleClaims()
			tok, err := Append([]byte("prefix"), want, tc.signer, tc.alg)
			if err != nil {
				t.Fatal(err)
			}
			if string(tok[:6]) != "prefix" {
				t.Fatal("Append did not append")
			}
			tok = tok[6:]
			got, err := Verify(tok, tc.alg, raw(t, tc.signer))
			if err != nil {
				t.Fatal(err)
			}
			if !equalClaims(got, want) {
				t.Fatalf("claims differ:\n got %+v\nwant %+v", got, want)
			}
			kid, err := KeyID(tok)
			if err != nil || kid != sha256.Sum256(raw(t, tc.signer)) {
				t.Fatalf("KeyID %x %v", kid, err)
			}
			if d, err := Decode(tok); err != nil || !equalClaims(d, want) {
				t.Fatalf("Decode: %v", err)
			}
			// Minimal claims: no boot seed, no application, no version.
			min := &Claims{Nonce: make([]byte, 8), DeviceID: []byte{1}, SBM: Component{Type: TypeSBM}}
			tok2, err := Append(nil, min, tc.signer, tc.alg)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := Verify(tok2, tc.alg, raw(t, tc.signer)); err != nil || !equalClaims(got, min) {
				t.Fatalf("minimal: %+v %v", got, err)
			}
		})
	}
}

func equalClaims(a, b *Claims) bool {
	return bytes.Equal(a.Nonce, b.Nonce) && bytes.Equal(a.DeviceID, b.DeviceID) && a.Lifecycle == b.Lifecycle &&
		bytes.Equal(a.BootSeed, b.BootSeed) && a.SBM == b.SBM && a.HasApp == b.HasApp && (!a.HasApp || a.App == b.App)
}

// TestVerifyRejects: another key, another algorithm, and every single
// flipped bit of the token are refused.
func TestVerifyRejects(t *testing.T) {
	ek, edk := testKeys(t)
	tok, err := Append(nil, sampleClaims(), ek, cose.AlgES256)
	if err != nil {
		t.Fatal(err)
	}
	pub := raw(t, ek)
	other, _ := ecdsa.ParseRawPrivateKey(elliptic.P256(), bytes.Repeat([]byte{3}, 32))
	if _, err := Verify(tok, cose.AlgES256, raw(t, other)); !errors.Is(err, ErrHeader) {
		t.Errorf("other key: %v", err)
	}
	if _, err := Verify(tok, cose.AlgEdDSA, raw(t, edk)); !errors.Is(err, ErrHeader) {
		t.Errorf("other algorithm: %v", err)
	}
	for i := range tok {
		for bit := range 8 {
			b := bytes.Clone(tok)
			b[i] ^= 1 << bit
			if _, err := Verify(b, cose.AlgES256, pub); err == nil {
				t.Fatalf("flipped bit %d of byte %d accepted", bit, i)
			}
		}
	}
	for n := range len(tok) {
		if _, err := Verify(tok[:n], cose.AlgES256, pub); err == nil {
			t.Fatalf("truncated to %d bytes accepted", n)
		}
	}
	if _, err := Verify(append(bytes.Clone(tok), 0), cose.AlgES256, pub); err == nil {
		t.Fatal("trailing byte accepted")
	}
	// A token signed by the right key over claims signed by another: the
	// kid names the signer, so a swapped key is a header mismatch.
	tok2, _ := Append(nil, sampleClaims(), other, cose.AlgES256)
	if _, err := Verify(tok2, cose.AlgES256, pub); err == nil {
		t.Fatal("token of another key accepted")
	}
}

// TestAppendRejects: claims out of range are refused before signing.
func TestAppendRejects(t *testing.T) {
	ek, _ := testKeys(t)
	for name, mod := range map[string]func(c *Claims){
		"short nonce":     func(c *Claims) { c.Nonce = make([]byte, 7) },
		"long nonce":      func(c *Claims) { c.Nonce = make([]byte, 65) },
		"no device id":    func(c *Claims) { c.DeviceID = nil },
		"long device id":  func(c *Claims) { c.DeviceID = make([]byte, 33) },
		"lifecycle":       func(c *Claims) { c.Lifecycle = 3 },
		"short boot seed": func(c *Claims) { c.BootSeed = make([]byte, 7) },
		"long boot seed":  func(c *Claims) { c.BootSeed = make([]byte, 33) },
		"sbm type":        func(c *Claims) { c.SBM.Type = TypeApp },
		"app type":        func(c *Claims) { c.App.Type = "" },
		"long version":    func(c *Claims) { c.App.Version = strings.Repeat("v", 65) },
		"bad utf-8":       func(c *Claims) { c.SBM.Version = "\xff" },
	} {
		c := sampleClaims()
		mod(c)
		if _, err := Append(nil, c, ek, cose.AlgES256); !errors.Is(err, ErrClaims) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := Append(nil, sampleClaims(), ek, cose.AlgEdDSA); err == nil {
		t.Error("P-256 key with EdDSA accepted")
	}
}

// TestDecodeRejects feeds hand-made claim sets that break the profile.
func TestDecodeRejects(t *testing.T) {
	good, err := appendClaims(nil, sampleClaims())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decodeClaims(good); err != nil {
		t.Fatal(err)
	}
	mutate := func(old, new string) []byte {
		o, _ := hex.DecodeString(old)
		n, _ := hex.DecodeString(new)
		if !bytes.Contains(good, o) {
			t.Fatalf("%s not in claims", old)
		}
		return bytes.Replace(good, o, n, 1)
	}
	for name, b := range map[string][]byte{
		"empty":             nil,
		"not a map":         {0x80},
		"ueid type":         mutate("5101d1", "5102d1"),
		"lifecycle value":   mutate("19095b193000", "19095b193001"),
		"unknown claim":     mutate("0a50", "0b50"),
		"duplicate claim":   mutate("19010c", "190100"),
		"measurement type":  mutate("6353424d", "63534241"),
		"measurement desc":  mutate("677368612d323536", "677368612d323537"),
		"trailing":          append(bytes.Clone(good), 0),
		"truncated":         good[:len(good)-1],
		"indefinite length": {0xbf, 0xff},
	} {
		if _, err := decodeClaims(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestVectors checks the tokens of docs/spec/attestation.md: fixed keys
// and claims give these exact bytes (ECDSA signs deterministically with a
// nil random source). go test -update rewrites them.
func TestVectors(t *testing.T) {
	ek, edk := testKeys(t)
	for _, tc := range []struct {
		file   string
		signer crypto.Signer
		alg    int64
	}{{"vector-es256.hex", ek, cose.AlgES256}, {"vector-eddsa.hex", edk, cose.AlgEdDSA}} {
		tok, err := Append(nil, sampleClaims(), tc.signer, tc.alg)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("testdata", tc.file)
		text := "public key: " + hex.EncodeToString(raw(t, tc.signer)) + "\ntoken: " + hex.EncodeToString(tok) + "\n"
		if *update {
			if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(want) != text {
			t.Errorf("%s: token differs from the vector:\n%s", tc.file, text)
		}
		var wantTok []byte
		for _, l := range strings.Split(string(want), "\n") {
			if h, ok := strings.CutPrefix(l, "token: "); ok {
				wantTok, _ = hex.DecodeString(h)
			}
		}
		if _, err := Verify(wantTok, tc.alg, raw(t, tc.signer)); err != nil {
			t.Errorf("%s: vector does not verify: %v", tc.file, err)
		}
	}
}

// withUnprotected returns tok with its empty unprotected header (the 0xa0
// after the protected header) replaced by hdr. The signature still
// verifies: the unprotected header is not signed.
func withUnprotected(t testing.TB, tok, hdr []byte) []byte {
	t.Helper()
	// tag 18, array of 4, protected bstr: 0x58 len or 0x40|len.
	if len(tok) < 4 || tok[0] != 0xd2 || tok[1] != 0x84 || tok[2] != 0x58 {
		t.Fatal("unexpected token prefix")
	}
	i := 4 + int(tok[3])
	if tok[i] != 0xa0 {
		t.Fatal("unprotected header is not the empty map")
	}
	out := append(bytes.Clone(tok[:i]), hdr...)
	return append(out, tok[i+1:]...)
}

// TestNegativeVectors checks the refused tokens in testdata: each is a
// vector token with one defect and must not decode or verify. go test
// -update rewrites them from the vectors' tokens.
func TestNegativeVectors(t *testing.T) {
	ek, _ := testKeys(t)
	good, err := Append(nil, sampleClaims(), ek, cose.AlgES256)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file string
		tok  []byte
	}{
		// {4 (kid): h'00'} in the unprotected header.
		{"vector-es256-unprotected-header.hex", withUnprotected(t, good, []byte{0xa1, 0x04, 0x41, 0x00})},
	} {
		path := filepath.Join("testdata", tc.file)
		text := "public key: " + hex.EncodeToString(raw(t, ek)) + "\ntoken: " + hex.EncodeToString(tc.tok) + "\n"
		if *update {
			if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(want) != text {
			t.Errorf("%s: token differs from the vector:\n%s", tc.file, text)
		}
		if _, err := Decode(tc.tok); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Decode: %v, want ErrMalformed", tc.file, err)
		}
		if _, err := Verify(tc.tok, cose.AlgES256, raw(t, ek)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Verify: %v, want ErrMalformed", tc.file, err)
		}
	}
}

// TestUnprotectedHeader: a token whose unprotected header is not the empty
// map is refused, whatever it holds.
func TestUnprotectedHeader(t *testing.T) {
	ek, edk := testKeys(t)
	for _, tc := range []struct {
		name   string
		signer crypto.Signer
		alg    int64
		hdr    []byte
	}{
		{"kid", ek, cose.AlgES256, []byte{0xa1, 0x04, 0x41, 0x00}},
		{"alg", ek, cose.AlgES256, []byte{0xa1, 0x01, 0x26}},
		{"private label", edk, cose.AlgEdDSA, []byte{0xa1, 0x3a, 0x00, 0x01, 0x00, 0x00, 0xf6}},
		{"text label", edk, cose.AlgEdDSA, []byte{0xa1, 0x61, 0x78, 0x00}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			good, err := Append(nil, sampleClaims(), tc.signer, tc.alg)
			if err != nil {
				t.Fatal(err)
			}
			bad := withUnprotected(t, good, tc.hdr)
			if _, err := Decode(bad); !errors.Is(err, ErrMalformed) {
				t.Errorf("Decode: %v, want ErrMalformed", err)
			}
			if _, err := KeyID(bad); !errors.Is(err, ErrMalformed) {
				t.Errorf("KeyID: %v, want ErrMalformed", err)
			}
			if _, err := Verify(bad, tc.alg, raw(t, tc.signer)); !errors.Is(err, ErrMalformed) {
				t.Errorf("Verify: %v, want ErrMalformed", err)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	ek, edk := testKeys(f)
	for i, s := range []crypto.Signer{ek, edk} {
		alg := []int64{cose.AlgES256, cose.AlgEdDSA}[i]
		tok, err := Append(nil, sampleClaims(), s, alg)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(tok)
	}
	claims, _ := appendClaims(nil, sampleClaims())
	f.Add(claims)
	pub := raw(f, ek)
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Decode(b)
		if err == nil {
			// Whatever decodes re-encodes within the limits.
			if _, err := appendClaims(nil, c); err != nil {
				t.Fatalf("decoded claims do not re-encode: %v", err)
			}
		}
		Verify(b, cose.AlgES256, pub)
		decodeClaims(b)
	})
}
