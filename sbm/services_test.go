package sbm

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"math/big"
	"testing"

	"github.com/sbm-project/sbm/attest"
	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/internal/cose"
	"github.com/sbm-project/sbm/internal/hostcose"
	"github.com/sbm-project/sbm/internal/secpkg"
	"github.com/sbm-project/sbm/sbm/mailbox"
	"github.com/sbm-project/sbm/trust"
	"github.com/sbm-project/sbm/wire"
)

// withV1 returns a provisioned device of c running application 1.0.0.
func withV1(t *testing.T, c *trust.Context, seed uint64) (*dev, *release) {
	v, rel, _ := withV1Pkg(t, c, seed)
	return v, rel
}

// withV1Pkg is withV1 that also returns the package installed.
func withV1Pkg(t *testing.T, c *trust.Context, seed uint64) (*dev, *release, []byte) {
	t.Helper()
	v := newDev(t, c, seed)
	v.provision(false)
	rel := newRelease(t, c, appData(5000, 1), "1.0.0", 2)
	pkg := rel.forDevice(v)
	if err := v.install(pkg); err != nil {
		t.Fatal(err)
	}
	v.expectBoot(rel)
	return v, rel, pkg
}

// run boots normally (a reset: RAM kept) and runs f as the application.
func (v *dev) run(f func(s Services)) {
	v.t.Helper()
	v.app = func(a *AppInfo) {
		if a.Services == nil {
			v.t.Fatal("AppInfo.Services is nil")
		}
		f(a.Services)
	}
	defer func() { v.app = nil }()
	v.boot(true, false)
	if v.launched == nil {
		v.t.Fatalf("no application launched\nlog:\n%s", v.log.String())
	}
}

// outsideStaging returns every flash byte outside the staging slot.
func (v *dev) outsideStaging() []byte {
	f := v.d.Flash(hal.PrivSBM)
	g := f.Geometry()
	b := make([]byte, g.Size)
	if err := f.Read(0, b); err != nil {
		v.t.Fatal(err)
	}
	r, _ := g.Region(hal.RegionStaging)
	return append(b[:r.Start:r.Start], b[r.End():]...)
}

func wantCode(t *testing.T, what string, err error, code wire.Code) {
	t.Helper()
	if codeOfErr(err) != code {
		t.Errorf("%s: got %v, want code %d", what, err, code)
	}
}

func TestServicesBootInfo(t *testing.T) {
	v, _ := withV1(t, ctxA, 30)
	var bi BootInfo
	v.run(func(s Services) { bi = s.BootInfo() })
	id := v.d.ID()
	if bi.DeviceID != id || bi.SBMVersion != Version || bi.AppVersion != "1.0.0" ||
		bi.Lifecycle != wire.LifecycleProvisioned || bi.SecurityCounter != 2 ||
		bi.LastUpdate != 0 || bi.UpdatedThisBoot {
		t.Fatalf("boot info %+v", bi)
	}
}

// encodeChain encodes DER certificates for the services.
func encodeChain(certs ...[]byte) []byte {
	var b []byte
	for _, c := range certs {
		b = binary.BigEndian.AppendUint16(b, uint16(len(c)))
		b = append(b, c...)
	}
	return b
}

func TestServicesCertificateChain(t *testing.T) {
	v, _ := withV1(t, ctxA, 31)
	ca := ctxA.DeviceCACertificate().Raw
	// Without a CA chain: the device certificate only.
	var got []byte
	v.run(func(s Services) {
		var err error
		if got, err = s.CertificateChain([]byte("x")); err != nil {
			t.Fatal(err)
		}
	})
	if !bytes.Equal(got, append([]byte("x"), encodeChain(v.cert.Raw)...)) {
		t.Fatal("chain without CA differs")
	}
	// Malformed and oversized CA chains are refused at provisioning.
	for name, chain := range map[string][]byte{
		"malformed": {0, 5, 1},
		"empty der": {0, 0},
		"too many":  encodeChain(ca, ca, ca, ca),
		"too large": encodeChain(make([]byte, 1025)),
		"other ca":  encodeChain(ctxB.DeviceCACertificate().Raw),
	} {
		r := v.exchange(&mailbox.Request{Op: mailbox.OpInstallCertificate, Certificate: v.cert.Raw, CAChain: chain})
		if r.Code == 0 {
			t.Errorf("%s CA chain accepted", name)
		}
	}
	if r := v.exchange(&mailbox.Request{Op: mailbox.OpInstallCertificate, Certificate: v.cert.Raw, CAChain: encodeChain(ca)}); r.Code != 0 {
		t.Fatalf("install with CA chain: %d %s", r.Code, r.Detail)
	}
	v.run(func(s Services) {
		var err error
		if got, err = s.CertificateChain(nil); err != nil {
			t.Fatal(err)
		}
	})
	if !bytes.Equal(got, encodeChain(v.cert.Raw, ca)) {
		t.Fatal("chain with CA differs")
	}
	// The chain is the real one: leaf signed by the CA, CA by the root.
	leaf, _ := x509.ParseCertificate(got[2 : 2+len(v.cert.Raw)])
	caCert, _ := x509.ParseCertificate(got[4+len(v.cert.Raw):])
	if leaf.CheckSignatureFrom(caCert) != nil || caCert.CheckSignatureFrom(ctxA.RootCertificate()) != nil {
		t.Fatal("stored chain does not verify")
	}
	if !bytes.Equal(v.state().CAChain, encodeChain(ca)) {
		t.Fatal("ReadState CA chain")
	}
}

func TestServicesVerifyChain(t *testing.T) {
	v, _ := withV1(t, ctxA, 32)
	good := encodeChain(v.cert.Raw, ctxA.DeviceCACertificate().Raw)
	v.run(func(s Services) {
		for name, chain := range map[string][]byte{
			"empty":      nil,
			"short":      {0},
			"zero len":   {0, 0},
			"past end":   {0, 9, 1, 2},
			"trailing":   append(bytes.Clone(good), 0),
			"five certs": encodeChain([]byte{1}, []byte{2}, []byte{3}, []byte{4}, []byte{5}),
		} {
			wantCode(t, name, s.VerifyChain(chain, 0), wire.CodeMalformed)
		}
		wantCode(t, "huge", s.VerifyChain(make([]byte, MaxChainSize+1), 0), wire.CodeTooLarge)
		// The device's own chain verifies against the root key, now and
		// at the time floor; the CA certificate alone too.
		for _, now := range []uint64{0, uint64(fixedNow.Unix()) + 86400} {
			if err := s.VerifyChain(good, now); err != nil {
				t.Errorf("own chain at %d: %v", now, err)
			}
		}
		if err := s.VerifyChain(encodeChain(ctxA.DeviceCACertificate().Raw), 0); err != nil {
			t.Errorf("device CA: %v", err)
		}
		// Another context's chain, a chain missing its CA, a chain in the
		// wrong order, a certificate with a flipped bit: refused.
		wantCode(t, "other root", s.VerifyChain(encodeChain(ctxB.DeviceCACertificate().Raw), 0), wire.CodeSignature)
		wantCode(t, "leaf alone", s.VerifyChain(encodeChain(v.cert.Raw), 0), wire.CodeSignature)
		wantCode(t, "wrong order", s.VerifyChain(encodeChain(ctxA.DeviceCACertificate().Raw, v.cert.Raw), 0), wire.CodeSignature)
		bad := bytes.Clone(v.cert.Raw)
		bad[len(bad)-100] ^= 1
		if s.VerifyChain(encodeChain(bad, ctxA.DeviceCACertificate().Raw), 0) == nil {
			t.Error("tampered leaf accepted")
		}
		// Expired: far in the future.
		wantCode(t, "expired", s.VerifyChain(good, 1<<40), wire.CodeExpired)
	})
}

// rawSigToRS splits a 64-byte r‖s signature.
func rawSigToRS(sig []byte) (*big.Int, *big.Int) {
	return new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
}

