//go:build cgo

package trust_test

import (
	"crypto/rand"
	"encoding/hex"
	"path/filepath"
	"testing"
	"time"

	"github.com/sbm-project/sbm/image"
	"github.com/sbm-project/sbm/internal/firmware"
	"github.com/sbm-project/sbm/internal/softhsm"
	"github.com/sbm-project/sbm/trust"
	"github.com/sbm-project/sbm/upk"
)

// benchContexts returns a file context and a SoftHSM2 token context of
// suite.
func benchContexts(b *testing.B, suite trust.Suite) (files, token *trust.Context) {
	b.Helper()
	tok := softhsm.NewToken(b, "sbm-bench")
	files, err := trust.Init(filepath.Join(b.TempDir(), "files"), &trust.InitOptions{Suite: suite})
	if err != nil {
		b.Fatal(err)
	}
	token, err = trust.Init(filepath.Join(b.TempDir(), "token"), &trust.InitOptions{Suite: suite, PKCS11: tok.URI})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { token.Close() })
	return files, token
}

// interleave runs file and token once per iteration, so machine noise
// hits both alike, and reports their times, the ratio token/file
// (x-file) and the token operations per second.
func interleave(b *testing.B, unit string, file, token func()) {
	b.Helper()
	file()
	token() // warm: the token is opened and the keys found once
	var tFile, tToken time.Duration
	for b.Loop() {
		t0 := time.Now()
		file()
		t1 := time.Now()
		token()
		tFile += t1.Sub(t0)
		tToken += time.Since(t1)
	}
	b.ReportMetric(float64(tFile.Nanoseconds())/float64(b.N), "ns/file")
	b.ReportMetric(float64(tToken.Nanoseconds())/float64(b.N), "ns/token")
	b.ReportMetric(float64(tToken)/float64(tFile), "x-file")
	b.ReportMetric(float64(b.N)/tToken.Seconds(), unit+"/s-token")
}

// BenchmarkPKCS11ImageCreate measures image create of a 1 MiB payload
// (manifest signed by the image-signing key, escrow UPK signed by the
// update authority) with the keys in SoftHSM2 against file keys.
func BenchmarkPKCS11ImageCreate(b *testing.B) {
	for _, suite := range []trust.Suite{trust.SuiteP256, trust.SuiteEd25519} {
		b.Run(string(suite), func(b *testing.B) {
			files, token := benchContexts(b, suite)
			data := make([]byte, 1<<20)
			rand.Read(data)
			create := func(c *trust.Context) func() {
				return func() {
					if _, err := image.Create(c, &firmware.Image{Data: data, Format: firmware.FormatBinary}, &image.CreateOptions{Version: "1.0.0", SecurityCounter: 1}); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.SetBytes(int64(len(data)))
			interleave(b, "packages", create(files), create(token))
		})
	}
}

// BenchmarkPKCS11UPKIssue measures what sbm upk issue does for one device:
// image.RecoverCEK (the manifest checked, the CEK unwrapped from the
// release's escrow UPK with the escrow key: in the token, CKM_ECDH1_DERIVE)
// and upk.Issue (a new device UPK signed by the update authority), with
// the keys in SoftHSM2 against file keys.
func BenchmarkPKCS11UPKIssue(b *testing.B) {
	for _, suite := range []trust.Suite{trust.SuiteP256, trust.SuiteEd25519} {
		b.Run(string(suite), func(b *testing.B) {
			files, token := benchContexts(b, suite)
			dev, _ := suite.GenerateKeyAgreementKey()
			r := upk.Recipient{Kind: upk.Device, Key: dev.PublicKey(), DeviceID: []byte("device-0001")}
			issue := func(c *trust.Context) func() {
				res, err := image.Create(c, &firmware.Image{Data: make([]byte, 4096), Format: firmware.FormatBinary}, &image.CreateOptions{Version: "1.0.0"})
				if err != nil {
					b.Fatal(err)
				}
				if err := c.SaveRelease(&trust.Release{ManifestDigest: hex.EncodeToString(res.ManifestDigest[:]), Version: "1.0.0"}, res.Escrow); err != nil {
					b.Fatal(err)
				}
				return func() {
					cek, err := image.RecoverCEK(c, res.Package)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := upk.Issue(c, res.Package.Manifest, cek, r, nil); err != nil {
						b.Fatal(err)
					}
				}
			}
			interleave(b, "UPKs", issue(files), issue(token))
		})
	}
}
