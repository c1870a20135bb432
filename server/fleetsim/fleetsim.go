// Package fleetsim simulates a fleet of devices against the update
// service (sbm fleet simulate): each simulated device has a real identity
// key and key-agreement key, gets its certificate through the production
// service the way a device on a line does (the simulator creates the
// order as the OEM and the station as the CM would), then polls the
// device API over mutual TLS (kept-alive connections, TLS session
// resumption, jittered sleeps), downloads what it is offered, fetches its
// own UPK, verifies and decrypts the package with it as a device would
// (image.Verifier, the device's key), and reports the result in an
// install report signed with its identity key.
//
// It is a load and behaviour tool for a service on this host: bounded in
// devices and time, loopback addresses only.
package fleetsim

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sbm-project/sbm/attest/report"
	"github.com/sbm-project/sbm/image"
	"github.com/sbm-project/sbm/internal/cose"
	"github.com/sbm-project/sbm/server"
	"github.com/sbm-project/sbm/server/order"
	"github.com/sbm-project/sbm/trust"
)

// Bounds of a simulation.
const (
	MaxDevices  = 10000
	MaxDuration = 10 * time.Minute
)

// Config configures a simulation.
type Config struct {
	// Context is the OEM's security context: its operator credential
	// loads the order, it issues the station, it verifies packages.
	Context *trust.Context
	// Server is the service's URL (https://HOST:PORT, HOST a loopback
	// address or localhost).
	Server string
	// Devices is how many devices to simulate (1..MaxDevices).
	Devices int
	// Duration is how long they poll (at most MaxDuration).
	Duration time.Duration
	// Interval is the mean time between a device's polls (each sleep is
	// drawn uniformly from [Interval/2, 3·Interval/2]); default 1 s.
	Interval time.Duration
	// FailPercent is the share of installs the devices report failed
	// (their SBM refusing the package), 0..100.
	FailPercent float64
	// Certifiers is how many devices are certified at once (default 8).
	Certifiers int
}

// Summary is what a simulation measured.
type Summary struct {
	Devices  int           `json:"devices"`
	Duration time.Duration `json:"duration_ns"`
	// Requests counts every request of the devices after certification,
	// Errors those that failed (no answer, or an unexpected status).
	Requests          int64   `json:"requests"`
	Errors            int64   `json:"errors"`
	RequestsPerSecond float64 `json:"requests_per_second"`
	Polls             int64   `json:"polls"`
	// P50 and P99 are the latencies of the steady state: the requests
	// made one interval after every device's first request was answered
	// (from the histogram's buckets, within 5 %). FirstP99 is the p99 of
	// each device's first request, which includes its full TLS handshake
	// (all of them within the first interval). Steady counts the requests
	// of the steady state.
	P50      time.Duration `json:"p50_ns"`
	P99      time.Duration `json:"p99_ns"`
	FirstP99 time.Duration `json:"first_p99_ns"`
	Steady   int64         `json:"steady_requests"`
	// Updated and Failed count the installs the devices reported.
	Updated int64 `json:"updated"`
	Failed  int64 `json:"failed"`
	// FirstError is the first error a device met, if any.
	FirstError string `json:"first_error,omitempty"`
}

// ErrNotLoopback refuses a server that is not on this host.
var ErrNotLoopback = errors.New("the simulator talks to a service on this host only (a loopback address or localhost)")

func (cfg *Config) check() error {
	u, err := url.Parse(cfg.Server)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("server URL %q: want https://HOST:PORT", cfg.Server)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); !(host == "localhost" || (ip != nil && ip.IsLoopback())) {
		return fmt.Errorf("server %s: %w", host, ErrNotLoopback)
	}
	if cfg.Devices < 1 || cfg.Devices > MaxDevices {
		return fmt.Errorf("devices %d: want 1 to %d", cfg.Devices, MaxDevices)
	}
	if cfg.Duration <= 0 || cfg.Duration > MaxDuration {
		return fmt.Errorf("duration %v: want above 0 and at most %v", cfg.Duration, MaxDuration)
	}
	if cfg.FailPercent < 0 || cfg.FailPercent > 100 || math.IsNaN(cfg.FailPercent) {
		return fmt.Errorf("fail percent %v: want 0 to 100", cfg.FailPercent)
	}
	if cfg.Interval == 0 {
		cfg.Interval = time.Second
	}
	if cfg.Interval < time.Millisecond {
		return fmt.Errorf("interval %v: want at least 1ms", cfg.Interval)
	}
	if cfg.Certifiers <= 0 {
		cfg.Certifiers = 8
	}
	return nil
}

