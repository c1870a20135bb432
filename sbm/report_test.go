package sbm

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sbm-project/sbm/attest"
	"github.com/sbm-project/sbm/attest/report"
	"github.com/sbm-project/sbm/internal/cose"
	"github.com/sbm-project/sbm/internal/hostcose"
	"github.com/sbm-project/sbm/trust"
	"github.com/sbm-project/sbm/vmcu"
	"github.com/sbm-project/sbm/wire"
)

// runCold powers the device on from cold (RAM lost) and runs f as the
// application.
func (v *dev) runCold(f func(s Services)) {
	v.t.Helper()
	v.app = func(a *AppInfo) { f(a.Services) }
	defer func() { v.app = nil }()
	v.boot(false, false)
	if v.launched == nil {
		v.t.Fatalf("no application launched\nlog:\n%s", v.log.String())
	}
}

// keyOf returns the COSE algorithm and raw public key of v's certificate.
func (v *dev) keyOf(t *testing.T) (int64, []byte) {
	raw, err := hostcose.RawPublicKey(v.cert.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if v.c.Suite() == trust.SuiteEd25519 {
		return cose.AlgEdDSA, raw
	}
	return cose.AlgES256, raw
}

// tlsContent is the RFC 8446 §4.4.3 client CertificateVerify content.
func tlsContent(th []byte) []byte {
	return append([]byte(strings.Repeat(" ", 64)+"TLS 1.3, client CertificateVerify\x00"), th...)
}

// verifyRaw checks a 64-byte signature over msg with the certificate key
// as the TLS schemes do: ECDSA over SHA-256(msg), or Ed25519 over msg.
func (v *dev) verifyRaw(msg, sig []byte) bool {
	switch pub := v.cert.PublicKey.(type) {
	case *ecdsa.PublicKey:
		r, s := rawSigToRS(sig)
		h := sha256.Sum256(msg)
		return ecdsa.Verify(pub, h[:], r, s)
	case ed25519.PublicKey:
		return ed25519.Verify(pub, msg, sig)
	}
	return false
}

// verifyDigest checks sig as a signature of the 32-byte digest d itself
// (what a raw "sign this hash" oracle would give).
func (v *dev) verifyDigest(d, sig []byte) bool {
	if pub, ok := v.cert.PublicKey.(*ecdsa.PublicKey); ok {
		r, s := rawSigToRS(sig)
		return ecdsa.Verify(pub, d, r, s)
	}
	return ed25519.Verify(v.cert.PublicKey.(ed25519.PublicKey), d, sig)
}

// TestServicesTLSSign: TLSSign signs exactly the TLS 1.3 client
// CertificateVerify content of the transcript hash, and nothing the
// application could turn into a token, a report or a signature of its
// own data.
func TestServicesTLSSign(t *testing.T) {
	for _, c := range []*trust.Context{ctxA, ctxE} {
		t.Run(string(c.Suite()), func(t *testing.T) {
			v, _ := withV1(t, c, 37)
			th32 := sha256.Sum256([]byte("transcript"))
			th48 := bytes.Repeat([]byte{0x48}, 48)
			var sig32, sig48, tokSig, repSig, signTLS, signRep []byte
			var tok, rep []byte
			v.run(func(s Services) {
				var err error
				if sig32, err = s.TLSSign([]byte{9}, th32[:]); err != nil || len(sig32) != 65 || sig32[0] != 9 {
					t.Fatalf("tls sign: %d bytes, %v", len(sig32), err)
				}
				sig32 = sig32[1:]
				if sig48, err = s.TLSSign(nil, th48); err != nil || len(sig48) != 64 {
					t.Fatalf("tls sign 48: %d bytes, %v", len(sig48), err)
				}
				for _, n := range []int{0, 1, 31, 33, 47, 49, 64, 98 + 32, 1 << 16} {
					out, err := s.TLSSign(nil, make([]byte, n))
					wantCode(t, "transcript hash size", err, wire.CodeMalformed)
					if len(out) != 0 {
						t.Error("output on error")
					}
				}
				// The application's attempts at an oracle: the digest of a
				// token's and a report's Sig_structure as the "transcript".
				if tok, err = s.Attest(nil, make([]byte, 16)); err != nil {
					t.Fatal(err)
				}
				if rep, err = s.Report(nil, nil); err != nil {
					t.Fatal(err)
				}
				for _, m := range []struct {
					msg []byte
					out *[]byte
				}{{tok, &tokSig}, {rep, &repSig}} {
					s1, err := cose.DecodeSign1(m.msg)
					if err != nil {
						t.Fatal(err)
					}
					d := sha256.Sum256(cose.AppendSigStructure(nil, s1.Protected, s1.Payload))
					if *m.out, err = s.TLSSign(nil, d[:]); err != nil {
						t.Fatal(err)
					}
				}
				// Nor can Sign make a report (TestServicesSign: nor a token).
				s1, _ := cose.DecodeSign1(rep)
				dr := sha256.Sum256(cose.AppendSigStructure(nil, s1.Protected, s1.Payload))
				if signRep, err = s.Sign(nil, dr[:]); err != nil {
					t.Fatal(err)
				}
				// Sign cannot stand in for TLSSign either.
				d := sha256.Sum256(tlsContent(th32[:]))
				if signTLS, err = s.Sign(nil, d[:]); err != nil {
					t.Fatal(err)
				}
			})
			if !v.verifyRaw(tlsContent(th32[:]), sig32) || !v.verifyRaw(tlsContent(th48), sig48) {
				t.Fatal("tls signature does not verify over the RFC 8446 content with the certificate key")
			}
			// Not a signature of the caller's bytes: neither of the hash as
			// a message nor as a digest.
			if v.verifyRaw(th32[:], sig32) || v.verifyDigest(th32[:], sig32) {
				t.Fatal("tls_sign signed the caller's bytes")
			}
			if v.verifyRaw(tlsContent(th48[:32]), sig48) {
				t.Fatal("a 48-byte signature verifies for another transcript")
			}
			if v.verifyRaw(tlsContent(th32[:]), signTLS) {
				t.Fatal("Sign produced a TLS CertificateVerify signature")
			}
			alg, raw := v.keyOf(t)
			s1, _ := cose.DecodeSign1(rep)
			if _, err := report.Verify(cose.AppendSign1(nil, s1.Protected, nil, s1.Payload, signRep), alg, raw); err == nil {
				t.Fatal("a report signed through Sign verifies")
			}
			for _, f := range []struct {
				name     string
				msg, sig []byte
				verify   func([]byte) error
			}{
				{"token", tok, tokSig, func(b []byte) error { _, err := attest.Verify(b, alg, raw); return err }},
				{"report", rep, repSig, func(b []byte) error { _, err := report.Verify(b, alg, raw); return err }},
			} {
				if err := f.verify(f.msg); err != nil {
					t.Fatalf("genuine %s: %v", f.name, err)
				}
				s1, _ := cose.DecodeSign1(f.msg)
				forged := cose.AppendSign1(nil, s1.Protected, nil, s1.Payload, f.sig)
				if err := f.verify(forged); err == nil {
					t.Fatalf("a %s signed through tls_sign verifies", f.name)
				}
				tbs := cose.AppendSigStructure(nil, s1.Protected, s1.Payload)
				d := sha256.Sum256(tbs)
				if v.verifyRaw(tbs, f.sig) || v.verifyDigest(d[:], f.sig) {
					t.Fatalf("tls_sign output is a signature of the %s's Sig_structure", f.name)
				}
			}
		})
	}
}

// TestServicesReport: a report carries the SBM's facts, verifies with the
// certificate key, and its sequence increases across reports, resets and
// power cycles at a cost of at most one secure-storage commit per
// power-on.
func TestServicesReport(t *testing.T) {
	for _, c := range []*trust.Context{ctxA, ctxE} {
		t.Run(string(c.Suite()), func(t *testing.T) {
			v, rel := withV1(t, c, 38)
			alg, raw := v.keyOf(t)
			id := v.d.ID()
			manDigest := sha256.Sum256(rel.created.Package.Manifest)
			var reps [][]byte
			collect := func(n int, nonce []byte) func(Services) {
				return func(s Services) {
					for range n {
						r, err := s.Report([]byte{1}, nonce)
						if err != nil || r[0] != 1 {
							t.Fatalf("report: %v", err)
						}
						reps = append(reps, r[1:])
					}
				}
			}
			seq0 := v.state().Seq
			nonce := []byte("fleet nonce 0001")
			v.runCold(collect(3, nonce)) // power-on: the epoch's one commit
			seq1 := v.state().Seq
			if seq1 != seq0+1 {
				t.Fatalf("first report of a power-on: record seq %d -> %d, want one commit", seq0, seq1)
			}
			for range 3 { // resets: RAM kept, no commit
				v.run(collect(2, nil))
			}
			if st := v.state(); st.Seq != seq1 {
				t.Fatalf("reports after resets committed: seq %d -> %d", seq1, st.Seq)
			}
			v.runCold(collect(1, nil))
			if st := v.state(); st.Seq != seq1+1 {
				t.Fatalf("second power-on: seq %d -> %d", seq1, st.Seq)
			}
			var last uint64
			for i, b := range reps {
				r, err := report.Verify(b, alg, raw)
				if err != nil {
					t.Fatalf("report %d: %v", i, err)
				}
				if i > 0 && r.Sequence <= last {
					t.Fatalf("report %d: sequence %#x after %#x", i, r.Sequence, last)
				}
				last = r.Sequence
				if !bytes.Equal(r.DeviceID, id[:]) || !r.HasResult || r.Result != 0 || r.Detail != "installed 1.0.0" ||
					!r.HasPackage || r.Package != manDigest || r.Updated ||
					!r.HasApp || r.App.ManifestDigest != manDigest || r.App.Measurement != sha256.Sum256(rel.data) ||
					r.App.Version != "1.0.0" || r.App.SecurityCounter != 2 {
					t.Fatalf("report %d: %+v", i, r)
				}
			}
			r0, _ := report.Decode(reps[0])
			r3, _ := report.Decode(reps[3])
			rl, _ := report.Decode(reps[len(reps)-1])
			if !bytes.Equal(r0.Nonce, nonce) || r0.Boots != 1 || r3.Boots != 2 || rl.Boots != 1 ||
				r0.Sequence>>32 != uint64(seq1) || rl.Sequence>>32 != uint64(seq1+1) || rl.Sequence&0xffffffff != 0 {
				t.Fatalf("nonce, boots or epochs: %+v %+v %+v", r0, r3, rl)
			}
			// Nonce sizes.
			v.run(func(s Services) {
				for _, n := range []int{1, 7, 65, 4096} {
					out, err := s.Report(nil, make([]byte, n))
					wantCode(t, "nonce size", err, wire.CodeMalformed)
					if len(out) != 0 {
						t.Error("output on error")
					}
				}
			})
			// Another device's key refuses it; so does the token verifier
			// (another content type), and a flipped bit.
			w, _ := withV1(t, c, 39)
			_, raw2 := w.keyOf(t)
			if _, err := report.Verify(reps[0], alg, raw2); err == nil {
				t.Fatal("report verifies with another device's key")
			}
			if _, err := attest.Verify(reps[0], alg, raw); err == nil {
				t.Fatal("a report verifies as an attestation token")
			}
			bad := bytes.Clone(reps[0])
			bad[len(bad)/2] ^= 1
			if _, err := report.Verify(bad, alg, raw); err == nil {
				t.Fatal("a flipped bit verifies")
			}
		})
	}
}

// TestReportRejectedUpdate: after a refused update the report names the
// refusal and the refused package's manifest digest, which the
// application cannot change; a later genuine update reports success.
func TestReportRejectedUpdate(t *testing.T) {
	v, _ := withV1(t, ctxA, 43)
	alg, raw := v.keyOf(t)
	old := newRelease(t, ctxA, appData(4000, 9), "0.9.0", 1) // below counter 2
	v.requestUpdate(t, old.forDevice(v))
	var rep []byte
	v.run(func(s Services) { rep, _ = s.Report(nil, nil) })
	r, err := report.Verify(rep, alg, raw)
	if err != nil {
		t.Fatal(err)
	}
	oldDigest := sha256.Sum256(old.created.Package.Manifest)
	if !r.HasResult || r.Result != uint8(wire.CodeDowngrade) || !r.HasPackage || r.Package != oldDigest ||
		r.Updated || r.App.Version != "1.0.0" || r.Detail == "" {
		t.Fatalf("refused update: %+v", r)
	}
	// Garbage staged: refused before any manifest, so no package digest.
	v.requestUpdate(t, bytes.Repeat([]byte{0x5a}, 3000))
	v.run(func(s Services) { rep, _ = s.Report(nil, nil) })
	if r, err = report.Verify(rep, alg, raw); err != nil || r.Result != uint8(wire.CodeFormat) || r.HasPackage {
		t.Fatalf("garbage: %+v, %v", r, err)
	}
	rel2 := newRelease(t, ctxA, appData(6000, 2), "2.0.0", 3)
	v.run(func(s Services) {
		stage(t, s, rel2.forDevice(v))
		t.Fatalf("RequestUpdate returned: %v", s.RequestUpdate())
	})
	rep = nil
	v.app = func(a *AppInfo) { rep, err = a.Services.Report(nil, []byte("12345678")) }
	v.boot(true, false) // installs 2.0.0 and launches it
	v.app = nil
	if v.launched == nil || v.launched.Version != "2.0.0" || err != nil {
		t.Fatalf("2.0.0 not launched (%v)\n%s", err, v.log.String())
	}
	r, err = report.Verify(rep, alg, raw)
	d2 := sha256.Sum256(rel2.created.Package.Manifest)
	if err != nil || !r.Updated || r.Result != 0 || r.Package != d2 || r.App.ManifestDigest != d2 || r.App.Version != "2.0.0" {
		t.Fatalf("installed: %+v, %v", r, err)
	}
}

// TestPowerFailReport cuts the power at every flash operation (clean and
// torn) of a power-on whose application asks for a report — the boot and
// the commit that opens the sequence epoch. Afterwards the device always
// runs 1.0.0 again and its next reports verify with sequence numbers above
// every one it issued before, including any issued before the cut.
func TestPowerFailReport(t *testing.T) {
	v, _ := withV1(t, ctxA, 44)
	alg, raw := v.keyOf(t)
	var before uint64
	v.runCold(func(s Services) {
		rep, err := s.Report(nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		r, err := report.Verify(rep, alg, raw)
		if err != nil {
			t.Fatal(err)
		}
		before = r.Sequence
	})
	base := v.d.Clone()
	var issued uint64
	scenario := func(d *vmcu.Device) error {
		issued = 0
		w := v.on(d)
		w.app = func(a *AppInfo) {
			if rep, err := a.Services.Report(nil, nil); err == nil {
				if r, err := report.Verify(rep, alg, raw); err == nil {
					issued = r.Sequence
				}
			}
		}
		_, err := w.powerOn(false, false)
		return err
	}
	check := func(d *vmcu.Device, cut vmcu.PowerCut) error {
		floor := max(before, issued)
		w := v.on(d)
		var seqs []uint64
		var rerr error
		w.app = func(a *AppInfo) {
			for range 2 {
				rep, err := a.Services.Report(nil, nil)
				if err != nil {
					rerr = err
					return
				}
				r, err := report.Verify(rep, alg, raw)
				if err != nil {
					rerr = err
					return
				}
				seqs = append(seqs, r.Sequence)
			}
		}
		if _, err := w.powerOn(false, false); err != nil {
			return err
		}
		switch {
		case w.launched == nil || w.launched.Version != "1.0.0":
			return errors.New("1.0.0 does not run after the cut")
		case rerr != nil:
			return fmt.Errorf("report after the cut: %w", rerr)
		case len(seqs) != 2 || seqs[0] <= floor || seqs[1] <= seqs[0]:
			return fmt.Errorf("sequences %#x after %#x (issued before the cut %#x)", seqs, before, issued)
		}
		return nil
	}
	n, err := vmcu.Sweep(base, scenario, check, vmcu.SweepOptions{Clean: true, TornSeeds: 2})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("the first report of a power-on made no flash operation to cut")
	}
	t.Logf("report epoch commit: %d cut points", n)
}
