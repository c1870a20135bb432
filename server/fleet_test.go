package server

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sbm-project/sbm/attest/report"
	"github.com/sbm-project/sbm/image"
	"github.com/sbm-project/sbm/internal/cose"
	"github.com/sbm-project/sbm/internal/firmware"
	"github.com/sbm-project/sbm/server/auditlog"
	"github.com/sbm-project/sbm/server/store"
	"github.com/sbm-project/sbm/server/store/postgres"
	"github.com/sbm-project/sbm/server/store/sqlite"
	"github.com/sbm-project/sbm/trust"
)

// reopeners open a store of each engine on one database, again and again
// (a service restart).
var reopeners = []struct {
	name string
	db   func(t *testing.T) func() store.Store
}{
	{"sqlite", func(t *testing.T) func() store.Store {
		dir := t.TempDir()
		return func() store.Store {
			s, err := sqlite.Open(context.Background(), dir)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	}},
	{"postgres", func(t *testing.T) func() store.Store {
		url := pgURL(t)
		return func() store.Store {
			s, err := postgres.Open(context.Background(), url)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	}},
}

// fleetDev is a device certified through the station API, with its
// certificate.
type fleetDev struct {
	*testDevice
	cert []byte
	seq  uint64
}

// certifyFleet certifies n devices through the real station API.
func certifyFleet(t *testing.T, f *fixture, n int) []*fleetDev {
	t.Helper()
	st := newStation(t, f.ctx, "line-a")
	id := stationOrder(t, f, uint64(n), st)
	cl := f.station(t, st)
	devs := make([]*fleetDev, n)
	for i := range devs {
		d := newTestDevice(t, f.ctx, i)
		resp, err := cl.Certify(context.Background(), &CertifyRequest{Order: id, CSR: d.csr(t)})
		if err != nil {
			t.Fatal(err)
		}
		devs[i] = &fleetDev{testDevice: d, cert: resp.Certificate, seq: 1 << 32}
	}
	return devs
}

// published is a release published on the service.
type published struct {
	version string
	digest  [32]byte
	pkg     []byte
}

func publish(t *testing.T, f *fixture, version string, counter uint32) *published {
	t.Helper()
	data := bytes.Repeat([]byte(version), 3000)
	cr, err := image.Create(f.ctx, &firmware.Image{Data: data, Format: firmware.FormatBinary}, &image.CreateOptions{Version: version, SecurityCounter: counter, ClassUPK: true})
	if err != nil {
		t.Fatal(err)
	}
	pkg, err := cr.Package.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.operator(t).PublishRelease(context.Background(), pkg, false); err != nil {
		t.Fatal(err)
	}
	return &published{version: version, digest: cr.ManifestDigest, pkg: pkg}
}

// tlsClient is an HTTPS client of the service presenting cert (DER) with
// key; no certificate at all if cert is nil.
func tlsClient(t *testing.T, c *trust.Context, cert []byte, key crypto.Signer) *http.Client {
	t.Helper()
	tc := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: c.ServiceCAPool()}
	if cert != nil {
		tc.Certificates = []tls.Certificate{{Certificate: [][]byte{cert}, PrivateKey: key}}
	}
	cl := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 30 * time.Second}
	t.Cleanup(cl.CloseIdleConnections)
	return cl
}

func (f *fixture) deviceClient(t *testing.T, d *fleetDev) *http.Client {
	return tlsClient(t, f.ctx, d.cert, d.key)
}

// ddi is the device API base of device id.
func (f *fixture) ddi(id string) string { return f.url + "/DEFAULT/controller/v1/" + id }