// device is one simulated device.
type device struct {
	id    []byte
	hexID string
	key   crypto.Signer
	ka    *ecdh.PrivateKey
	cert  []byte
	cl    *http.Client
	seq   uint64
	// app is what it runs (zero: nothing reported yet).
	app report.App
	// connected: its first request (with the TLS handshake) is done.
	connected bool
}

// sim is one simulation's shared state.
type sim struct {
	cfg      Config
	base     string
	verifier *image.Verifier
	hist     histogram
	first    histogram
	// connected counts the devices whose first request was answered;
	// steadyFrom (Unix ns) is when the steady state starts, 0 before.
	connected  atomic.Int64
	steadyFrom atomic.Int64
	requests   atomic.Int64
	errs       atomic.Int64
	polls      atomic.Int64
	updated    atomic.Int64
	failed     atomic.Int64
	firstErr   atomic.Pointer[string]
	// packages caches the downloaded packages by URL: every device
	// downloads, but the bytes need not be kept once per device.
	packages sync.Map
}

// Run certifies cfg.Devices devices through the production service, lets
// them poll, update and report for cfg.Duration, and returns what it
// measured. Errors of single requests are counted, not returned.
func Run(ctx context.Context, cfg Config) (*Summary, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	v, err := image.NewVerifier(cfg.Context)
	if err != nil {
		return nil, err
	}
	s := &sim{cfg: cfg, base: strings.TrimRight(cfg.Server, "/"), verifier: v}
	devs, err := s.certify(ctx)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, d := range devs {
			d.cl.CloseIdleConnections()
		}
	}()
	start := time.Now()
	rctx, cancel := context.WithDeadline(ctx, start.Add(cfg.Duration))
	defer cancel()
	var wg sync.WaitGroup
	for _, d := range devs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.live(rctx, d)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	sum := &Summary{Devices: len(devs), Duration: elapsed, Requests: s.requests.Load(), Errors: s.errs.Load(), Polls: s.polls.Load(),
		Updated: s.updated.Load(), Failed: s.failed.Load(), P50: s.hist.quantile(0.5), P99: s.hist.quantile(0.99),
		FirstP99: s.first.quantile(0.99), Steady: s.hist.count()}
	sum.RequestsPerSecond = float64(sum.Requests) / elapsed.Seconds()
	if e := s.firstErr.Load(); e != nil {
		sum.FirstError = *e
	}
	return sum, ctx.Err()
}

// certify makes the devices and certifies them through the station API
// under a new order naming a new station.
func (s *sim) certify(ctx context.Context) ([]*device, error) {
	c := s.cfg.Context
	opCred, err := c.OperatorCredential()
	if err != nil {
		return nil, err
	}
	op, err := server.NewClient(c, s.cfg.Server, opCred)
	if err != nil {
		return nil, err
	}
	defer op.Close()
	stCred, err := c.IssueServiceCertificate(trust.RoleStation, "fleet simulator", nil, 24*time.Hour)
	if err != nil {
		return nil, err
	}
	o := order.New(c, uint64(s.cfg.Devices), time.Now().Add(-time.Minute), time.Now().Add(s.cfg.Duration+time.Hour))
	o.Stations = [][32]byte{stCred.Digest()}
	signed, err := order.Sign(c, o)
	if err != nil {
		return nil, err
	}
	if _, err := op.LoadOrder(ctx, signed); err != nil {
		return nil, fmt.Errorf("simulator's order: %w", err)
	}
	station, err := server.NewStationClient(s.cfg.Server, stCred)
	if err != nil {
		return nil, err
	}
	defer station.Close()

	devs := make([]*device, s.cfg.Devices)
	next := make(chan int)
	errc := make(chan error, s.cfg.Certifiers)
	var wg sync.WaitGroup
	for range s.cfg.Certifiers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				d, err := s.newDevice(ctx, station, o.IDString())
				if err != nil {
					errc <- err
					return
				}
				devs[i] = d
			}
		}()
	}
	var ferr error
feed:
	for i := range devs {
		select {
		case next <- i:
		case ferr = <-errc:
			break feed
		case <-ctx.Done():
			ferr = ctx.Err()
			break feed
		}
	}
	close(next)
	wg.Wait()
	if ferr == nil {
		select {
		case ferr = <-errc:
		default:
		}
	}
	if ferr != nil {
		return nil, fmt.Errorf("certifying the simulated devices: %w", ferr)
	}
	return devs, nil
}

// newDevice makes a device's keys and CSR as its SBM would, and has the
// station certify it.
func (s *sim) newDevice(ctx context.Context, station *server.Client, orderID string) (*device, error) {
	c := s.cfg.Context
	key, err := c.Suite().GenerateSigningKey()
	if err != nil {
		return nil, err
	}
	ka, err := c.Suite().GenerateKeyAgreementKey()
	if err != nil {
		return nil, err
	}
	id := make([]byte, 16)
	rand.Read(id)
	kaName := "p256"
	if ka.Curve() == ecdh.X25519() {
		kaName = "x25519"
	}
	devURI, _ := url.Parse("urn:sbm:device:" + hex.EncodeToString(id))
	kaURI, _ := url.Parse("urn:sbm:ka:" + kaName + ":" + base64.RawURLEncoding.EncodeToString(ka.PublicKey().Bytes()))
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "SBM device"}, URIs: []*url.URL{devURI, kaURI}}, key)
	if err != nil {
		return nil, err
	}
	resp, err := station.Certify(ctx, &server.CertifyRequest{Order: orderID, CSR: csr})
	if err != nil {
		return nil, err
	}
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS13,
		RootCAs:            c.ServiceCAPool(),
		Certificates:       []tls.Certificate{{Certificate: [][]byte{resp.Certificate}, PrivateKey: key}},
		ClientSessionCache: tls.NewLRUClientSessionCache(4),
	}
	cl := &http.Client{Transport: &http.Transport{TLSClientConfig: tc, MaxIdleConnsPerHost: 1, IdleConnTimeout: time.Minute}, Timeout: time.Minute}
	return &device{id: id, hexID: resp.DeviceID, key: key, ka: ka, cert: resp.Certificate, cl: cl, seq: 1 << 32}, nil
}

// live is one device's life: poll, update when offered, sleep.
func (s *sim) live(ctx context.Context, d *device) {
	// Spread the first polls over one interval.
	if !sleep(ctx, time.Duration(mrand.Int64N(int64(s.cfg.Interval)))) {
		return
	}
	for {
		var p server.DDIPoll
		if s.getJSON(ctx, d, s.ddi(d), &p) {
			s.polls.Add(1)
			if link := p.Links["deploymentBase"].Href; link != "" {
				s.update(ctx, d, link)
			}
		}
		jitter := s.cfg.Interval/2 + time.Duration(mrand.Int64N(int64(s.cfg.Interval)+1))
		if !sleep(ctx, jitter) {
			return
		}
	}
}

func (s *sim) ddi(d *device) string {
	return s.base + "/" + server.DDITenant + "/controller/v1/" + d.hexID
}

// update runs one offered deployment: the deployment document, the
// package, the device's UPK, the device-side verification, feedback and
// the signed report.
func (s *sim) update(ctx context.Context, d *device, link string) {
	var dep server.DDIDeployment
	if !s.getJSON(ctx, d, link, &dep) || len(dep.Deployment.Chunks) == 0 || len(dep.Deployment.Chunks[0].Artifacts) == 0 {
		return
	}
	art := dep.Deployment.Chunks[0].Artifacts[0]
	pkg, ok := s.get(ctx, d, art.Links["download"].Href)
	if !ok {
		return
	}
	s.feedback(ctx, d, link, "downloaded", "none")
	upkBytes, ok := s.get(ctx, d, dep.Links["upk"].Href)
	if !ok {
		return
	}
	p, err := image.Parse(pkg)
	if err != nil {
		s.fail(fmt.Errorf("device %s: package: %w", d.hexID, err))
		return
	}
	h := sha256.New()
	v, err := s.verifier.Verify(p, &image.VerifyOptions{Key: d.ka, UPK: upkBytes, DeviceID: d.id, Plaintext: h})
	fails := err != nil || mrand.Float64()*100 < s.cfg.FailPercent
	if err != nil {
		s.fail(fmt.Errorf("device %s: verify with its UPK: %w", d.hexID, err))
	}
	r := &report.Report{DeviceID: d.id, Boots: 1, HasResult: true, HasPackage: true, Package: sha256.Sum256(p.Manifest)}
	if fails {
		r.Result, r.Detail = 1, "simulated refusal"
	} else {
		r.Updated, r.Detail = true, "installed "+v.Manifest.Version
		var m [32]byte
		copy(m[:], h.Sum(nil))
		d.app = report.App{ManifestDigest: r.Package, Measurement: m, Version: v.Manifest.Version, SecurityCounter: v.Manifest.SecurityCounter}
	}
	if d.app.Version != "" {
		r.HasApp, r.App = true, d.app
	}
	d.seq++
	r.Sequence = d.seq
	alg := cose.AlgES256
	if _, ok := d.key.Public().(ed25519.PublicKey); ok {
		alg = cose.AlgEdDSA
	}
	rep, err := report.Append(nil, r, d.key, alg)
	if err != nil {
		s.fail(err)
		return
	}
	// The signed report settles the action; the DDI feedback closing it
	// follows, as a DDI client sends it.
	var ans server.ReportAnswer
	if s.do(ctx, d, http.MethodPost, s.ddi(d)+"/reports", rep, http.StatusCreated, &ans) {
		switch ans.Action {
		case "installed":
			s.updated.Add(1)
		case "failed":
			s.failed.Add(1)
		}
	}
	finished := "success"
	if fails {
		finished = "failure"
	}
	s.feedback(ctx, d, link, "closed", finished)
}

