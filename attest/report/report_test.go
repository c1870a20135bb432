package report

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
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sbm-project/sbm/internal/cose"
)

var update = flag.Bool("update", false, "rewrite the test vectors in testdata/report")

// vectorDir holds the report vectors (docs/spec/report.md §5).
var vectorDir = filepath.Join("..", "..", "testdata", "report")

// testKeys returns the vectors' keys: P-256 scalar and Ed25519 seed both
// SHA-256("report test key").
func testKeys(t testing.TB) (*ecdsa.PrivateKey, ed25519.PrivateKey) {
	seed := sha256.Sum256([]byte("report test key"))
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

// sample is the report of the vectors: device 16 × d1, epoch 7 report 2,
// the second boot since power-on, an installed update of manifest
// SHA-256("manifest"), application 2.0.0.
func sample() *Report {
	md := sha256.Sum256([]byte("manifest"))
	return &Report{
		DeviceID: bytes.Repeat([]byte{0xd1}, 16), Sequence: 7<<32 | 2, Boots: 2, Updated: true,
		HasResult: true, Result: 0, Detail: "installed 2.0.0",
		HasPackage: true, Package: md,
		HasApp: true, App: App{ManifestDigest: md, Measurement: sha256.Sum256([]byte("app")), Version: "2.0.0", SecurityCounter: 7},
		Nonce: []byte("0123456789abcdef"),
	}
}

// refused is a report of a refused update (code 14, downgrade) with no
// nonce.
func refused() *Report {
	r := sample()
	r.Updated, r.Result, r.Detail = false, 14, "security counter below the device's"
	r.Package = sha256.Sum256([]byte("old manifest"))
	r.Nonce = nil
	return r
}

func TestRoundTrip(t *testing.T) {
	ek, edk := testKeys(t)
	for _, tc := range []struct {
		name   string
		signer crypto.Signer
		alg    int64
	}{{"es256", ek, cose.AlgES256}, {"eddsa", edk, cose.AlgEdDSA}} {
		for _, r := range []*Report{sample(), refused(), {DeviceID: []byte{1}}} {
			b, err := Append([]byte{0xee}, r, tc.signer, tc.alg)
			if err != nil || b[0] != 0xee {
				t.Fatalf("%s: %v", tc.name, err)
			}
			got, err := Verify(b[1:], tc.alg, raw(t, tc.signer))
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if got.Sequence != r.Sequence || !bytes.Equal(got.DeviceID, r.DeviceID) || got.Boots != r.Boots ||
				got.Updated != r.Updated || got.HasResult != r.HasResult || got.Result != r.Result || got.Detail != r.Detail ||
				got.HasPackage != r.HasPackage || got.Package != r.Package || got.HasApp != r.HasApp || got.App != r.App ||
				!bytes.Equal(got.Nonce, r.Nonce) {
				t.Fatalf("%s: got %+v, want %+v", tc.name, got, r)
			}
			if len(b)-1 > MaxReportSize {
				t.Fatalf("%d-byte report", len(b)-1)
			}
		}
	}
}

// TestLargest: the largest facts the format allows fit its bounds.
func TestLargest(t *testing.T) {
	ek, _ := testKeys(t)
	r := sample()
	r.DeviceID = make([]byte, MaxDeviceIDSize)
	r.Sequence, r.Boots, r.Result = ^uint64(0), ^uint32(0), 255
	r.Detail = strings.Repeat("d", MaxDetailSize)
	r.App.Version = strings.Repeat("v", MaxVersionSize)
	r.App.SecurityCounter = ^uint32(0)
	r.Nonce = make([]byte, MaxNonceSize)
	b, err := Append(nil, r, ek, cose.AlgES256)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(b, cose.AlgES256, raw(t, ek)); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyRejects(t *testing.T) {
	ek, edk := testKeys(t)
	good, err := Append(nil, sample(), ek, cose.AlgES256)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := ecdsa.ParseRawPrivateKey(elliptic.P256(), bytes.Repeat([]byte{3}, 32))
	for i := range good {
		bad := bytes.Clone(good)
		bad[i] ^= 0x04
		if _, err := Verify(bad, cose.AlgES256, raw(t, ek)); err == nil {
			t.Fatalf("bit flipped at byte %d verifies", i)
		}
	}
	if _, err := Verify(good, cose.AlgES256, raw(t, other)); !errors.Is(err, ErrHeader) {
		t.Errorf("another key: %v", err)
	}
	if _, err := Verify(good, cose.AlgEdDSA, raw(t, edk)); !errors.Is(err, ErrHeader) {
		t.Errorf("another algorithm: %v", err)
	}
	if _, err := Verify(good[:len(good)-1], cose.AlgES256, raw(t, ek)); !errors.Is(err, ErrMalformed) {
		t.Errorf("truncated: %v", err)
	}
	// The same facts under the attestation token's content type (what a
	// confused signer would produce) are not a report.
	payload, _ := appendFacts(nil, sample())
	kid := sha256.Sum256(raw(t, ek))
	tokenLike, err := cose.Sign(nil, nil, ek, cose.AlgES256,
		cose.AppendProtected(nil, cose.AlgES256, "application/vnd.sbm.eat+cbor", kid[:]), nil, payload)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(tokenLike, cose.AlgES256, raw(t, ek)); !errors.Is(err, ErrMalformed) {
		t.Errorf("token content type: %v", err)
	}
	// A high-S ES256 signature is refused (package.md §2).
	s1, _ := cose.DecodeSign1(good)
	highS := highS(t, s1.Signature)
	if _, err := Verify(cose.AppendSign1(nil, s1.Protected, nil, s1.Payload, highS), cose.AlgES256, raw(t, ek)); err == nil {
		t.Error("high-S signature accepted")
	}
}

// highS returns the other valid encoding r ‖ n−s of a low-S signature.
func highS(t *testing.T, sig []byte) []byte {
	n := elliptic.P256().Params().N
	s := new(big.Int).SetBytes(sig[32:])
	s.Sub(n, s)
	out := bytes.Clone(sig)
	s.FillBytes(out[32:])
	if cose.IsLowS(out) {
		t.Fatal("not high-S")
	}
	return out
}

func TestAppendRejects(t *testing.T) {
	ek, _ := testKeys(t)
	for name, mod := range map[string]func(*Report){
		"no device id":      func(r *Report) { r.DeviceID = nil },
		"long device id":    func(r *Report) { r.DeviceID = make([]byte, 33) },
		"short nonce":       func(r *Report) { r.Nonce = make([]byte, 7) },
		"long nonce":        func(r *Report) { r.Nonce = make([]byte, 65) },
		"long detail":       func(r *Report) { r.Detail = strings.Repeat("d", 65) },
		"detail, no result": func(r *Report) { r.HasResult = false },
		"bad utf-8":         func(r *Report) { r.Detail = "\xff" },
		"empty version":     func(r *Report) { r.App.Version = "" },
		"long version":      func(r *Report) { r.App.Version = strings.Repeat("v", 65) },
	} {
		r := sample()
		mod(r)
		if _, err := Append(nil, r, ek, cose.AlgES256); !errors.Is(err, ErrFields) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := Append(nil, sample(), ek, cose.AlgEdDSA); err == nil {
		t.Error("P-256 key with EdDSA accepted")
	}
}

// TestDecodeRejects feeds fact maps that break the format.
func TestDecodeRejects(t *testing.T) {
	good, err := appendFacts(nil, sample())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decodeFacts(good); err != nil {
		t.Fatal(err)
	}
	mutate := func(old, new string) []byte {
		o, _ := hex.DecodeString(old)
		n, _ := hex.DecodeString(new)
		if !bytes.Contains(good, o) {
			t.Fatalf("%s not in the facts %x", old, good)
		}
		return bytes.Replace(good, o, n, 1)
	}
	for name, b := range map[string][]byte{
		"empty":             nil,
		"not a map":         {0x80},
		"unknown key":       mutate("0950", "0a50"),
		"duplicate key":     mutate("0302", "0202"),
		"text key":          mutate("0950", "614150"),
		"updated not bool":  mutate("04f5", "0401"),
		"short package":     mutate("075820", "07581f"),
		"app key unknown":   mutate("a4015820", "a4055820"),
		"app short":         mutate("08a4", "08a3"),
		"result too large":  mutate("0500", "051901ff"),
		"sequence negative": mutate("021b", "023b"),
		"trailing":          append(bytes.Clone(good), 0),
		"truncated":         good[:len(good)-1],
		"indefinite length": {0xbf, 0xff},
		"float":             mutate("0302", "03f94000"),
	} {
		if _, err := decodeFacts(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Result without detail, and detail without result.
	r := sample()
	noDetail, _ := appendFacts(nil, r)
	noDetail = bytes.Replace(noDetail, append([]byte{0x06, 0x6f}, "installed 2.0.0"...), nil, 1)
	noDetail[0]--
	if _, err := decodeFacts(noDetail); err == nil {
		t.Error("result without detail accepted")
	}
	// Required keys: a report of device 1 with nothing else decodes; one
	// without the sequence does not.
	min, _ := appendFacts(nil, &Report{DeviceID: []byte{1}})
	if _, err := decodeFacts(min); err != nil {
		t.Fatal(err)
	}
	noSeq := bytes.Replace(min, []byte{0x02, 0x00}, nil, 1)
	noSeq[0]--
	if _, err := decodeFacts(noSeq); err == nil {
		t.Error("report without a sequence accepted")
	}
	// Negative keys are private and ignored.
	priv := append([]byte{good[0] + 1, 0x20, 0x01}, good[1:]...)
	if _, err := decodeFacts(priv); err != nil {
		t.Errorf("negative key: %v", err)
	}
}

// vector is one file of testdata/report.
type vector struct {
	file   string
	signer crypto.Signer
	alg    int64
	rep    []byte
}

func vectors(t *testing.T) []vector {
	ek, edk := testKeys(t)
	var out []vector
	for _, v := range []struct {
		file   string
		signer crypto.Signer
		alg    int64
		r      *Report
	}{
		{"report-es256.hex", ek, cose.AlgES256, sample()},
		{"report-eddsa.hex", edk, cose.AlgEdDSA, sample()},
		{"report-es256-refused.hex", ek, cose.AlgES256, refused()},
	} {
		b, err := Append(nil, v.r, v.signer, v.alg)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, vector{v.file, v.signer, v.alg, b})
	}
	return out
}

// TestVectors checks the reports of docs/spec/report.md: fixed keys and
// facts give these exact bytes (ECDSA signs deterministically with a nil
// random source). go test -update rewrites them.
func TestVectors(t *testing.T) {
	for _, v := range vectors(t) {
		path := filepath.Join(vectorDir, v.file)
		text := "public key: " + hex.EncodeToString(raw(t, v.signer)) + "\nreport: " + hex.EncodeToString(v.rep) + "\n"
		if *update {
			if err := os.MkdirAll(vectorDir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(want) != text {
			t.Errorf("%s: report differs from the vector:\n%s", v.file, text)
		}
		pub, rep := parseVector(t, want)
		if _, err := Verify(rep, v.alg, pub); err != nil {
			t.Errorf("%s: vector does not verify: %v", v.file, err)
		}
	}
}

// TestNegativeVectors: each file is a vector report with one defect that
// must not verify. go test -update rewrites them.
func TestNegativeVectors(t *testing.T) {
	good := vectors(t)[0]
	unprot := bytes.Clone(good.rep)
	i := 4 + int(unprot[3]) // tag, array, protected bstr (0x58 len)
	if unprot[i] != 0xa0 {
		t.Fatal("unexpected report prefix")
	}
	unprot = append(append(bytes.Clone(unprot[:i]), 0xa1, 0x04, 0x41, 0x00), unprot[i+1:]...)
	flipped := bytes.Clone(good.rep)
	flipped[len(flipped)-70] ^= 1 // in the payload: the result detail
	for _, tc := range []struct {
		file string
		rep  []byte
	}{
		{"report-es256-unprotected-header.hex", unprot},
		{"report-es256-flipped.hex", flipped},
	} {
		path := filepath.Join(vectorDir, tc.file)
		text := "public key: " + hex.EncodeToString(raw(t, good.signer)) + "\nreport: " + hex.EncodeToString(tc.rep) + "\n"
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
			t.Errorf("%s differs:\n%s", tc.file, text)
		}
		pub, rep := parseVector(t, want)
		if _, err := Verify(rep, cose.AlgES256, pub); err == nil {
			t.Errorf("%s verifies", tc.file)
		}
	}
}

func parseVector(t *testing.T, b []byte) (pub, rep []byte) {
	for _, l := range strings.Split(string(b), "\n") {
		if h, ok := strings.CutPrefix(l, "public key: "); ok {
			pub, _ = hex.DecodeString(h)
		}
		if h, ok := strings.CutPrefix(l, "report: "); ok {
			rep, _ = hex.DecodeString(h)
		}
	}
	if pub == nil || rep == nil {
		t.Fatal("malformed vector file")
	}
	return pub, rep
}

// FuzzDecode: any input decodes or fails cleanly, never panics, and what
// decodes re-encodes to facts that decode to the same report.
func FuzzDecode(f *testing.F) {
	ek, _ := testKeys(f)
	for _, r := range []*Report{sample(), refused(), {DeviceID: []byte{1}}} {
		b, err := Append(nil, r, ek, cose.AlgES256)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		p, _ := appendFacts(nil, r)
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := Decode(b); err == nil {
			check(t, r)
		}
		if r, err := decodeFacts(b); err == nil {
			check(t, r)
		}
		Verify(b, cose.AlgES256, raw(t, ek))
	})
}

// check re-encodes a decoded report and decodes it again.
func check(t *testing.T, r *Report) {
	p, err := appendFacts(nil, r)
	if err != nil {
		t.Fatalf("decoded report does not encode: %v (%+v)", err, r)
	}
	r2, err := decodeFacts(p)
	if err != nil {
		t.Fatalf("re-encoded report does not decode: %v", err)
	}
	if r2.Sequence != r.Sequence || r2.App != r.App || r2.Detail != r.Detail || r2.Package != r.Package ||
		!bytes.Equal(r2.DeviceID, r.DeviceID) || !bytes.Equal(r2.Nonce, r.Nonce) {
		t.Fatalf("round trip changed the report: %+v -> %+v", r, r2)
	}
}
