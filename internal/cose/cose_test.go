package cose

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/sbm-project/sbm/internal/cbor"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// RFC 9052 Appendix C.2.1 (also cose-wg/Examples sign1-tests/sign-pass-01):
// a COSE_Sign1 by the P-256 key "11" of Appendix C.7.1.
const (
	rfcSign1 = "d28443a10126a10442313154546869732069732074686520636f6e74656e742e" +
		"58408eb33e4ca31d1c465ab05aac34cc6b23d58fef5c083106c4d25a91aef0b0117e" +
		"2af9a291aa32e14ab834dc56ed2a223444547e01f11d3b0916e5a4c345cacb36"
	rfcToBeSigned = "846a5369676e61747572653143a101264054546869732069732074686520636f6e74656e742e"
	rfcKey11      = "04" +
		"bac5b11cad8f99f9c72b05cf4b9e26d244dc189f745228255a219a86d6a09eff" +
		"20138bf82dc1b6d562be0fa54ab7804a3a64b6d72ccfed6b6fb6ed28bbfc117e"
)

func TestRFC9052Sign1(t *testing.T) {
	msg := unhex(t, rfcSign1)
	s, err := DecodeSign1(msg)
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(s.Protected) != "a10126" || string(s.Payload) != "This is the content." {
		t.Fatalf("decoded %+v", s)
	}
	if got := hex.EncodeToString(AppendSigStructure(nil, s.Protected, s.Payload)); got != rfcToBeSigned {
		t.Errorf("Sig_structure = %s\nwant %s", got, rfcToBeSigned)
	}
	if err := s.Verify(AlgES256, unhex(t, rfcKey11)); err != nil {
		t.Errorf("RFC signature: %v", err)
	}
	kid, err := s.UnprotectedBytes(LabelKID)
	if err != nil || string(kid) != "11" {
		t.Errorf("kid = %q, %v", kid, err)
	}
	if _, err := s.UnprotectedBytes(-65537); !errors.Is(err, ErrNotFound) {
		t.Errorf("absent label: %v", err)
	}
	// Re-encoding the decoded parts reproduces the message.
	if got := AppendSign1(nil, s.Protected, s.Unprotected, s.Payload, s.Signature); !bytes.Equal(got, msg) {
		t.Errorf("AppendSign1 = %x", got)
	}
	// The RFC header has only alg, which the package profile rejects.
	if _, err := ParseProtected(s.Protected); !errors.Is(err, ErrHeader) {
		t.Errorf("ParseProtected(RFC header) = %v", err)
	}
	// Any flipped bit in the signed parts breaks the signature.
	for _, i := range []int{5, 12, 40, 60, 97} {
		bad := bytes.Clone(msg)
		bad[i] ^= 1
		s, err := DecodeSign1(bad)
		if err != nil {
			continue
		}
		if err := s.Verify(AlgES256, unhex(t, rfcKey11)); !errors.Is(err, ErrSignature) {
			t.Errorf("flip at %d: %v", i, err)
		}
	}
}