// call makes a request and returns the status and body (status 0 when
// the connection failed).
func call(t *testing.T, cl *http.Client, method, url string, body []byte, hdr ...string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := cl.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// poll polls as device d and returns the deploymentBase link ("" if
// none).
func (f *fixture) poll(t *testing.T, d *fleetDev) string {
	t.Helper()
	code, body := call(t, f.deviceClient(t, d), http.MethodGet, f.ddi(d.hexID()), nil)
	if code != http.StatusOK {
		t.Fatalf("poll of %s: %d %s", d.hexID(), code, body)
	}
	var p DDIPoll
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	if p.Config.Polling.Sleep != "00:05:00" {
		t.Fatalf("polling sleep %q", p.Config.Polling.Sleep)
	}
	return p.Links["deploymentBase"].Href
}

// signReport signs a report of d as its SBM would: the next sequence,
// the result about pkg, app the running release.
func (d *fleetDev) report(t *testing.T, result int, pkg, app *published) []byte {
	t.Helper()
	d.seq++
	r := &report.Report{DeviceID: d.id, Sequence: d.seq, Boots: 1, Updated: result == 0}
	if result >= 0 {
		r.HasResult, r.Result, r.Detail = true, uint8(result), fmt.Sprintf("result %d", result)
	}
	if pkg != nil {
		r.HasPackage, r.Package = true, pkg.digest
	}
	if app != nil {
		r.HasApp, r.App = true, report.App{ManifestDigest: app.digest, Measurement: sha256.Sum256([]byte(app.version)), Version: app.version, SecurityCounter: 1}
	}
	alg := cose.AlgES256
	if _, ok := d.key.Public().(ed25519.PublicKey); ok {
		alg = cose.AlgEdDSA
	}
	b, err := report.Append(nil, r, d.key, alg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (f *fixture) sendReport(t *testing.T, d *fleetDev, rep []byte) (int, ReportAnswer) {
	t.Helper()
	code, body := call(t, f.deviceClient(t, d), http.MethodPost, f.ddi(d.hexID())+"/reports", rep, "Content-Type", "application/cose")
	var ans ReportAnswer
	if code == http.StatusCreated {
		if err := json.Unmarshal(body, &ans); err != nil {
			t.Fatal(err)
		}
	}
	return code, ans
}

func (f *fixture) feedback(t *testing.T, d *fleetDev, action, execution, finished string) int {
	t.Helper()
	body := fmt.Sprintf(`{"id":%q,"time":"20261201T120000","status":{"execution":%q,"result":{"finished":%q,"progress":{"cnt":1,"of":1}},"details":["x"]}}`, action, execution, finished)
	code, msg := call(t, f.deviceClient(t, d), http.MethodPost, f.ddi(d.hexID())+"/deploymentBase/"+action+"/feedback", []byte(body), "Content-Type", "application/json")
	if code != http.StatusOK {
		t.Logf("feedback %s/%s: %d %s", execution, finished, code, msg)
	}
	return code
}

func (f *fixture) startRollout(t *testing.T, rel *published, percent float64, cohort, maxFailures string) *RolloutStatus {
	t.Helper()
	st, err := f.operator(t).StartRollout(context.Background(), &RolloutRequest{Release: rel.version, Percent: percent, Cohort: cohort, MaxFailures: maxFailures})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (f *fixture) rollout(t *testing.T, id string) *RolloutStatus {
	t.Helper()
	st, err := f.operator(t).Rollout(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func wantRollout(t *testing.T, st *RolloutStatus, state string, targeted, downloaded, updated, failed int64) {
	t.Helper()
	if st.State != state || st.Targeted != targeted || st.Downloaded != downloaded || st.Updated != updated || st.Failed != failed {
		t.Fatalf("rollout %s: %s targeted %d downloaded %d updated %d failed %d; want %s %d %d %d %d", st.ID, st.State,
			st.Targeted, st.Downloaded, st.Updated, st.Failed, state, targeted, downloaded, updated, failed)
	}
}

// fleetSnapshot is what a refused device request must leave unchanged.
type fleetSnapshot struct {
	logSize  int64
	rollouts string
	actions  string
}

func (f *fixture) fleetSnapshot(t *testing.T, devs ...*fleetDev) fleetSnapshot {
	t.Helper()
	ctx := context.Background()
	n, err := f.store.Log().Size(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ros, err := f.store.Rollouts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rb, _ := json.Marshal(ros)
	var acts []*store.Action
	for _, d := range devs {
		a, err := f.store.DeviceActions(ctx, d.hexID())
		if err != nil {
			t.Fatal(err)
		}
		acts = append(acts, a...)
	}
	ab, _ := json.Marshal(acts)
	return fleetSnapshot{n, string(rb), string(ab)}
}

// startStoppable runs a server over st until stop is called or the test
// ends (st is not closed).
func startStoppable(t *testing.T, c *trust.Context, st store.Store) (*fixture, func()) {
	t.Helper()
	logs := &bytes.Buffer{}
	srv, err := New(Config{Context: c, Store: st, Logger: slog.New(slog.NewJSONHandler(&lockedBuffer{b: logs}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("service log:\n%s", logs)
		}
	})
	tc, err := srv.TLSConfig([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, tc) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return &fixture{ctx: c, store: st, srv: srv, url: "https://" + ln.Addr().String(), logs: logs}, stop
}

// issueDeviceCert issues a device certificate of c for id with a new
// key (a device the records do not know, or a clone of a known ID).
func issueDeviceCert(t *testing.T, c *trust.Context, id []byte) ([]byte, crypto.Signer) {
	t.Helper()
	key, err := c.Suite().GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	ka, err := c.Suite().GenerateKeyAgreementKey()
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "device"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := c.IssueDeviceCertificate(csr, id, ka.PublicKey(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return cert.Raw, key
}

// TestFleetRefusals: the device API serves only a certified device, with
// the certificate it was certified with, not revoked, acting for itself;
// every refusal issues nothing and logs nothing. Service certificates
// are refused on device routes and device certificates everywhere else.
func TestFleetRefusals(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			c := newContext(t)
			f := start(t, c, e.open(t))
			ctx := context.Background()
			devs := certifyFleet(t, f, 3)
			a, b, revoked := devs[0], devs[1], devs[2]
			rel := publish(t, f, "2.0.0", 2)
			ro := f.startRollout(t, rel, 100, "", "")
			logBefore := f.auditLog(t).Size
			for range 2 { // the second is a no-op: one log entry
				if d, err := f.operator(t).RevokeDevice(ctx, revoked.hexID()); err != nil || !d.Revoked {
					t.Fatalf("revoke: %+v, %v", d, err)
				}
			}
			if _, err := f.operator(t).RevokeDevice(ctx, "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"); err == nil || !strings.Contains(err.Error(), "(404)") {
				t.Fatalf("revoke of an unknown device: %v", err)
			}
			rep := f.auditLog(t)
			var revokedCount uint64
			for _, o := range rep.Orders {
				revokedCount += o.DevicesRevoked
			}
			if at, ok := rep.RevokedDevices[revoked.hexID()]; rep.Size != logBefore+1 || revokedCount != 1 || !ok || at != logBefore {
				t.Fatalf("after the revocations: log %d → %d, %d revoked, %v", logBefore, rep.Size, revokedCount, rep.RevokedDevices)
			}
			// a has an action; b has none yet.
			if link := f.poll(t, a); !strings.HasSuffix(link, "/deploymentBase/"+ro.ID) {
				t.Fatalf("deployment link %q", link)
			}

			unknownCert, unknownKey := issueDeviceCert(t, c, bytes.Repeat([]byte{0xee}, 16))
			cloneCert, cloneKey := issueDeviceCert(t, c, b.id)
			other := newContext(t)
			foreignCert, foreignKey := issueDeviceCert(t, other, b.id)
			op := mustOperator(t, c)
			station := newStation(t, c, "line-a")
			clients := map[string]*http.Client{
				"none":     tlsClient(t, c, nil, nil),
				"foreign":  tlsClient(t, c, foreignCert, foreignKey),
				"unknown":  tlsClient(t, c, unknownCert, unknownKey),
				"clone":    tlsClient(t, c, cloneCert, cloneKey),
				"a":        f.deviceClient(t, a),
				"revoked":  f.deviceClient(t, revoked),
				"operator": tlsClient(t, c, op.Certificate.Raw, op.Key),
				"station":  tlsClient(t, c, station.Certificate.Raw, station.Key),
			}
			bPath, unknownPath, revokedPath := f.ddi(b.hexID()), f.ddi("eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"), f.ddi(revoked.hexID())
			action := "/deploymentBase/" + ro.ID
			tests := []struct {
				name, client, method, url string
				code                      int // 0: the handshake fails
				want                      string
			}{
				{"no client certificate", "none", "GET", bPath, 0, ""},
				{"another CA's device", "foreign", "GET", bPath, 0, ""},
				{"another CA's device, UPK", "foreign", "GET", bPath + action + "/upk", 0, ""},
				{"device not in the records", "unknown", "GET", unknownPath, 403, "device not in the production records"},
				{"device not in the records, report", "unknown", "POST", unknownPath + "/reports", 403, "device not in the production records"},
				{"clone of a certified device", "clone", "GET", bPath, 403, "certificate is not the one recorded for the device"},
				{"clone asks the UPK", "clone", "GET", bPath + action + "/upk", 403, "certificate is not the one recorded"},
				{"revoked device polls", "revoked", "GET", revokedPath, 403, "device revoked"},
				{"revoked device asks the UPK", "revoked", "GET", revokedPath + action + "/upk", 403, "device revoked"},
				{"another device's poll", "a", "GET", bPath, 403, "a device may act only for itself"},
				{"another device's deployment", "a", "GET", bPath + action, 403, "a device may act only for itself"},
				{"another device's UPK", "a", "GET", bPath + action + "/upk", 403, "a device may act only for itself"},
				{"another device's feedback", "a", "POST", bPath + action + "/feedback", 403, "a device may act only for itself"},
				{"another device's artifact", "a", "GET", bPath + "/softwaremodules/" + hex.EncodeToString(rel.digest[:]) + "/artifacts/sbm-2.0.0.pkg", 403, "a device may act only for itself"},
				{"operator on the device API", "operator", "GET", bPath + action + "/upk", 403, "not a device certificate (it is a operator certificate)"},
				{"station on the device API", "station", "GET", bPath, 403, "not a device certificate (it is a station certificate)"},
				{"device on the management API", "a", "GET", f.url + "/v1/rollouts", 403, "(it names none)"},
				{"device revokes a device", "a", "POST", f.url + "/v1/fleet/" + b.hexID() + "/revoke", 403, ""},
				{"device on healthz", "a", "GET", f.url + "/healthz", 403, "device certificates are served only on the device API"},
				{"device on the log checkpoint", "a", "GET", f.url + "/v1/log/checkpoint", 403, "device certificates are served only on the device API"},
				{"device on the station API", "a", "GET", f.url + "/v1/station/anchors", 403, ""},
				{"unknown action", "a", "GET", f.ddi(a.hexID()) + "/deploymentBase/0123456789abcdef/upk", 404, "no deployment offered"},
			}
			before := f.fleetSnapshot(t, devs...)
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					var body []byte
					if tt.method == "POST" {
						body = []byte(`{"status":{"execution":"closed","result":{"finished":"failure"}}}`)
					}
					code, msg := call(t, clients[tt.client], tt.method, tt.url, body)
					if code != tt.code || !strings.Contains(string(msg), tt.want) {
						t.Fatalf("%d %s; want %d %q", code, msg, tt.code, tt.want)
					}
					if got := f.fleetSnapshot(t, devs...); got != before {
						t.Fatalf("a refused request changed the service:\n%+v\n%+v", before, got)
					}
				})
			}
			// The operator and stations still reach what they did.
			if err := f.client(t, station).Health(ctx); err != nil {
				t.Fatal(err)
			}
			if acts, _ := f.store.DeviceActions(ctx, b.hexID()); len(acts) != 0 {
				t.Fatalf("b was offered through refused requests: %+v", acts)
			}
		})
	}
}

// TestFleetUpdate: a device polls, gets its deployment, downloads the
// package (with ranges), gets its own UPK (the same on retry, logged
// once), reports progress and a signed install; failures halt the
// rollout at its threshold.
func TestFleetUpdate(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			c := newContext(t)
			f := start(t, c, e.open(t))
			ctx := context.Background()
			devs := certifyFleet(t, f, 5)
			v1 := publish(t, f, "1.0.0", 1)
			v2 := publish(t, f, "2.0.0", 2)
			for _, d := range devs { // all run 1.0.0
				if code, _ := f.sendReport(t, d, d.report(t, 0, v1, v1)); code != http.StatusCreated {
					t.Fatalf("first report: %d", code)
				}
			}
			if _, err := f.operator(t).StartRollout(ctx, &RolloutRequest{Release: "9.9.9", Percent: 10}); err == nil || !strings.Contains(err.Error(), "(404)") {
				t.Fatalf("rollout of an unpublished release: %v", err)
			}
			for _, bad := range []RolloutRequest{{Release: "2.0.0", Percent: 0}, {Release: "2.0.0", Percent: 101}, {Release: "2.0.0", Percent: 0.001},
				{Release: "2.0.0", Percent: 50, MaxFailures: "x"}, {Release: "2.0.0", Percent: 50, MaxFailures: "120%"}} {
				if _, err := f.operator(t).StartRollout(ctx, &bad); err == nil || !strings.Contains(err.Error(), "(400)") {
					t.Fatalf("rollout %+v: %v", bad, err)
				}
			}
			ro := f.startRollout(t, v2, 100, "", "1")
			if ro.Release != "2.0.0" || ro.Percent != 100 || ro.MaxFailures != "1" || ro.ManifestDigest != hex.EncodeToString(v2.digest[:]) {
				t.Fatalf("started %+v", ro)
			}

			d := devs[0]
			link := f.poll(t, d)
			if link != f.ddi(d.hexID())+"/deploymentBase/"+ro.ID {
				t.Fatalf("link %q", link)
			}
			if again := f.poll(t, d); again != link {
				t.Fatalf("second poll %q", again)
			}
			wantRollout(t, f.rollout(t, ro.ID), "running", 1, 0, 0, 0)

			cl := f.deviceClient(t, d)
			code, body := call(t, cl, "GET", link, nil)
			if code != 200 {
				t.Fatalf("deployment: %d %s", code, body)
			}
			var dep DDIDeployment
			if err := json.Unmarshal(body, &dep); err != nil {
				t.Fatal(err)
			}
			pkgSum := sha256.Sum256(v2.pkg)
			if dep.ID != ro.ID || dep.Deployment.Download != "forced" || len(dep.Deployment.Chunks) != 1 || len(dep.Deployment.Chunks[0].Artifacts) != 1 {
				t.Fatalf("deployment %s", body)
			}
			art := dep.Deployment.Chunks[0].Artifacts[0]
			if art.Size != int64(len(v2.pkg)) || art.Hashes["sha256"] != hex.EncodeToString(pkgSum[:]) || art.Links["download"].Href == "" || dep.Links["upk"].Href != link+"/upk" {
				t.Fatalf("artifact %+v, links %+v", art, dep.Links)
			}
			// Download: whole, then a range (a resumed download).
			code, full := call(t, cl, "GET", art.Links["download"].Href, nil)
			if code != 200 || !bytes.Equal(full, v2.pkg) {
				t.Fatalf("download: %d, %d bytes", code, len(full))
			}
			code, got := call(t, cl, "GET", art.Links["download"].Href, nil, "Range", "bytes=100-199")
			if code != http.StatusPartialContent || !bytes.Equal(got, v2.pkg[100:200]) {
				t.Fatalf("range: %d, %d bytes", code, len(got))
			}
			if code, _ := call(t, cl, "GET", strings.Replace(art.Links["download"].Href, "sbm-2.0.0", "sbm-1.0.0", 1), nil); code != 404 {
				t.Fatalf("another file name: %d", code)
			}
			v1Art := f.ddi(d.hexID()) + "/softwaremodules/" + hex.EncodeToString(v1.digest[:]) + "/artifacts/sbm-1.0.0.pkg"
			if code, _ := call(t, cl, "GET", v1Art, nil); code != 404 {
				t.Fatalf("a release not offered: %d", code)
			}

			// The UPK: issued once, the same bytes on retry, logged once
			// with the update service as its station.
			logBefore, _ := f.store.Log().Size(ctx)
			code, u1 := call(t, cl, "GET", link+"/upk", nil)
			if code != 200 || len(u1) == 0 {
				t.Fatalf("upk: %d %s", code, u1)
			}
			code, u2 := call(t, cl, "GET", link+"/upk", nil)
			if code != 200 || !bytes.Equal(u1, u2) {
				t.Fatalf("upk retry: %d, same %v", code, bytes.Equal(u1, u2))
			}
			// As the device verifies it: the package decrypts with this UPK
			// and the device's key, and with no other device's.
			p, err := image.Parse(full)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := image.Verify(c, p, &image.VerifyOptions{Key: d.ka, UPK: u1, DeviceID: d.id}); err != nil {
				t.Fatalf("the device's UPK: %v", err)
			}
			if _, err := image.Verify(c, p, &image.VerifyOptions{Key: devs[1].ka, UPK: u1, DeviceID: devs[1].id}); err == nil {
				t.Fatal("another device opens this device's UPK")
			}
			if code, msg := call(t, f.deviceClient(t, devs[1]), "GET", f.ddi(devs[1].hexID())+"/deploymentBase/"+ro.ID+"/upk", nil); code != 404 {
				t.Fatalf("UPK of a device that never polled: %d %s", code, msg)
			}
			if n, _ := f.store.Log().Size(ctx); n != logBefore+1 {
				t.Fatalf("log %d → %d after two UPK requests", logBefore, n)
			}
			recs, err := f.store.Log().ReadRecords(ctx, logBefore, logBefore+1)
			if err != nil {
				t.Fatal(err)
			}
			entry, err := auditlog.ParseEntry(recs[0].Entry)
			if err != nil {
				t.Fatal(err)
			}
			if ud := sha256.Sum256(u1); entry.Kind != auditlog.UPKIssued || !bytes.Equal(entry.Station, make([]byte, 32)) ||
				!bytes.Equal(entry.Device, d.id) || *entry.Digest != ud {
				t.Fatalf("log entry %+v", entry)
			}
			if rep := f.auditLog(t); rep.Size != logBefore+1 {
				t.Fatalf("audit %+v", rep)
			}

			// Feedback, then the signed report of the install.
			for _, st := range []struct{ exec, fin string }{{"proceeding", "none"}, {"downloading", "none"}, {"downloaded", "none"}, {"downloaded", "none"}} {
				if code := f.feedback(t, d, ro.ID, st.exec, st.fin); code != 200 {
					t.Fatalf("feedback %s: %d", st.exec, code)
				}
			}
			// An older DDI client's numeric id is accepted.
			if code, msg := call(t, cl, "POST", link+"/feedback", []byte(`{"id":8,"status":{"execution":"proceeding","result":{"finished":"none"}}}`)); code != 200 {
				t.Fatalf("numeric id: %d %s", code, msg)
			}
			if code := f.feedback(t, d, ro.ID, "exploded", "none"); code != 400 {
				t.Fatalf("unknown execution state: %d", code)
			}
			if code := f.feedback(t, d, ro.ID, "closed", "success"); code != 200 {
				t.Fatalf("closed: %d", code)
			}
			wantRollout(t, f.rollout(t, ro.ID), "running", 1, 1, 0, 0) // closed/success counts only with the report
			replay := d.report(t, 0, v2, v2)
			code, ans := f.sendReport(t, d, replay)
			if code != 201 || ans.Action != "installed" || ans.Rollout != ro.ID || ans.Halted {
				t.Fatalf("report: %d %+v", code, ans)
			}
			if code := f.feedback(t, d, ro.ID, "closed", "success"); code != 200 {
				t.Fatalf("closed after the report: %d", code)
			}
			if code, _ := f.sendReport(t, d, replay); code != 409 {
				t.Fatalf("replayed report: %d", code)
			}
			forged := devs[1].report(t, 0, v2, v2) // signed by another device's key
			if code, _ := call(t, cl, "POST", f.ddi(d.hexID())+"/reports", forged); code != 422 {
				t.Fatalf("another device's report on this device's connection: %d", code)
			}
			bad := d.report(t, 0, v2, v2)
			bad[len(bad)-70] ^= 1
			if code, _ := f.sendReport(t, d, bad); code != 422 {
				t.Fatalf("flipped bit: %d", code)
			}
			wantRollout(t, f.rollout(t, ro.ID), "running", 1, 1, 1, 0)
			if link := f.poll(t, d); link != "" {
				t.Fatalf("installed device offered %q", link)
			}
			fl, err := f.operator(t).Fleet(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(fl) != 5 {
				t.Fatalf("fleet of %d", len(fl))
			}
			for _, fd := range fl {
				if fd.DeviceID == d.hexID() && (fd.Version != "2.0.0" || fd.LastSeen.IsZero() || fd.LastReport.IsZero() || fd.Result == nil || *fd.Result != 0) {
					t.Fatalf("fleet state %+v", fd)
				}
			}
			reps, _ := f.store.Reports(ctx, d.hexID())
			if len(reps) != 2 || !bytes.Equal(reps[1].Report, replay) {
				t.Fatalf("stored reports %+v", reps)
			}

			// Failures: one by feedback (at the threshold of 1), one by a
			// signed report (past it): halted, and a new device gets nothing.
			f1, f2, late := devs[1], devs[2], devs[3]
			for _, x := range []*fleetDev{f1, f2} {
				if f.poll(t, x) == "" {
					t.Fatal("no offer")
				}
			}
			if code := f.feedback(t, f1, ro.ID, "closed", "failure"); code != 200 {
				t.Fatalf("failure feedback: %d", code)
			}
			wantRollout(t, f.rollout(t, ro.ID), "running", 3, 1, 1, 1)
			code, ans = f.sendReport(t, f2, f2.report(t, 14, v2, v1))
			if code != 201 || ans.Action != "failed" || !ans.Halted {
				t.Fatalf("failure report: %d %+v", code, ans)
			}
			wantRollout(t, f.rollout(t, ro.ID), "halted", 3, 1, 1, 2)
			if link := f.poll(t, late); link != "" {
				t.Fatalf("halted rollout offered %q", link)
			}
			if code := f.feedback(t, f1, ro.ID, "downloaded", "none"); code != 409 {
				t.Fatalf("feedback after the failure: %d", code)
			}
			if _, err := f.operator(t).StartRollout(ctx, &RolloutRequest{Release: "1.0.0", Percent: 100}); err == nil || !strings.Contains(err.Error(), "(409)") {
				t.Fatalf("new rollout while one is halted: %v", err)
			}
		})
	}
}

// TestRolloutLifecycle: percent only grows and membership with it; pause
// stops new offers, resume restarts them, abort closes open actions; a
// restart of the service (a new process over the same database) in the
// middle loses nothing.
func TestRolloutLifecycle(t *testing.T) {
	for _, e := range reopeners {
		t.Run(e.name, func(t *testing.T) {
			c := newContext(t)
			open := e.db(t)
			st := open()
			f, stop := startStoppable(t, c, st)
			ctx := context.Background()
			const n = 40
			devs := certifyFleet(t, f, n)
			rel := publish(t, f, "2.0.0", 2)
			ro := f.startRollout(t, rel, 10, "canary", "")
			key := (&store.Rollout{ID: ro.ID, Cohort: "canary"}).CohortKey()
			if _, err := f.operator(t).StartRollout(ctx, &RolloutRequest{Release: "2.0.0", Percent: 100}); err == nil || !strings.Contains(err.Error(), "(409)") {
				t.Fatalf("second rollout while one runs below 100 %%: %v", err)
			}
			offered := map[string]bool{}
			for _, pct := range []float64{10, 25} {
				if pct != 10 {
					if _, err := f.operator(t).SetRolloutPercent(ctx, ro.ID, pct); err != nil {
						t.Fatal(err)
					}
				}
				now := map[string]bool{}
				for _, d := range devs {
					if f.poll(t, d) != "" {
						now[d.hexID()] = true
					}
					if now[d.hexID()] != store.InCohort(key, d.hexID(), int64(pct*100)) {
						t.Fatalf("%s at %v %%: offered %v", d.hexID(), pct, now[d.hexID()])
					}
				}
				for id := range offered {
					if !now[id] {
						t.Fatalf("%s left the cohort at %v %%", id, pct)
					}
				}
				offered = now
				p := pct / 100
				if sd := math.Sqrt(n * p * (1 - p)); math.Abs(float64(len(now))-n*p) > 5*sd {
					t.Fatalf("%d of %d at %v %%", len(now), n, pct)
				}
				if got := f.rollout(t, ro.ID); got.Targeted != int64(len(now)) || got.Percent != pct {
					t.Fatalf("at %v %%: %+v, %d offered", pct, got, len(now))
				}
			}
			cl := f.operator(t)
			if _, err := cl.SetRolloutPercent(ctx, ro.ID, 20); err == nil || !strings.Contains(err.Error(), "(409)") || !strings.Contains(err.Error(), "only grows") {
				t.Fatalf("lowering the percent: %v", err)
			}
			// Pause: those with an action keep it, nobody new is offered.
			if st, err := cl.PauseRollout(ctx, ro.ID); err != nil || st.State != "paused" {
				t.Fatalf("pause: %+v, %v", st, err)
			}
			if _, err := cl.SetRolloutPercent(ctx, ro.ID, 100); err != nil {
				t.Fatal(err)
			}
			var member, outsider *fleetDev
			for _, d := range devs {
				if offered[d.hexID()] && member == nil {
					member = d
				}
				if !offered[d.hexID()] && outsider == nil {
					outsider = d
				}
			}
			if f.poll(t, outsider) != "" || f.poll(t, member) == "" {
				t.Fatal("paused: wrong offers")
			}
			code, upk1 := call(t, f.deviceClient(t, member), "GET", f.ddi(member.hexID())+"/deploymentBase/"+ro.ID+"/upk", nil)
			if code != 200 {
				t.Fatalf("UPK while paused: %d %s", code, upk1)
			}
			if _, err := cl.ResumeRollout(ctx, "0000000000000000"); err == nil || !strings.Contains(err.Error(), "(404)") {
				t.Fatalf("resume of an unknown rollout: %v", err)
			}
			before := f.rollout(t, ro.ID)
			logSize, _ := st.Log().Size(ctx)

			// The restart: this service stops, another starts on the same
			// database.
			stop()
			st.Close()
			st = open()
			t.Cleanup(func() { st.Close() })
			f, _ = startStoppable(t, c, st)
			cl = f.operator(t)
			if got := f.rollout(t, ro.ID); *got != *before {
				t.Fatalf("after the restart %+v, before %+v", got, before)
			}
			if n, _ := st.Log().Size(ctx); n != logSize {
				t.Fatalf("log %d → %d", logSize, n)
			}
			if code, upk2 := call(t, f.deviceClient(t, member), "GET", f.ddi(member.hexID())+"/deploymentBase/"+ro.ID+"/upk", nil); code != 200 || !bytes.Equal(upk1, upk2) {
				t.Fatalf("UPK after the restart: %d, same %v", code, bytes.Equal(upk1, upk2))
			}
			if st, err := cl.ResumeRollout(ctx, ro.ID); err != nil || st.State != "running" || st.Percent != 100 {
				t.Fatalf("resume: %+v, %v", st, err)
			}
			if f.poll(t, outsider) == "" {
				t.Fatal("resumed at 100 %: no offer")
			}
			if st, err := cl.ResumeRollout(ctx, ro.ID); err != nil || st.State != "running" {
				t.Fatalf("resume twice: %+v, %v", st, err)
			}
			// Abort: open actions are closed, nothing more is issued.
			if st, err := cl.AbortRollout(ctx, ro.ID); err != nil || st.State != "aborted" {
				t.Fatalf("abort: %+v, %v", st, err)
			}
			for _, op := range []func(context.Context, string) (*RolloutStatus, error){cl.PauseRollout, cl.ResumeRollout} {
				if _, err := op(ctx, ro.ID); err == nil || !strings.Contains(err.Error(), "(409)") {
					t.Fatalf("after the abort: %v", err)
				}
			}
			if _, err := cl.SetRolloutPercent(ctx, ro.ID, 100); err == nil || !strings.Contains(err.Error(), "(409)") {
				t.Fatalf("percent after the abort: %v", err)
			}
			if f.poll(t, member) != "" || f.poll(t, outsider) != "" {
				t.Fatal("aborted rollout offered")
			}
			logSize, _ = st.Log().Size(ctx)
			if code, _ := call(t, f.deviceClient(t, outsider), "GET", f.ddi(outsider.hexID())+"/deploymentBase/"+ro.ID+"/upk", nil); code != http.StatusGone {
				t.Fatalf("UPK of an aborted rollout: %d", code)
			}
			if code, _ := call(t, f.deviceClient(t, member), "GET", f.ddi(member.hexID())+"/deploymentBase/"+ro.ID, nil); code != http.StatusGone {
				t.Fatalf("deployment of an aborted rollout: %d", code)
			}
			if n, _ := st.Log().Size(ctx); n != logSize {
				t.Fatalf("log %d → %d after refusals", logSize, n)
			}
			// A new rollout may start now.
			ro2 := f.startRollout(t, publish(t, f, "2.0.1", 2), 100, "", "10%")
			if list, err := cl.Rollouts(ctx); err != nil || len(list) != 2 || list[1].ID != ro2.ID || list[1].MaxFailures != "10%" || list[0].State != "aborted" {
				t.Fatalf("rollouts %+v, %v", list, err)
			}
			if f.poll(t, member) == "" {
				t.Fatal("the new rollout offered nothing")
			}
		})
	}
}
