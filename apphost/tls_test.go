package apphost_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sbm-project/sbm/apphost"
	"github.com/sbm-project/sbm/attest/report"
	"github.com/sbm-project/sbm/attest/verifier"
	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/sbm"
	"github.com/sbm-project/sbm/sim"
	"github.com/sbm-project/sbm/trust"
	"github.com/sbm-project/sbm/vmcu"
)

// minimalWasm is the smallest WebAssembly module: what a device whose
// Launch hook never runs the application needs installed.
var minimalWasm = []byte("\x00asm\x01\x00\x00\x00")

// withServices provisions a locked device of suite with the real SBM,
// installs a minimal application and runs f on the device's goroutine
// with the SBM's runtime services, as the runtime would.
func withServices(t *testing.T, c *trust.Context, f func(svc sbm.Services)) *realDevice {
	done := make(chan struct{})
	var once atomic.Bool
	fw := vmcu.FirmwareFunc(func(ctx context.Context, hw *hal.Hardware) {
		sbm.Boot(hw, &sbm.Options{Launch: func(app *sbm.AppInfo) {
			if once.Swap(true) {
				return
			}
			defer close(done)
			f(app.Services)
		}})
	})
	v := newRealDeviceOf(t, fw, c)
	v.program(minimalWasm, "1.0.0", 1)
	select {
	case <-done:
	case <-v.ctx.Done():
		t.Fatal("the application hook did not finish")
	}
	return v
}

// mtlsServer is a TLS 1.3 server that requires a client certificate of
// the device CA of c; it answers the client certificate's common name.
func mtlsServer(t *testing.T, c *trust.Context, hits *atomic.Int32) *httptest.Server {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		fmt.Fprint(w, r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	pool := x509.NewCertPool()
	pool.AddCert(c.DeviceCACertificate())
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// roots returns a pool with the server's certificate.
func roots(srv *httptest.Server) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(srv.Certificate())
	return p
}

// get makes one GET over a TLS connection dialled and handshaken on the
// calling goroutine (the device's), with cfg.
func get(srv *httptest.Server, cfg *tls.Config) (string, error) {
	addr := srv.Listener.Addr().String()
	conn, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	req, err := http.NewRequest(http.MethodGet, "https://"+addr+"/who", nil)
	if err != nil {
		return "", err
	}
	if err := req.Write(conn); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %s", resp.Status)
	}
	return string(b), err
}

// TestDeviceTLS: a real TLS 1.3 server that requires and verifies a client
// certificate of the device CA accepts the device's certificate with the
// CertificateVerify signed through the SBM's tls_sign (both suites); the
// same key refuses TLS 1.2, a server of another device CA refuses the
// device, and the Signer signs nothing but a TLS 1.3 client
// CertificateVerify.
func TestDeviceTLS(t *testing.T) {
	for _, suite := range []trust.Suite{trust.SuiteP256, trust.SuiteEd25519} {
		t.Run(string(suite), func(t *testing.T) {
			if testing.Short() {
				t.Skip("provisions a device")
			}
			var hits, otherHits atomic.Int32
			c := newContext(t, suite)
			srv := mtlsServer(t, c, &hits)
			other := mtlsServer(t, otherContext(t, suite), &otherHits)
			var got string
			var errs = map[string]error{}
			v := withServices(t, c, func(svc sbm.Services) {
				cert, err := apphost.ClientCertificate(svc)
				if err != nil {
					errs["certificate"] = err
					return
				}
				got, errs["mtls"] = get(srv, apphost.ClientTLSConfig(svc, roots(srv), ""))
				// TLS 1.2 would need a signature over the handshake
				// messages: the Signer refuses it.
				cfg := apphost.ClientTLSConfig(svc, roots(srv), "")
				cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
				_, errs["tls12"] = get(srv, cfg)
				_, errs["other ca"] = get(other, apphost.ClientTLSConfig(svc, roots(other), ""))
				// The Signer directly: no digest, no arbitrary message, no
				// server CertificateVerify, no odd transcript size.
				s := cert.PrivateKey.(crypto.MessageSigner)
				d := sha256.Sum256([]byte("anything"))
				_, errs["sign digest"] = s.Sign(nil, d[:], crypto.SHA256)
				_, errs["arbitrary"] = s.SignMessage(nil, []byte("attestation claims"), crypto.SHA256)
				pad := strings.Repeat(" ", 64)
				_, errs["server context"] = s.SignMessage(nil, []byte(pad+"TLS 1.3, server CertificateVerify\x00"+string(d[:])), crypto.SHA256)
				_, errs["33-byte hash"] = s.SignMessage(nil, []byte(pad+"TLS 1.3, client CertificateVerify\x00"+string(d[:])+"x"), crypto.SHA256)
			})
			id := hex.EncodeToString(v.prov.ID)
			if errs["certificate"] != nil || errs["mtls"] != nil || got != "SBM device "+id {
				t.Fatalf("mTLS with the SBM-held key: %q, %v, %v", got, errs["certificate"], errs["mtls"])
			}
			if hits.Load() != 1 || otherHits.Load() != 0 {
				t.Errorf("server reached %d times, the other CA's %d times; want 1 and 0", hits.Load(), otherHits.Load())
			}
			if err := errs["tls12"]; err == nil || !strings.Contains(err.Error(), apphost.ErrNotTLS13ClientVerify.Error()) {
				t.Errorf("TLS 1.2: %v", err)
			}
			if errs["other ca"] == nil {
				t.Error("a server of another device CA accepted the device")
			}
			for _, k := range []string{"sign digest", "arbitrary", "server context", "33-byte hash"} {
				if !errors.Is(errs[k], apphost.ErrNotTLS13ClientVerify) {
					t.Errorf("%s: %v", k, errs[k])
				}
			}
		})
	}
}