func TestDecodeSign1Rejects(t *testing.T) {
	good := unhex(t, rfcSign1)
	tests := []struct {
		name string
		msg  []byte
	}{
		{"untagged", good[1:]},
		{"wrong tag", append([]byte{0xd1}, good[1:]...)},
		{"trailing byte", append(bytes.Clone(good), 0)},
		{"truncated", good[:len(good)-1]},
		{"array of 3", unhex(t, "d28343a10126a040")},
		{"array of 5", unhex(t, "d28543a10126a0404040")},
		{"detached payload", unhex(t, "d28443a10126a0f640")},
		{"protected not bstr", unhex(t, "d284a10126a04040")},
		{"unprotected not map", unhex(t, "d28443a1012680404040")},
		{"duplicate unprotected label", unhex(t, "d28443a10126a2044131044132404040")},
		{"float label", unhex(t, "d28443a10126a1f93c0001404040")},
		{"float value", unhex(t, "d28443a10126a120f93c004040")},
		{"float value under a text label", unhex(t, "d28443a10126a16161fb3ff00000000000004040")},
		{"nested float value", unhex(t, "d28443a10126a1208201f93c004040")},
		{"undefined value", unhex(t, "d28443a10126a120f74040")},
		{"array label", unhex(t, "d28443a10126a1800140404040")},
		{"signature not bstr", unhex(t, "d28443a10126a04060")},
		{"indefinite payload", unhex(t, "d28443a10126a05f40ff40")},
	}
	for _, tt := range tests {
		if _, err := DecodeSign1(tt.msg); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
	// Unknown text and integer labels in the unprotected header are fine.
	if _, err := DecodeSign1(nil); err == nil {
		t.Error("empty input accepted")
	}
	if _, err := DecodeSign1(unhex(t, "d28443a10126a2616101200240"+"40")); err != nil {
		t.Errorf("text label: %v", err)
	}
}

func TestParseProtected(t *testing.T) {
	kid := bytes.Repeat([]byte{0xab}, 32)
	good := AppendProtected(nil, AlgEdDSA, "application/vnd.sbm.manifest+cbor", kid)
	h, err := ParseProtected(good)
	if err != nil || h.Alg != AlgEdDSA || string(h.ContentType) != "application/vnd.sbm.manifest+cbor" || !bytes.Equal(h.KID[:], kid) {
		t.Fatalf("ParseProtected = %+v, %v", h, err)
	}
	enc := func(entries ...func([]byte) []byte) []byte {
		b := cbor.AppendMapHeader(nil, uint64(len(entries)))
		for _, e := range entries {
			b = e(b)
		}
		return b
	}
	alg := func(a int64) func([]byte) []byte {
		return func(b []byte) []byte { return cbor.AppendInt(cbor.AppendUint(b, 1), a) }
	}
	ct := func(b []byte) []byte { return cbor.AppendText(cbor.AppendUint(b, 3), "x") }
	kidE := func(k []byte) func([]byte) []byte {
		return func(b []byte) []byte { return cbor.AppendBytes(cbor.AppendUint(b, 4), k) }
	}
	other := func(l int64) func([]byte) []byte {
		return func(b []byte) []byte { return cbor.AppendUint(cbor.AppendInt(b, l), 0) }
	}
	tests := []struct {
		name string
		p    []byte
		err  error
	}{
		{"order independent", enc(kidE(kid), ct, alg(AlgES256)), nil},
		{"alg RS256", enc(alg(-257), ct, kidE(kid)), ErrAlg},
		{"alg ES384", enc(alg(-35), ct, kidE(kid)), ErrAlg},
		{"kid 31 bytes", enc(alg(-7), ct, kidE(kid[:31])), ErrHeader},
		{"kid 33 bytes", enc(alg(-7), ct, kidE(append(kid, 0))), ErrHeader},
		{"missing kid", enc(alg(-7), ct), ErrHeader},
		{"duplicate alg", enc(alg(-7), alg(-7), ct), ErrHeader},
		{"crit", enc(alg(-7), ct, kidE(kid), other(2)), ErrHeader},
		{"extra label instead of kid", enc(alg(-7), ct, other(2)), ErrHeader},
		{"negative label", enc(alg(-7), ct, other(-1)), ErrHeader},
		{"content type as uint", enc(alg(-7), other(3), kidE(kid)), ErrHeader},
		{"empty", nil, ErrHeader},
		{"trailing", append(bytes.Clone(good), 0), ErrHeader},
	}
	for _, tt := range tests {
		_, err := ParseProtected(tt.p)
		if tt.err == nil && err != nil || tt.err != nil && !errors.Is(err, tt.err) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.err)
		}
	}
}

func TestSignVerify(t *testing.T) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecPub, err := ecKey.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	edPub, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte("payload")
	cases := []struct {
		name  string
		alg   int64
		key   crypto.Signer
		pub   []byte
		other []byte
	}{
		{"ES256", AlgES256, ecKey, ecPub, []byte(edPub)},
		{"EdDSA", AlgEdDSA, edKey, edPub, ecPub},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			kid := sha256.Sum256(c.pub)
			prot := AppendProtected(nil, c.alg, "text/plain", kid[:])
			unprot := cbor.AppendBytes(cbor.AppendInt(cbor.AppendMapHeader(nil, 1), -65537), []byte{1, 2, 3})
			msg, err := Sign(nil, rand.Reader, c.key, c.alg, prot, unprot, payload)
			if err != nil {
				t.Fatal(err)
			}
			s, err := DecodeSign1(msg)
			if err != nil {
				t.Fatal(err)
			}
			h, err := ParseProtected(s.Protected)
			if err != nil || h.Alg != c.alg || h.KID != kid {
				t.Fatalf("header %+v, %v", h, err)
			}
			if v, err := s.UnprotectedBytes(-65537); err != nil || !bytes.Equal(v, []byte{1, 2, 3}) {
				t.Errorf("unprotected = %x, %v", v, err)
			}
			if err := s.Verify(c.alg, c.pub); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if err := s.Verify(c.alg, c.other); !errors.Is(err, ErrKey) {
				t.Errorf("other suite's key: %v", err)
			}
			otherAlg := AlgEdDSA + AlgES256 - c.alg
			if err := s.Verify(otherAlg, c.pub); !errors.Is(err, ErrKey) {
				t.Errorf("wrong alg: %v", err)
			}
			if err := s.Verify(-35, c.pub); !errors.Is(err, ErrAlg) {
				t.Errorf("unsupported alg: %v", err)
			}
			short := s
			short.Signature = s.Signature[:63]
			if err := short.Verify(c.alg, c.pub); !errors.Is(err, ErrSignature) {
				t.Errorf("63-byte signature: %v", err)
			}
			long := s
			long.Signature = append(bytes.Clone(s.Signature), 0)
			if err := long.Verify(c.alg, c.pub); !errors.Is(err, ErrSignature) {
				t.Errorf("65-byte signature: %v", err)
			}
			bad := s
			bad.Payload = []byte("payloaD")
			if err := bad.Verify(c.alg, c.pub); !errors.Is(err, ErrSignature) {
				t.Errorf("changed payload: %v", err)
			}
			if _, err := Sign(nil, rand.Reader, c.key, otherAlg, prot, nil, payload); !errors.Is(err, ErrKey) {
				t.Errorf("Sign with the other alg: %v", err)
			}
		})
	}
	if _, err := Sign(nil, rand.Reader, p384, AlgES256, nil, nil, payload); !errors.Is(err, ErrKey) {
		t.Errorf("Sign ES256 with P-384: %v", err)
	}
	if _, err := Sign(nil, rand.Reader, edKey, -35, nil, nil, payload); !errors.Is(err, ErrAlg) {
		t.Errorf("Sign ES384: %v", err)
	}
	badPoint := bytes.Clone(ecPub)
	badPoint[64] ^= 1
	if err := VerifySignature(AlgES256, badPoint, nil, nil, make([]byte, 64)); !errors.Is(err, ErrKey) {
		t.Errorf("point off the curve: %v", err)
	}
}

func TestDER(t *testing.T) {
	tests := []struct{ raw, der string }{
		{"01" + zeros(31) + "02" + zeros(31), "3044" + "0220" + "01" + zeros(31) + "0220" + "02" + zeros(31)},
		{"80" + zeros(31) + zeros(31) + "05", "3026" + "022100" + "80" + zeros(31) + "020105"},
		{zeros(32) + zeros(32), "3006020100020100"},
		{zeros(31) + "7f" + "ff" + zeros(31), "3026" + "02017f" + "022100ff" + zeros(31)},
	}
	for _, tt := range tests {
		der := appendDER(nil, unhex(t, tt.raw))
		if hex.EncodeToString(der) != tt.der {
			t.Errorf("appendDER(%s) = %x, want %s", tt.raw, der, tt.der)
		}
		if len(der) > maxDERSize {
			t.Errorf("DER longer than maxDERSize")
		}
		raw, ok := rawFromDER(der)
		if !ok || hex.EncodeToString(raw[:]) != tt.raw {
			t.Errorf("rawFromDER(%s) = %x, %v", tt.der, raw, ok)
		}
	}
	for _, bad := range []string{
		"", "30", "3003020100", "3006020100020100" + "00", "3106020100020100",
		"30060201800201" + "00",                         // negative r
		"3007020200010201" + "00",                       // non-minimal r
		"3027" + "022200" + "80" + zeros(32) + "020105", // 33-byte r
		"3081060201000201" + "00",
	} {
		if _, ok := rawFromDER(unhex(t, bad)); ok {
			t.Errorf("rawFromDER accepted %s", bad)
		}
	}
}

func zeros(n int) string { return hex.EncodeToString(make([]byte, n)) }

func FuzzDecodeSign1(f *testing.F) {
	f.Add(unhex(f, rfcSign1))
	f.Add(unhex(f, "d28443a10126a2616101200240"+"40"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		s, err := DecodeSign1(msg)
		if err != nil {
			return
		}
		ParseProtected(s.Protected)
		s.UnprotectedBytes(-65537)
		s.Verify(AlgES256, unhex(t, rfcKey11))
		s.Verify(AlgEdDSA, make([]byte, 32))
		if got := AppendSign1(nil, s.Protected, s.Unprotected, s.Payload, s.Signature); !bytes.Equal(got, msg) {
			t.Fatalf("re-encoding %x gave %x", msg, got)
		}
	})
}
