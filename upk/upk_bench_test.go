package upk

import (
	"crypto"
	"crypto/sha256"
	"path/filepath"
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