func TestServicesSign(t *testing.T) {
	for _, c := range []*trust.Context{ctxA, ctxE} {
		t.Run(string(c.Suite()), func(t *testing.T) {
			v, _ := withV1(t, c, 33)
			digest := sha256.Sum256([]byte("challenge"))
			var sigs [][]byte
			v.run(func(s Services) {
				for i := range 64 {
					sig, err := s.Sign([]byte{7}, digest[:])
					if err != nil || len(sig) != 65 || sig[0] != 7 {
						t.Fatalf("sign %d: %d bytes, %v", i, len(sig), err)
					}
					sigs = append(sigs, sig[1:])
				}
				for _, n := range []int{0, 1, 31, 33, 64, 1 << 20} {
					out, err := s.Sign(nil, make([]byte, n))
					wantCode(t, "digest size", err, wire.CodeMalformed)
					if len(out) != 0 {
						t.Error("output on error")
					}
				}
			})
			for _, sig := range sigs {
				switch pub := v.cert.PublicKey.(type) {
				case *ecdsa.PublicKey:
					// ES256 with the digest as the message, low-S.
					if !cose.IsLowS(sig) {
						t.Fatal("high-S signature from Sign")
					}
					r, s := rawSigToRS(sig)
					h := sha256.Sum256(digest[:])
					if !ecdsa.Verify(pub, h[:], r, s) {
						t.Fatal("ES256 signature does not verify with the certificate key")
					}
				case ed25519.PublicKey:
					if !ed25519.Verify(pub, digest[:], sig) {
						t.Fatal("Ed25519 signature does not verify with the certificate key")
					}
				default:
					t.Fatalf("certificate key %T", pub)
				}
			}
			// Sign is no oracle for tokens: signing the digest of a token's
			// Sig_structure does not give the token's signature.
			var forged []byte
			v.run(func(s Services) {
				tok, err := s.Attest(nil, make([]byte, 16))
				if err != nil {
					t.Fatal(err)
				}
				m, err := cose.DecodeSign1(tok)
				if err != nil {
					t.Fatal(err)
				}
				tbs := sha256.Sum256(cose.AppendSigStructure(nil, m.Protected, m.Payload))
				sig, err := s.Sign(nil, tbs[:])
				if err != nil {
					t.Fatal(err)
				}
				forged = cose.AppendSign1(nil, m.Protected, nil, m.Payload, sig)
			})
			rawPub, _ := hostcose.RawPublicKey(v.cert.PublicKey)
			alg := cose.AlgES256
			if c.Suite() == trust.SuiteEd25519 {
				alg = cose.AlgEdDSA
			}
			if _, err := attest.Verify(forged, alg, rawPub); err == nil {
				t.Fatal("a token signed through Sign verifies")
			}
			other := sha256.Sum256([]byte("other"))
			if pub, ok := v.cert.PublicKey.(ed25519.PublicKey); ok && ed25519.Verify(pub, other[:], sigs[0]) {
				t.Fatal("signature verifies for another digest")
			}
		})
	}
}

