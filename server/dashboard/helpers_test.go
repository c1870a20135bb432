package dashboard

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// clock is a settable clock for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// source is a Source whose view the test can change.
type source struct {
	mu  sync.Mutex
	v   *View
	err error
}

func (s *source) View(context.Context) (*View, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	v := *s.v
	return &v, nil
}

func (s *source) update(f func(v *View)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := *s.v
	v.Rollouts = append([]Rollout(nil), v.Rollouts...)
	f(&v)
	s.v = &v
}

// hexID returns a 32-hex-digit device ID made of n.
func hexID(n int) string {
	h := sha256.Sum256([]byte(fmt.Sprint("device ", n)))
	return fmt.Sprintf("%x", h[:16])
}

// sampleView is a realistic view: a fleet of 12,480 devices, three
// releases, a rollout running at 25 %, one halted by failures, one done, a
// paused one, three orders (one revoked) and a passed audit.
func sampleView(now time.Time) *View {
	ago := func(d time.Duration) time.Time { return now.Add(-d).Truncate(time.Second) }
	v := &View{
		Service: "acme-thermostat",
		Fleet: Fleet{Total: 12480, Failing: 37, Versions: []VersionCount{
			{Version: "2.4.0", Devices: 2790}, {Version: "2.3.1", Devices: 9512}, {Version: "2.3.0", Devices: 178},
		}},
		Releases: []Release{
			{Version: "2.4.1", SecurityCounter: 7, ManifestDigest: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", Published: ago(2 * time.Hour)},
			{Version: "2.4.0", SecurityCounter: 7, ManifestDigest: "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752", Published: ago(50 * time.Hour)},
			{Version: "2.3.1", SecurityCounter: 6, ManifestDigest: "fd61a03af4f77d870fc21e05e7e80678095c92d808cfb3b5c279ee04c74aca13", Published: ago(21 * 24 * time.Hour)},
			{Version: "2.3.0", SecurityCounter: 6, ManifestDigest: "a4e624d686e03ed2767c0abd85c14426b0b1157d2ce81d27bb4fe4f6f01d688a", Published: ago(60 * 24 * time.Hour)},
		},
		Rollouts: []Rollout{
			{ID: "r-0007", Release: "2.4.1", State: RolloutHalted, Percent: 10, Targeted: 1248, Downloaded: 412, Updated: 361, Failed: 38,
				MaxFailuresPercent: 3, Started: ago(95 * time.Minute)},
			{ID: "r-0006", Release: "2.4.0", Cohort: "field-trial", State: RolloutRunning, Percent: 25, Targeted: 3120, Downloaded: 2911, Updated: 2790, Failed: 4,
				MaxFailures: 50, Started: ago(26 * time.Hour)},
			{ID: "r-0005", Release: "2.4.0", Cohort: "lab", State: RolloutPaused, Percent: 50, Targeted: 40, Downloaded: 22, Updated: 20, Failed: 0,
				MaxFailures: 2, Started: ago(30 * time.Hour)},
			{ID: "r-0004", Release: "2.3.1", State: RolloutDone, Percent: 100, Targeted: 9690, Downloaded: 9690, Updated: 9690, Failed: 0,
				MaxFailuresPercent: 1, Started: ago(20 * 24 * time.Hour)},
		},
		Orders: []Order{
			{ID: "4f1c9a7e2b8d4c6fa0e1d2c3b4a59687", State: "active", Count: 20000, Used: 12480, Spoiled: 61, Remaining: 7459,
				NotAfter: now.AddDate(0, 3, 0).Truncate(24 * time.Hour), Lines: []Line{
					{Name: "shenzhen-1", Count: 12000, Used: 8120, Spoiled: 44, Remaining: 3836},
					{Name: "shenzhen-2", Count: 8000, Used: 4360, Spoiled: 17, Remaining: 3623},
				}},
			{ID: "0b7e5d3c1a2f4e6d8c9b0a1f2e3d4c5b", State: "active", Count: 500, Used: 0, Spoiled: 0, Remaining: 500,
				NotAfter: now.AddDate(0, 6, 0).Truncate(24 * time.Hour)},
			{ID: "c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8", State: "revoked", Count: 1000, Used: 212, Spoiled: 3, Remaining: 785,
				NotAfter: now.AddDate(0, -1, 0).Truncate(24 * time.Hour)},
		},
		Audit: Audit{LogSize: 25319, LatestCheckpoint: ago(40 * time.Second),
			LastAudit: &AuditResult{Time: ago(7 * time.Hour), Size: 25002, OK: true}},
	}
	details := []string{"boot check failed: image hash", "rolled back after 3 boots", "flash write error"}
	for i := range 16 {
		d := Device{ID: hexID(i + 1), Version: "2.4.0", LastSeen: ago(time.Duration(7+i*13) * time.Second), LastReport: ReportSuccess}
		switch {
		case i < 3:
			d.Version, d.LastReport, d.Detail = "2.3.1", ReportFailure, details[i]
		case i%5 == 0:
			d.Version, d.LastReport = "2.3.1", ""
		}
		v.Devices = append(v.Devices, d)
	}
	return v
}

// newTLSServer starts an HTTPS server for h with a fresh self-signed
// certificate for 127.0.0.1 and returns it with the base64 SHA-256 of the
// certificate's public key (for Chromium's
// --ignore-certificate-errors-spki-list); ts.Client() trusts it.
func newTLSServer(t testing.TB, h http.Handler) (*httptest.Server, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sbm dashboard test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(h)
	ts.TLS = TLSConfig(&tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}}})
	ts.StartTLS()
	t.Cleanup(ts.Close)
	spki := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return ts, base64.StdEncoding.EncodeToString(spki[:])
}
