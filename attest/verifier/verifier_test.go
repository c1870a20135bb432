package verifier

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sbm-project/sbm/attest"
	"github.com/sbm-project/sbm/internal/cose"
	"github.com/sbm-project/sbm/trust"
)

var (
	testNonce = []byte("0123456789abcdef")
	testSBM   = sha256.Sum256([]byte("sbm"))
	testApp   = sha256.Sum256([]byte("app"))
)

// device is a certified test device whose identity key the test holds.
type device struct {
	ctx *trust.Context
	id  []byte
	key crypto.Signer
	alg int64
}

// newDevice certifies a device in a fresh context, with a production
// record holding sbmMeasurement (hex; "" for none).
func newDevice(t *testing.T, suite trust.Suite, sbmMeasurement string) *device {
	t.Helper()
	c, err := trust.Init(filepath.Join(t.TempDir(), "ctx"), &trust.InitOptions{Suite: suite})
	if err != nil {
		t.Fatal(err)
	}
	key, err := c.Suite().GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	ka, err := c.Suite().GenerateKeyAgreementKey()
	if err != nil {
		t.Fatal(err)
	}
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		t.Fatal(err)
	}
	id := bytes.Repeat([]byte{0xd1}, 16)
	cert, err := c.IssueDeviceCertificate(csr, id, ka.PublicKey(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.SaveDevice(cert, trust.DeviceRecord{Board: "small", Locked: true, SBMMeasurement: sbmMeasurement, Provisioned: time.Now()}); err != nil {
		t.Fatal(err)
	}
	alg := cose.AlgES256
	if _, ok := key.Public().(ed25519.PublicKey); ok {
		alg = cose.AlgEdDSA
	}
	return &device{ctx: c, id: id, key: key, alg: alg}
}

// token signs claims as the device's SBM would.
func (d *device) token(t *testing.T, lifecycle uint8, sbm [32]byte) []byte {
	t.Helper()
	tok, err := attest.Append(nil, &attest.Claims{
		Nonce: testNonce, DeviceID: d.id, Lifecycle: lifecycle,
		SBM:    attest.Component{Type: attest.TypeSBM, Measurement: sbm, Version: "0.1.0"},
		App:    attest.Component{Type: attest.TypeApp, Measurement: testApp, Version: "1.0.0"},
		HasApp: true,
	}, d.key, d.alg)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestCheckPolicy: by default only a locked device with the SBM
// measurement recorded at provisioning (or the expected one) passes; an
// unlocked device and an unknown SBM are refused with a reason naming the
// flag that accepts them, and accepted only with that override.
func TestCheckPolicy(t *testing.T) {
	recorded := hex.EncodeToString(testSBM[:])
	other := sha256.Sum256([]byte("another sbm"))
	tests := []struct {
		name      string
		record    string // SBM measurement in the production record
		lifecycle uint8
		sbm       [32]byte
		opts      Options
		wantErr   error  // nil: accepted
		wantMsg   string // in the error
	}{
		{name: "locked, recorded sbm", record: recorded, lifecycle: attest.LifecycleLocked, sbm: testSBM},
		{name: "locked, expected sbm, no record", lifecycle: attest.LifecycleLocked, sbm: testSBM,
			opts: Options{SBMMeasurement: testSBM[:]}},
		{name: "provisioned", record: recorded, lifecycle: attest.LifecycleProvisioned, sbm: testSBM,
			wantErr: ErrUnlocked, wantMsg: "device d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1: device is not locked: lifecycle provisioned, its debug port is open (--allow-unlocked accepts it)"},
		{name: "blank", record: recorded, lifecycle: attest.LifecycleBlank, sbm: testSBM,
			wantErr: ErrUnlocked, wantMsg: "lifecycle blank"},
		{name: "provisioned, allowed", record: recorded, lifecycle: attest.LifecycleProvisioned, sbm: testSBM,
			opts: Options{AllowUnlocked: true}},
		{name: "no recorded sbm", lifecycle: attest.LifecycleLocked, sbm: testSBM,
			wantErr: ErrUnknownSBM, wantMsg: "device d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1: unknown sbm measurement " + recorded + ": its production record holds no sbm measurement (--sbm-measurement gives the expected one, --allow-unknown-sbm accepts any)"},
		{name: "other sbm than recorded", record: recorded, lifecycle: attest.LifecycleLocked, sbm: other,
			wantErr: ErrUnknownSBM, wantMsg: "unknown sbm measurement " + hex.EncodeToString(other[:]) + ": provisioning recorded " + recorded + " (--allow-unknown-sbm accepts it)"},
		{name: "no recorded sbm, allowed", lifecycle: attest.LifecycleLocked, sbm: testSBM,
			opts: Options{AllowUnknownSBM: true}},
		{name: "other sbm, allowed", record: recorded, lifecycle: attest.LifecycleLocked, sbm: other,
			opts: Options{AllowUnknownSBM: true}},
		{name: "other sbm than expected, allowed unknown", record: recorded, lifecycle: attest.LifecycleLocked, sbm: testSBM,
			opts:    Options{SBMMeasurement: other[:], AllowUnknownSBM: true},
			wantMsg: "differs from the expected"},
		{name: "unlocked and unknown, both allowed", lifecycle: attest.LifecycleProvisioned, sbm: other,
			opts: Options{AllowUnlocked: true, AllowUnknownSBM: true}},
		{name: "unlocked and unknown, one allowed", lifecycle: attest.LifecycleProvisioned, sbm: other,
			opts: Options{AllowUnlocked: true}, wantErr: ErrUnknownSBM},
	}
	for _, suite := range []trust.Suite{trust.SuiteP256, trust.SuiteEd25519} {
		for _, tt := range tests {
			t.Run(string(suite)+"/"+tt.name, func(t *testing.T) {
				d := newDevice(t, suite, tt.record)
				opts := tt.opts
				opts.Nonce = testNonce
				opts.AppMeasurement = testApp[:]
				res, err := Check(d.ctx, d.token(t, tt.lifecycle, tt.sbm), &opts)
				if tt.wantErr == nil && tt.wantMsg == "" {
					if err != nil {
						t.Fatalf("refused: %v", err)
					}
					if res.Lifecycle != LifecycleName(tt.lifecycle) || res.SBM.Measurement != hex.EncodeToString(tt.sbm[:]) {
						t.Fatalf("result %+v", res)
					}
					return
				}
				if err == nil {
					t.Fatal("accepted")
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Errorf("err = %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantMsg) {
					t.Errorf("error %q does not say %q", err, tt.wantMsg)
				}
			})
		}
	}
}

// TestVerifyIsStrict: Verify, the positional form, applies the strict
// policy.
func TestVerifyIsStrict(t *testing.T) {
	d := newDevice(t, trust.SuiteP256, hex.EncodeToString(testSBM[:]))
	if _, err := Verify(d.ctx, d.token(t, attest.LifecycleLocked, testSBM), testNonce, nil, testApp[:]); err != nil {
		t.Fatalf("locked device refused: %v", err)
	}
	if _, err := Verify(d.ctx, d.token(t, attest.LifecycleProvisioned, testSBM), testNonce, nil, testApp[:]); !errors.Is(err, ErrUnlocked) {
		t.Fatalf("unlocked device: %v, want ErrUnlocked", err)
	}
	if _, err := Verify(d.ctx, d.token(t, attest.LifecycleLocked, sha256.Sum256(nil)), testNonce, nil, testApp[:]); !errors.Is(err, ErrUnknownSBM) {
		t.Fatalf("unknown SBM: %v, want ErrUnknownSBM", err)
	}
}

// TestCheckRejects: the checks that no option relaxes.
func TestCheckRejects(t *testing.T) {
	d := newDevice(t, trust.SuiteP256, hex.EncodeToString(testSBM[:]))
	tok := d.token(t, attest.LifecycleLocked, testSBM)
	all := Options{Nonce: testNonce, AllowUnlocked: true, AllowUnknownSBM: true}
	for _, tt := range []struct {
		name string
		tok  []byte
		opts Options
		want string
	}{
		{"other nonce", tok, Options{Nonce: []byte("fedcba9876543210"), AllowUnlocked: true, AllowUnknownSBM: true, AppMeasurement: testApp[:]}, "nonce mismatch"},
		{"unknown application", tok, all, "no known release"},
		{"garbage", []byte("not a token"), all, "malformed token"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Check(d.ctx, tt.tok, &tt.opts); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	other := newDevice(t, trust.SuiteP256, "")
	if _, err := Check(other.ctx, tok, &all); err == nil {
		t.Fatal("token of another context's device accepted")
	}
}