func TestServicesAttest(t *testing.T) {
	for _, c := range []*trust.Context{ctxA, ctxE} {
		t.Run(string(c.Suite()), func(t *testing.T) {
			v, rel := withV1(t, c, 34)
			nonce := []byte("attestation nonce 123")
			var tok1, tok2 []byte
			v.run(func(s Services) {
				var err error
				if tok1, err = s.Attest(nil, nonce); err != nil {
					t.Fatal(err)
				}
				if tok2, err = s.Attest(nil, nonce[:8]); err != nil {
					t.Fatal(err)
				}
				if _, err = s.Attest(nil, make([]byte, 64)); err != nil {
					t.Fatal(err)
				}
				for _, n := range []int{0, 7, 65, 4096} {
					_, err := s.Attest(nil, make([]byte, n))
					wantCode(t, "nonce size", err, wire.CodeMalformed)
				}
			})
			raw, err := hostcose.RawPublicKey(v.cert.PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			alg := cose.AlgES256
			if c.Suite() == trust.SuiteEd25519 {
				alg = cose.AlgEdDSA
			}
			cl, err := attest.Verify(tok1, alg, raw)
			if err != nil {
				t.Fatal(err)
			}
			id := v.d.ID()
			sbmSum, _ := Measurement(v.d.Flash(hal.PrivSBM))
			man, err := secpkg.DecodeManifest(rel.created.Package.Manifest)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(cl.Nonce, nonce) || !bytes.Equal(cl.DeviceID, id[:]) || cl.Lifecycle != attest.LifecycleProvisioned ||
				cl.SBM.Measurement != sbmSum || cl.SBM.Version != Version || !cl.HasApp ||
				cl.App.Measurement != sha256.Sum256(rel.data) || cl.App.Version != "1.0.0" ||
				!cl.App.HasCounter || cl.App.SecurityCounter != 2 || !cl.App.HasSigner || cl.App.SignerID != man.SignerKID ||
				len(cl.BootSeed) != 32 {
				t.Fatalf("claims %+v", cl)
			}
			cl2, err := attest.Verify(tok2, alg, raw)
			if err != nil || !bytes.Equal(cl2.BootSeed, cl.BootSeed) {
				t.Fatal("boot seed changes within a boot")
			}
			// Another boot, another seed; another device's key does not verify.
			var tok3 []byte
			v.run(func(s Services) { tok3, _ = s.Attest(nil, nonce) })
			if cl3, err := attest.Verify(tok3, alg, raw); err != nil || bytes.Equal(cl3.BootSeed, cl.BootSeed) {
				t.Fatalf("second boot: %v (same seed)", err)
			}
			w, _ := withV1(t, c, 35)
			raw2, _ := hostcose.RawPublicKey(w.cert.PublicKey)
			if _, err := attest.Verify(tok1, alg, raw2); err == nil {
				t.Fatal("token verifies with another device's key")
			}
		})
	}
}

func TestServicesStaging(t *testing.T) {
	v, _ := withV1(t, ctxA, 36)
	outside := v.outsideStaging()
	sr, _ := v.d.Flash(hal.PrivSBM).Geometry().Region(hal.RegionStaging)
	data := appData(5003, 9)
	v.run(func(s Services) {
		size := s.StagingSize()
		if size != sr.Size {
			t.Fatalf("staging size %d, want %d", size, sr.Size)
		}
		// Out of range: nothing happens.
		for name, tc := range map[string]struct {
			off uint32
			n   int
		}{
			"at end":       {size, 1},
			"across end":   {size - 1, 2},
			"wraps":        {0xFFFFFFFF, 2},
			"huge":         {0, int(size) + 1},
			"far":          {1 << 31, 1},
			"max offset":   {0xFFFFFFFF, 0},
			"huge at half": {size / 2, int(size)},
		} {
			wantCode(t, "write "+name, s.StagingWrite(tc.off, make([]byte, tc.n)), wire.CodeOffset)
			wantCode(t, "read "+name, s.StagingRead(tc.off, make([]byte, tc.n)), wire.CodeOffset)
		}
		if err := s.StagingErase(); err != nil {
			t.Fatal(err)
		}
		// Unaligned pieces of varied sizes, read back (buffered bytes too).
		off := 0
		for i := 0; off < len(data); i++ {
			n := min(1+i*37%301, len(data)-off)
			if err := s.StagingWrite(uint32(off), data[off:off+n]); err != nil {
				t.Fatalf("write %d+%d: %v", off, n, err)
			}
			off += n
			got := make([]byte, off)
			if err := s.StagingRead(0, got); err != nil || !bytes.Equal(got, data[:off]) {
				t.Fatalf("read back after %d bytes: %v", off, err)
			}
		}
		// Writing a byte again is refused: in flash, and in the buffered word.
		wantCode(t, "rewrite flash", s.StagingWrite(0, data[:1]), wire.CodeState)
		wantCode(t, "rewrite buffered", s.StagingWrite(uint32(len(data)-1), data[len(data)-1:]), wire.CodeState)
		// A write elsewhere flushes the buffered word: its free bytes are gone.
		if err := s.StagingWrite(20000, []byte{1, 2, 3}); err != nil {
			t.Fatal(err)
		}
		wantCode(t, "after flush", s.StagingWrite(uint32(len(data)), []byte{0}), wire.CodeState)
		// A refused write writes nothing, even its writable part.
		if err := s.StagingWrite(30001, []byte{5}); err != nil {
			t.Fatal(err)
		}
		wantCode(t, "partly written", s.StagingWrite(29990, make([]byte, 20)), wire.CodeState)
		chk := make([]byte, 11)
		if s.StagingRead(29990, chk); !bytes.Equal(chk, bytes.Repeat([]byte{0xFF}, 11)) {
			t.Fatal("refused write wrote bytes")
		}
		// The very last bytes of the slot are writable.
		if err := s.StagingWrite(size-3, []byte{1, 2, 3}); err != nil {
			t.Fatal(err)
		}
		// Erase again: everything writable.
		if err := s.StagingErase(); err != nil {
			t.Fatal(err)
		}
		if err := s.StagingWrite(0, data); err != nil {
			t.Fatal(err)
		}
	})
	if !bytes.Equal(v.outsideStaging(), outside) {
		t.Fatal("flash outside the staging slot changed")
	}
	staging := v.region(hal.RegionStaging)
	if !bytes.Equal(staging[:len(data)/8*8], data[:len(data)/8*8]) {
		t.Fatal("staging does not hold the data")
	}
	v.expectBootSame(t)
}

// expectBootSame boots normally and checks version 1.0.0 still runs.
func (v *dev) expectBootSame(t *testing.T) {
	t.Helper()
	v.boot(false, false)
	if v.launched == nil || v.launched.Version != "1.0.0" {
		t.Fatalf("1.0.0 not running\nlog:\n%s", v.log.String())
	}
}

func TestServicesRequestRecovery(t *testing.T) {
	v, _ := withV1(t, ctxA, 37)
	v.run(func(s Services) {
		s.RequestRecovery()
		t.Error("RequestRecovery returned")
	})
	v.boot(true, false) // the reset
	if !v.recovered || v.launched != nil {
		t.Fatal("the reset did not enter recovery")
	}
	if !bytes.Contains(v.log.Bytes(), []byte("recovery: requested by the application")) {
		t.Fatalf("log:\n%s", v.log.String())
	}
	v.boot(true, false) // the flag is cleared: the application runs again
	if v.launched == nil {
		t.Fatal("recovery flag not cleared")
	}
}
