package sbm

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"math/big"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/sbm/mailbox"
	"github.com/sbm-project/sbm/trust"
	"github.com/sbm-project/sbm/wire"
)

func TestNoSBMInstalled(t *testing.T) {
	v := newDev(t, ctxA, 1)
	f := v.d.Flash(hal.PrivSBM)
	r, _ := f.Geometry().Region(hal.RegionSBM)
	if err := f.Erase(r.Start); err != nil {
		t.Fatal(err)
	}
	v.boot(false, false)
	if !strings.Contains(v.log.String(), "no SBM installed") || v.recovered || v.launched != nil {
		t.Fatalf("log: %s", v.log.String())
	}
	// A corrupted descriptor is refused too.
	v.installSBM()
	img := Descriptor()
	img[20] ^= 1
	f.Erase(r.Start)
	f.Program(r.Start, img[:88])
	v.log.Reset()
	v.boot(false, false)
	if !strings.Contains(v.log.String(), "no SBM installed") {
		t.Fatalf("log: %s", v.log.String())
	}
}

func TestProvisionEndToEnd(t *testing.T) {
	for _, c := range []*trust.Context{ctxA, ctxE} {
		t.Run(string(c.Suite()), func(t *testing.T) {
			v := newDev(t, c, 2)
			v.provision(true)
			st := v.state()
			if st.Lifecycle != wire.LifecycleProvisioned || !bytes.Equal(st.Certificate, v.cert.Raw) ||
				st.TimeFloor != uint64(fixedNow.Unix()) || st.SecurityCounter != 1 || st.App != nil {
				t.Fatalf("state %+v", st)
			}
			if _, err := c.VerifyDeviceCertificate(v.cert); err != nil {
				t.Fatal(err)
			}
			// The CSR: subject, key type, signature.
			resp := v.exchangeProvisionAgain(t)
			if resp.Code != uint8(wire.CodeState) {
				t.Fatalf("re-provisioning a certified device: code %d", resp.Code)
			}
			// No application: recovery, and INFO works.
			v.boot(false, false)
			if !v.recovered || v.launched != nil {
				t.Fatal("expected recovery")
			}
			var info wire.DeviceInfo
			v.session = func(tg wire.Target) {
				if err := info.DecodeCBOR(tg.Info(nil)); err != nil {
					t.Error(err)
				}
				if !bytes.Equal(tg.Certificate(), v.cert.Raw) {
					t.Error("certificate")
				}
			}
			v.boot(false, false)
			id := v.d.ID()
			if !bytes.Equal(info.ID, id[:]) || info.Lifecycle != wire.LifecycleProvisioned || info.SBMVersion != Version ||
				info.LastError != wire.CodeNoApplication || info.StagingSize != 104<<10 {
				t.Fatalf("info %+v", info)
			}
			// Locked once the debug lock is blown.
			hal.BlowLocks(v.d.Fuses(), hal.LockDebug)
			v.session = func(tg wire.Target) { info.DecodeCBOR(tg.Info(nil)) }
			v.boot(false, false)
			if info.Lifecycle != wire.LifecycleLocked || v.state().LifecycleWithLocks(v.d.Locks()) != wire.LifecycleLocked {
				t.Fatalf("lifecycle %d", info.Lifecycle)
			}
		})
	}
}

// exchangeProvisionAgain sends OpProvision to an already provisioned device.
func (v *dev) exchangeProvisionAgain(t *testing.T) mailbox.Response {
	return v.exchange(provisionRequest(t, v.c, false))
}

func TestCSR(t *testing.T) {
	for _, c := range []*trust.Context{ctxA, ctxE} {
		t.Run(string(c.Suite()), func(t *testing.T) {
			v := newDev(t, c, 3)
			v.programRootHash(c)
			resp := v.exchange(provisionRequest(t, c, false))
			if resp.Code != 0 {
				t.Fatal(resp.Detail)
			}
			csr, err := x509.ParseCertificateRequest(resp.CSR)
			if err != nil {
				t.Fatal(err)
			}
			if err := csr.CheckSignature(); err != nil {
				t.Fatal(err)
			}
			id := v.d.ID()
			if csr.Subject.CommonName != "SBM device "+hexs(id[:]) {
				t.Errorf("CN %q", csr.Subject.CommonName)
			}
			switch k := csr.PublicKey.(type) {
			case *ecdsa.PublicKey:
				if c.Suite() != trust.SuiteP256 {
					t.Error("key type")
				}
			case ed25519.PublicKey:
				if c.Suite() != trust.SuiteEd25519 || len(k) != 32 {
					t.Error("key type")
				}
			default:
				t.Fatalf("key %T", k)
			}
			// The extensionRequest asks for exactly the subjectAltName URIs
			// of the device certificate: the device ID and the
			// key-agreement key of the response, under the CSR's signature.
			wantURIs := []string{"urn:sbm:device:" + hexs(id[:]), kaURI(c.Suite(), resp.KeyAgreement)}
			if len(csr.URIs) != 2 || csr.URIs[0].String() != wantURIs[0] || csr.URIs[1].String() != wantURIs[1] {
				t.Errorf("URIs %v, want %v", csr.URIs, wantURIs)
			}
			if len(csr.Extensions) != 1 || !csr.Extensions[0].Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 17}) || csr.Extensions[0].Critical {
				t.Errorf("requested extensions %+v, want one non-critical subjectAltName", csr.Extensions)
			}
			req, err := c.ParseDeviceRequest(resp.CSR)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(req.ID, id[:]) || !bytes.Equal(req.KeyAgreement.Bytes(), resp.KeyAgreement) {
				t.Errorf("the CSR binds %x %x", req.ID, req.KeyAgreement.Bytes())
			}
			// OpenSSL agrees: the signature verifies and the URIs are there.
			if openssl, err := exec.LookPath("openssl"); err == nil {
				p := filepath.Join(t.TempDir(), "dev.csr")
				os.WriteFile(p, resp.CSR, 0o644)
				out, err := exec.Command(openssl, "req", "-inform", "DER", "-in", p, "-noout", "-verify", "-text").CombinedOutput()
				if err != nil || !bytes.Contains(out, []byte("URI:"+wantURIs[0])) || !bytes.Contains(out, []byte("URI:"+wantURIs[1])) {
					t.Errorf("openssl req -verify: %v\n%s", err, out)
				}
			}
			// A flipped bit in the signed part breaks the signature.
			bad := bytes.Clone(resp.CSR)
			i := bytes.Index(bad, []byte("SBM device"))
			bad[i] ^= 1
			if csr2, err := x509.ParseCertificateRequest(bad); err == nil && csr2.CheckSignature() == nil {
				t.Error("tampered CSR verifies")
			}
			// So does one in the key-agreement URI.
			bad = bytes.Clone(resp.CSR)
			i = bytes.Index(bad, []byte("urn:sbm:ka:"))
			bad[i+len("urn:sbm:ka:")+8] ^= 1
			if csr2, err := x509.ParseCertificateRequest(bad); err == nil && csr2.CheckSignature() == nil {
				t.Error("CSR with a tampered key-agreement URI verifies")
			}
		})
	}
}

func TestKeysStableAndUnique(t *testing.T) {
	v := newDev(t, ctxA, 4)
	v.provision(false)
	// The keys are re-derived from the PUF (with fresh noise at every
	// power-on) and the stored helper data: they stay those of the
	// certificate and of the CSR's answer.
	keysOf := func(v *dev) *deviceKeys {
		var st state
		var s storage
		s.open(v.d.Flash(hal.PrivSBM), v.d.PUF())
		s.load(&st)
		k, err := hal.RecoverPUFKey(v.d.PUF(), &st.helper)
		if err != nil {
			t.Fatal(err)
		}
		keys, err := deriveKeys(st.suite, &k)
		if err != nil {
			t.Fatal(err)
		}
		return keys
	}
	for range 3 {
		v.boot(false, false) // power cycles: fresh PUF noise
		k := keysOf(v)
		if !bytes.Equal(k.identity, mustRaw(t, v.cert.PublicKey)) || !bytes.Equal(k.ka.PublicKey().Bytes(), v.ka.Bytes()) {
			t.Fatal("keys changed across power cycles")
		}
	}
	w := newDev(t, ctxA, 5)
	w.provision(false)
	if bytes.Equal(w.ka.Bytes(), v.ka.Bytes()) || bytes.Equal(mustRaw(t, w.cert.PublicKey), mustRaw(t, v.cert.PublicKey)) {
		t.Fatal("two devices have the same keys")
	}
	// Nothing secret in the secure storage: neither private key appears.
	k := keysOf(v)
	sec := v.region(hal.RegionSecure)
	d, _ := k.p256.Signer().(*ecdsa.PrivateKey).Bytes()
	if bytes.Contains(sec, d) || bytes.Contains(sec, k.ka.Bytes()) {
		t.Fatal("a private key is stored")
	}
}