// otherContext returns a fresh context of suite (another OEM's device CA).
func otherContext(t *testing.T, suite trust.Suite) *trust.Context {
	c, err := trust.Init(t.TempDir()+"/other", &trust.InitOptions{Suite: suite})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRealSBMFetchHTTPS: the updater, on the real SBM, talks to the
// configured service over https with mTLS only — the device certificate
// from the SBM, the CertificateVerify through tls_sign: it posts an install
// report the service verifies against the client certificate, downloads
// its UPK and the published package (spliced together into staging) and
// installs it, and after the reboot posts a report that says so; an https URL of any other origin is refused without a
// connection.
func TestRealSBMFetchHTTPS(t *testing.T) {
	if testing.Short() {
		t.Skip("provisions a device")
	}
	c := newContext(t, trust.SuiteP256)
	var hits atomic.Int32
	var pkg, devUPK atomic.Value
	reports := make(chan *report.Report, 4)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/v2.pkg":
			w.Write(pkg.Load().([]byte))
		case r.Method == http.MethodGet && r.URL.Path == "/v2.upk":
			w.Write(devUPK.Load().([]byte))
		case r.Method == http.MethodPost && r.URL.Path == "/reports":
			b, _ := io.ReadAll(io.LimitReader(r.Body, 4096))
			rep, err := verifier.VerifyReport(b, r.TLS.PeerCertificates[0])
			if err != nil || r.Header.Get("Content-Type") != `application/cose; cose-type="cose-sign1"` {
				http.Error(w, fmt.Sprint("bad report: ", err), http.StatusBadRequest)
				return
			}
			reports <- rep
			w.WriteHeader(http.StatusNoContent)
		default:
			http.NotFound(w, r)
		}
	}))
	pool := x509.NewCertPool()
	pool.AddCert(c.DeviceCACertificate())
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.StartTLS()
	defer srv.Close()
	opts := &apphost.Options{Cache: apphost.TestCache, ServiceURL: srv.URL, ServiceRoots: roots(srv)}
	v := newRealDeviceOf(t, sim.FirmwareWithApps(nil, opts), c)

	updater := apphost.BuiltApp("updater")
	v.program(updater, "1.0.0", 1)
	waitFor(t, &v.out, "ready")
	// The package as published (the same for every device) and this
	// device's UPK, served apart: the updater splices them into staging.
	p2, u2 := v.pack(updater, "2.0.0", 2)
	b, err := p2.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	pkg.Store(b)
	devUPK.Store(u2)
	// Another origin (same machine, other name) is denied.
	other := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	v.send("update " + other + "/v2.pkg")
	waitFor(t, &v.out, "url not allowed")
	if hits.Load() != 0 {
		t.Fatal("a denied origin reached the server")
	}
	id := v.prov.ID
	v.send("send-report " + srv.URL + "/reports 00112233445566778899")
	r1 := <-reports
	if !bytes.Equal(r1.DeviceID, id) || r1.Updated || !r1.HasResult || r1.Result != 0 || r1.App.Version != "1.0.0" ||
		!bytes.Equal(r1.Nonce, []byte{0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99}) {
		t.Fatalf("report before the update: %+v", r1)
	}
	v.send("update " + srv.URL + "/v2.pkg " + srv.URL + "/v2.upk")
	waitMatch(t, &v.out, regexp.MustCompile(`application 2\.0\.0 on SBM[\s\S]*ready`))
	v.send("send-report " + srv.URL + "/reports")
	r2 := <-reports
	d2 := sha256.Sum256(p2.Manifest)
	if !r2.Updated || r2.Result != 0 || r2.Detail != "installed 2.0.0" || !r2.HasPackage || r2.Package != d2 ||
		r2.App.Version != "2.0.0" || r2.App.ManifestDigest != d2 || r2.Sequence <= r1.Sequence || len(r2.Nonce) != 0 {
		t.Fatalf("report after the update: %+v (first %#x)", r2, r1.Sequence)
	}
	waitFor(t, &v.out, "report: ")
	if n := hits.Load(); n != 4 {
		t.Fatalf("server hits %d, want 4 (report, upk, package, report)", n)
	}
}
