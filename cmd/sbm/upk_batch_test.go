package main

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sbm-project/sbm/image"
	"github.com/sbm-project/sbm/trust"
)

// batchFixture is a context with production records for n devices and a
// package made with it (its escrow record saved, as image create does).
type batchFixture struct {
	dir  string
	ctx  *trust.Context
	pkg  string
	keys map[string]*ecdh.PrivateKey // by device ID (hex)
}

func newBatchFixture(t testing.TB, n int) *batchFixture {
	t.Helper()
	dir := t.TempDir()
	c, err := trust.Init(filepath.Join(dir, "ctx"), nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &batchFixture{dir: dir, ctx: c, keys: map[string]*ecdh.PrivateKey{}}
	for i := range n {
		id := []byte(fmt.Sprintf("dev-%06d", i))
		idKey, _ := c.Suite().GenerateSigningKey()
		ka, _ := c.Suite().GenerateKeyAgreementKey()
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "d"}}, idKey)
		if err != nil {
			t.Fatal(err)
		}
		csr, _ := x509.ParseCertificateRequest(der)
		cert, err := c.IssueDeviceCertificate(csr, id, ka.PublicKey(), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.SaveDevice(cert, trust.DeviceRecord{Provisioned: time.Now()}); err != nil {
			t.Fatal(err)
		}
		f.keys[hex.EncodeToString(id)] = ka
	}
	f.pkg = filepath.Join(dir, "app.pkg")
	if code, _, stderr := runCLI(t, "", "image", "create", "--context", c.Dir(), "--version", "1.0.0", "--out", f.pkg, writeTemp(t, dir, "app.bin", bytes.Repeat([]byte("app "), 3000))); code != 0 {
		t.Fatalf("image create: %s", stderr)
	}
	return f
}