func mustRaw(t *testing.T, pub any) []byte {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		b, err := k.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		return b
	case ed25519.PublicKey:
		return k
	}
	t.Fatalf("key %T", pub)
	return nil
}

func TestProvisionRejects(t *testing.T) {
	v := newDev(t, ctxA, 6)
	before := v.region(hal.RegionSecure)
	check := func(name string, req *mailbox.Request, code wire.Code) {
		t.Helper()
		resp := v.exchange(req)
		if resp.Code != uint8(code) || resp.CSR != nil {
			t.Errorf("%s: code %d (%s), want %d", name, resp.Code, resp.Detail, code)
		}
		if !bytes.Equal(v.region(hal.RegionSecure), before) {
			t.Fatalf("%s: secure storage changed", name)
		}
	}
	check("no root hash", provisionRequest(t, ctxA, false), wire.CodeNotProvisioned)
	v.programRootHash(ctxA)
	check("another root key", provisionRequest(t, ctxB, false), wire.CodeSignature)
	req := provisionRequest(t, ctxA, false)
	req.ImageKeyCert = ctxB.ImageSigningKeyCert()
	check("foreign image key cert", req, wire.CodeSignature)
	req = provisionRequest(t, ctxA, false)
	req.ImageKeyCert, req.UpdateKeyCert = req.UpdateKeyCert, req.ImageKeyCert
	check("swapped roles", req, wire.CodeSignature)
	req = provisionRequest(t, ctxA, false)
	req.Suite = 2
	check("wrong suite", req, wire.CodeMalformed)
	req = provisionRequest(t, ctxA, false)
	req.ClassKey = bytes.Repeat([]byte{0xff}, 32)
	check("invalid class key", req, wire.CodeMalformed)
	// A corrupted frame.
	frame, _ := mailbox.Frame(nil, mailbox.MagicRequest, mailbox.EncodeRequest(nil, provisionRequest(t, ctxA, false)))
	frame[len(frame)-1] ^= 1
	dp := v.d.DebugPort()
	dp.Write(t.Context(), 0x20000000, frame)
	v.boot(true, false)
	h, _ := dp.Read(t.Context(), 0x20000000, len(frame))
	body, err := mailbox.Unframe(h, mailbox.MagicResponse)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := mailbox.DecodeResponse(body); r.Code != uint8(wire.CodeMalformed) {
		t.Errorf("corrupted frame: %+v", r)
	}
	// A certificate for another key is refused.
	v.exchange(provisionRequest(t, ctxA, false))
	w := newDev(t, ctxA, 7)
	w.provision(false)
	if r := v.exchange(&mailbox.Request{Op: mailbox.OpInstallCertificate, Certificate: w.cert.Raw}); r.Code != uint8(wire.CodeNotRecipient) {
		t.Errorf("foreign certificate: %+v", r)
	}
	if v.state().Certificate != nil {
		t.Error("foreign certificate stored")
	}
}

// kaURI returns the key-agreement URI of a device certificate for the raw
// key-agreement public key ka (docs/spec/package.md §11).
func kaURI(s trust.Suite, ka []byte) string {
	curve := "p256"
	if s == trust.SuiteEd25519 {
		curve = "x25519"
	}
	return "urn:sbm:ka:" + curve + ":" + base64.RawURLEncoding.EncodeToString(ka)
}

