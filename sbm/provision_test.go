package sbm

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/x509"
	"strings"
	"testing"

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
			// A flipped bit in the signed part breaks the signature.
			bad := bytes.Clone(resp.CSR)
			i := bytes.Index(bad, []byte("SBM device"))
			bad[i] ^= 1
			if csr2, err := x509.ParseCertificateRequest(bad); err == nil && csr2.CheckSignature() == nil {
				t.Error("tampered CSR verifies")
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
		s.open(v.d.Flash(hal.PrivSBM))
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
	d, _ := k.ecdsa.Bytes()
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