func writeTemp(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// runCLI runs the CLI in-process with stdin and returns its exit code and
// output.
func runCLI(t testing.TB, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// TestUPKBatchRecords issues UPKs for the devices of a production records
// directory (the context's devices/) and from a list of their IDs, and
// checks that each UPK opens the package with its device's key only.
func TestUPKBatchRecords(t *testing.T) {
	const n = 12
	f := newBatchFixture(t, n)
	for _, tc := range []struct {
		name       string
		recipients string
		stdin      string
	}{
		{"records directory", f.ctx.Path("devices"), ""},
		{"list of device IDs", "-", func() string {
			var b strings.Builder
			for id := range f.keys {
				b.WriteString(id + "\n")
			}
			return b.String()
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "upks")
			code, stdout, stderr := runCLI(t, tc.stdin, "upk", "issue", "--context", f.ctx.Dir(), "--package", f.pkg, "--recipients", tc.recipients, "--out-dir", out)
			if code != 0 || stderr != "" {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if want := fmt.Sprintf("wrote %d UPKs to %s, 0 failed\n", n, out); stdout != want {
				t.Errorf("stdout %q, want %q", stdout, want)
			}
			fd, err := os.Open(f.pkg)
			if err != nil {
				t.Fatal(err)
			}
			defer fd.Close()
			fi, _ := fd.Stat()
			p, err := image.Open(fd, fi.Size())
			if err != nil {
				t.Fatal(err)
			}
			ver, err := image.NewVerifier(f.ctx)
			if err != nil {
				t.Fatal(err)
			}
			other := f.keys[hex.EncodeToString([]byte("dev-000000"))]
			for id, key := range f.keys {
				u, err := os.ReadFile(filepath.Join(out, id+".upk"))
				if err != nil {
					t.Fatal(err)
				}
				devID, _ := hex.DecodeString(id)
				if _, err := ver.VerifyFile(p, &image.VerifyOptions{Key: key, DeviceID: devID, UPK: u}); err != nil {
					t.Errorf("device %s: %v", id, err)
				}
				if key != other {
					if _, err := ver.VerifyFile(p, &image.VerifyOptions{Key: other, UPK: u}); err == nil {
						t.Errorf("device %s's UPK opened with another device's key", id)
					}
				}
			}
		})
	}
}

// BenchmarkUPKBatch measures "upk issue --recipients DIR --out-dir" per UPK
// end to end (production record read and its certificate verified, UPK
// issued, file written atomically), on every core, against the raw
// primitives on one core measured in the same run: ephemeral key +
// ECDH + one signature. x-raw-per-core compares the cost per UPK per core
// (wall time × cores) with the raw cost; upk/s is the batch's rate and
// 1M-min the extrapolated minutes for a million UPKs. On a shared machine
// the wall time counts other processes too: cpu-ns/upk (the process's CPU
// time per UPK), x-raw-cpu and 1M-min-cpu (a million UPKs on all cores of
// an idle machine) do not. Creating files is
// part of the cost and depends on the file system: SBM_BENCH_OUT=DIR puts
// the UPKs under DIR (a tmpfs such as /dev/shm measures the CPU side)
// instead of the test's temporary directory.
func BenchmarkUPKBatch(b *testing.B) {
	const n = 200
	f := newBatchFixture(b, n)
	raw := rawIssueCost(b, f.ctx)
	base := b.TempDir()
	if d := os.Getenv("SBM_BENCH_OUT"); d != "" {
		var err error
		if base, err = os.MkdirTemp(d, "upkbatch"); err != nil {
			b.Fatal(err)
		}
		defer os.RemoveAll(base)
	}
	var tBatch, tCPU time.Duration
	for i := 0; b.Loop(); i++ {
		out := filepath.Join(base, fmt.Sprint("upks", i))
		t0, c0 := time.Now(), cpuTime()
		if code, _, stderr := runCLI(b, "", "upk", "issue", "--context", f.ctx.Dir(), "--package", f.pkg, "--recipients", f.ctx.Path("devices"), "--out-dir", out); code != 0 {
			b.Fatal(stderr)
		}
		tBatch += time.Since(t0)
		tCPU += cpuTime() - c0
	}
	perUPK := tBatch / time.Duration(b.N*n)
	cores := float64(runtimeProcs())
	b.ReportMetric(float64(perUPK.Nanoseconds()), "ns/upk")
	b.ReportMetric(float64(raw.Nanoseconds()), "ns/raw")
	b.ReportMetric(float64(perUPK)*cores/float64(raw), "x-raw-per-core")
	if tCPU > 0 {
		// CPU time is what a busy shared machine does not inflate.
		cpuPerUPK := tCPU / time.Duration(b.N*n)
		b.ReportMetric(float64(cpuPerUPK.Nanoseconds()), "cpu-ns/upk")
		b.ReportMetric(float64(cpuPerUPK)/float64(raw), "x-raw-cpu")
		b.ReportMetric(cpuPerUPK.Minutes()*1e6/cores, "1M-min-cpu")
	}
	b.ReportMetric(1/perUPK.Seconds(), "upk/s")
	b.ReportMetric(perUPK.Minutes()*1e6, "1M-min")
}

// rawIssueCost is the mean time on one core of a UPK's raw primitives with
// the context's suite: an ephemeral key, one ECDH and one signature by the
// update-authority key over about a UPK's signed bytes.
func rawIssueCost(b *testing.B, c *trust.Context) time.Duration {
	signer, err := c.Signer(trust.UpdateAuthorityKey)
	if err != nil {
		b.Fatal(err)
	}
	dev, _ := c.Suite().GenerateKeyAgreementKey()
	digest := sha256.Sum256(make([]byte, 300))
	const runs = 300
	t0 := time.Now()
	for range runs {
		eph, _ := c.Suite().GenerateKeyAgreementKey()
		if _, err := eph.ECDH(dev.PublicKey()); err != nil {
			b.Fatal(err)
		}
		if _, err := signer.Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(t0) / runs
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }
