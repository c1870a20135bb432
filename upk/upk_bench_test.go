package upk

import (
	"crypto"
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sbm-project/sbm/trust"
)

// BenchmarkIssue measures UPK issuance against its raw primitives measured
// in the same run: one ephemeral key generation + ECDH + one signature of
// the same suite. The reported x-raw metric is the ratio (goal ≤ 1.3).
func BenchmarkIssue(b *testing.B) {
	for _, suite := range []trust.Suite{trust.SuiteP256, trust.SuiteEd25519} {
		b.Run(string(suite), func(b *testing.B) {
			c, err := trust.Init(filepath.Join(b.TempDir(), "ctx"), &trust.InitOptions{Suite: suite})
			if err != nil {
				b.Fatal(err)
			}
			dev, _ := suite.GenerateKeyAgreementKey()
			r := Recipient{Kind: Device, Key: dev.PublicKey(), DeviceID: []byte("device-0001")}
			manifest := make([]byte, 400)
			var cek [32]byte
			signer, _ := c.Signer(trust.UpdateAuthorityKey)
			if _, err := Issue(c, manifest, &cek, r, nil); err != nil {
				b.Fatal(err)
			}
			msg := make([]byte, 300) // about a UPK's signed bytes
			raw := func() {
				eph, _ := suite.GenerateKeyAgreementKey()
				if _, err := eph.ECDH(dev.PublicKey()); err != nil {
					b.Fatal(err)
				}
				if suite == trust.SuiteEd25519 {
					signer.Sign(nil, msg, crypto.Hash(0))
				} else {
					d := sha256.Sum256(msg)
					signer.Sign(nil, d[:], crypto.SHA256)
				}
			}
			ours := func() {
				if _, err := Issue(c, manifest, &cek, r, nil); err != nil {
					b.Fatal(err)
				}
			}
			// Interleave both so machine noise hits them alike.
			var tRaw, tOurs time.Duration
			for b.Loop() {
				t0 := time.Now()
				raw()
				t1 := time.Now()
				ours()
				tRaw += t1.Sub(t0)
				tOurs += time.Since(t1)
			}
			b.ReportMetric(float64(tOurs.Nanoseconds())/float64(b.N), "ns/issue")
			b.ReportMetric(float64(tRaw.Nanoseconds())/float64(b.N), "ns/raw")
			b.ReportMetric(float64(tOurs)/float64(tRaw), "x-raw")
		})
	}
}

// BenchmarkIssuer measures a batch's per-UPK work — Issuer.Issue for one
// package and many device recipients — on every core (b.RunParallel),
// against the raw primitives measured the same way in the same run: an
// ephemeral key, one ECDH and one signature of the same suite. x-raw is
// the ratio (goal ≤ 1.3), upk/s the rate on all cores, 1M-min the
// extrapolated minutes for a million UPKs. (The CLI batch adds the
// recipient's certificate check and the file write: see
// BenchmarkUPKBatch in cmd/sbm.)
func BenchmarkIssuer(b *testing.B) {
	for _, suite := range []trust.Suite{trust.SuiteP256, trust.SuiteEd25519} {
		b.Run(string(suite), func(b *testing.B) {
			c, err := trust.Init(filepath.Join(b.TempDir(), "ctx"), &trust.InitOptions{Suite: suite})
			if err != nil {
				b.Fatal(err)
			}
			var cek [32]byte
			is, err := NewIssuer(c, make([]byte, 400), &cek)
			if err != nil {
				b.Fatal(err)
			}
			signer, _ := c.Signer(trust.UpdateAuthorityKey)
			devs := make([]Recipient, 64)
			for i := range devs {
				k, _ := suite.GenerateKeyAgreementKey()
				devs[i] = Recipient{Kind: Device, Key: k.PublicKey(), DeviceID: []byte(fmt.Sprintf("device-%04d", i))}
			}
			msg := make([]byte, 300) // about a UPK's signed bytes
			raw := func(r Recipient) {
				eph, _ := suite.GenerateKeyAgreementKey()
				if _, err := eph.ECDH(r.Key); err != nil {
					b.Error(err)
				}
				if suite == trust.SuiteEd25519 {
					signer.Sign(nil, msg, crypto.Hash(0))
				} else {
					d := sha256.Sum256(msg)
					signer.Sign(nil, d[:], crypto.SHA256)
				}
			}
			var tRaw, tOurs atomic.Int64
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				var dRaw, dOurs time.Duration
				for i := 0; pb.Next(); i++ {
					r := devs[i%len(devs)]
					t0 := time.Now()
					raw(r)
					t1 := time.Now()
					if _, err := is.Issue(r, nil); err != nil {
						b.Error(err)
					}
					dRaw += t1.Sub(t0)
					dOurs += time.Since(t1)
				}
				tRaw.Add(int64(dRaw))
				tOurs.Add(int64(dOurs))
			})
			wall := time.Since(start)
			// The wall time covers both sides; our share of it is ours/(ours+raw).
			share := float64(tOurs.Load()) / float64(tOurs.Load()+tRaw.Load())
			perUPK := time.Duration(float64(wall) * share / float64(b.N))
			b.ReportMetric(float64(tOurs.Load())/float64(tRaw.Load()), "x-raw")
			b.ReportMetric(1/perUPK.Seconds(), "upk/s")
			b.ReportMetric(perUPK.Minutes()*1e6, "1M-min")
		})
	}
}