func (s *sim) feedback(ctx context.Context, d *device, link, execution, finished string) {
	var fb server.DDIFeedback
	fb.Status.Execution, fb.Status.Result.Finished = execution, finished
	body, _ := json.Marshal(fb)
	s.do(ctx, d, http.MethodPost, link+"/feedback", body, http.StatusOK, nil)
}

func (s *sim) getJSON(ctx context.Context, d *device, u string, out any) bool {
	return s.do(ctx, d, http.MethodGet, u, nil, http.StatusOK, out)
}

func (s *sim) get(ctx context.Context, d *device, u string) ([]byte, bool) {
	var b bytesOut
	ok := s.do(ctx, d, http.MethodGet, u, nil, http.StatusOK, &b)
	return b.b, ok
}

type bytesOut struct{ b []byte }

// do makes one timed request; out is JSON-decoded (or, a *bytesOut, gets
// the body).
func (s *sim) do(ctx context.Context, d *device, method, u string, body []byte, want int, out any) bool {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		s.fail(err)
		return false
	}
	start := time.Now()
	resp, err := d.cl.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			s.requests.Add(1)
			s.fail(err)
		}
		return false
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	s.requests.Add(1)
	switch from := s.steadyFrom.Load(); {
	case !d.connected:
		s.first.add(time.Since(start))
		d.connected = true
		if s.connected.Add(1) == int64(s.cfg.Devices) {
			s.steadyFrom.Store(time.Now().Add(s.cfg.Interval).UnixNano())
		}
	case from != 0 && start.UnixNano() >= from:
		s.hist.add(time.Since(start))
	}
	if err != nil || resp.StatusCode != want {
		if ctx.Err() == nil {
			s.fail(fmt.Errorf("%s %s: %s %s", method, u, resp.Status, strings.TrimSpace(string(b))))
		}
		return false
	}
	switch o := out.(type) {
	case nil:
	case *bytesOut:
		o.b = b
	default:
		if err := json.Unmarshal(b, out); err != nil {
			s.fail(fmt.Errorf("%s %s: %w", method, u, err))
			return false
		}
	}
	return true
}

func (s *sim) fail(err error) {
	s.errs.Add(1)
	msg := err.Error()
	s.firstErr.CompareAndSwap(nil, &msg)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// histogram counts latencies in buckets growing by 5 % from 10 µs (a
// quantile is known within 5 %, in constant memory whatever the count).
type histogram struct {
	mu      sync.Mutex
	buckets [400]int64
	n       int64
}

const histBase = 10 * time.Microsecond

func bucketOf(d time.Duration) int {
	if d <= histBase {
		return 0
	}
	i := int(math.Log(float64(d)/float64(histBase))/math.Log(1.05)) + 1
	return min(i, len(histogram{}.buckets)-1)
}

func (h *histogram) add(d time.Duration) {
	i := bucketOf(d)
	h.mu.Lock()
	h.buckets[i]++
	h.n++
	h.mu.Unlock()
}

func (h *histogram) count() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}

// quantile returns the upper bound of the bucket holding quantile q.
func (h *histogram) quantile(q float64) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(h.n)))
	var seen int64
	for i, c := range h.buckets {
		seen += c
		if seen >= rank {
			return time.Duration(float64(histBase) * math.Pow(1.05, float64(i)))
		}
	}
	return 0
}