// issueRaw issues a device-certificate-like certificate from c's device CA
// for the public key pub, with the given subjectAltName URIs, bypassing
// the checks of trust.IssueDeviceCertificate (a device CA that went wrong).
func issueRaw(t *testing.T, c *trust.Context, pub any, uris ...string) []byte {
	t.Helper()
	ca, err := c.Signer(trust.DeviceCAKey)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(42),
		Subject:      pkix.Name{CommonName: "SBM device"},
		NotBefore:    fixedNow.Add(-time.Hour),
		NotAfter:     fixedNow.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	for _, s := range uris {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, u)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.DeviceCACertificate(), pub, ca)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestInstallCertificateNames: OpInstallCertificate refuses a certificate
// for the device's identity key that does not name exactly the device's own
// ID and key-agreement key (a key substituted on the provisioning link),
// and stores nothing.
func TestInstallCertificateNames(t *testing.T) {
	for _, c := range []*trust.Context{ctxA, ctxE} {
		t.Run(string(c.Suite()), func(t *testing.T) {
			v := newDev(t, c, 8)
			v.programRootHash(c)
			resp := v.exchange(provisionRequest(t, c, false))
			if resp.Code != 0 {
				t.Fatal(resp.Detail)
			}
			csr, err := parseCSR(resp.CSR)
			if err != nil {
				t.Fatal(err)
			}
			idKey := csr.PublicKey
			otherKey, _ := c.Suite().GenerateSigningKey()
			attackerKA, _ := c.Suite().GenerateKeyAgreementKey()
			id := v.d.ID()
			dev := "urn:sbm:device:" + hexs(id[:])
			ka := kaURI(c.Suite(), resp.KeyAgreement)
			otherCurve := kaURI(trust.SuiteEd25519, resp.KeyAgreement)
			if c.Suite() == trust.SuiteEd25519 {
				otherCurve = kaURI(trust.SuiteP256, resp.KeyAgreement)
			}
			bad := kaURI(c.Suite(), attackerKA.PublicKey().Bytes())
			before := v.region(hal.RegionSecure)
			for _, tc := range []struct {
				name string
				cert []byte
				code wire.Code
			}{
				{"another key-agreement key", issueRaw(t, c, idKey, dev, bad), wire.CodeNotRecipient},
				{"another device ID", issueRaw(t, c, idKey, "urn:sbm:device:00112233445566778899aabbccddeeff", ka), wire.CodeNotRecipient},
				{"no key-agreement key", issueRaw(t, c, idKey, dev), wire.CodeNotRecipient},
				{"no device ID", issueRaw(t, c, idKey, ka), wire.CodeNotRecipient},
				{"no subjectAltName", issueRaw(t, c, idKey), wire.CodeNotRecipient},
				{"its own and another key-agreement key", issueRaw(t, c, idKey, dev, ka, bad), wire.CodeNotRecipient},
				{"its key under the other curve's name", issueRaw(t, c, idKey, dev, otherCurve), wire.CodeNotRecipient},
				{"another identity key", issueRaw(t, c, otherKey.Public(), dev, ka), wire.CodeNotRecipient},
				{"not a certificate, but holding the identity key", append([]byte{0x30, 0x41}, mustRaw(t, idKey)...), wire.CodeMalformed},
			} {
				r := v.exchange(&mailbox.Request{Op: mailbox.OpInstallCertificate, Certificate: tc.cert})
				if r.Code != uint8(tc.code) {
					t.Errorf("%s: code %d (%s), want %d", tc.name, r.Code, r.Detail, tc.code)
				}
				if tc.code == wire.CodeNotRecipient && !strings.Contains(r.Detail, "this device's") {
					t.Errorf("%s: detail %q", tc.name, r.Detail)
				}
				if v.state().Certificate != nil || !bytes.Equal(v.region(hal.RegionSecure), before) {
					t.Fatalf("%s: certificate stored", tc.name)
				}
			}
			// The certificate naming exactly its own ID and key is
			// installed, with other URIs beside them.
			good := issueRaw(t, c, idKey, "urn:example:asset:7", dev, ka)
			if r := v.exchange(&mailbox.Request{Op: mailbox.OpInstallCertificate, Certificate: good}); r.Code != 0 {
				t.Fatalf("own certificate: code %d (%s)", r.Code, r.Detail)
			}
			if !bytes.Equal(v.state().Certificate, good) {
				t.Fatal("own certificate not stored")
			}
		})
	}
}
