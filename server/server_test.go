package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sbm-project/sbm/internal/pgtest"
	"github.com/sbm-project/sbm/server/order"
	"github.com/sbm-project/sbm/server/store"
	"github.com/sbm-project/sbm/server/store/postgres"
	"github.com/sbm-project/sbm/server/store/sqlite"
	"github.com/sbm-project/sbm/trust"
)

var pg *pgtest.Server

func TestMain(m *testing.M) {
	if os.Getenv(crashHelperEnv) != "" {
		os.Exit(crashHelper())
	}
	os.Exit(pgtest.Main(m, &pg))
}

// engines opens a store of each engine for one test.
var engines = []struct {
	name string
	open func(t *testing.T) store.Store
}{
	{"sqlite", func(t *testing.T) store.Store {
		s, err := sqlite.Open(context.Background(), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}},
	{"postgres", func(t *testing.T) store.Store {
		s, err := postgres.Open(context.Background(), pgtest.Database(t, pg))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}},
}

type fixture struct {
	ctx   *trust.Context
	store store.Store
	srv   *Server
	url   string
	logs  *bytes.Buffer
}

// start runs a server on 127.0.0.1 over st until the test ends.
func start(t testing.TB, c *trust.Context, st store.Store) *fixture {
	t.Helper()
	f := startWith(t, c, st, Config{})
	t.Cleanup(func() { st.Close() })
	return f
}

// startWith runs a server with cfg's options over st (which it does not
// close) until the test ends.
func startWith(t testing.TB, c *trust.Context, st store.Store, cfg Config) *fixture {
	t.Helper()
	logs := &bytes.Buffer{}
	cfg.Context, cfg.Store, cfg.Logger = c, st, slog.New(slog.NewJSONHandler(&lockedBuffer{b: logs}, nil))
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
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
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return &fixture{ctx: c, store: st, srv: srv, url: "https://" + ln.Addr().String(), logs: logs}
}

func newContext(t *testing.T) *trust.Context {
	t.Helper()
	c, err := trust.Init(filepath.Join(t.TempDir(), "ctx"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *fixture) client(t testing.TB, cred *trust.ServiceCredential) *Client {
	t.Helper()
	cl, err := NewClient(f.ctx, f.url, cred)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func (f *fixture) operator(t testing.TB) *Client {
	t.Helper()
	cred, err := f.ctx.OperatorCredential()
	if err != nil {
		t.Fatal(err)
	}
	return f.client(t, cred)
}

func signOrder(t *testing.T, c *trust.Context, count uint64, notAfter time.Time) ([]byte, *order.Order) {
	t.Helper()
	o := order.New(c, count, time.Now().Add(-time.Minute), notAfter)
	o.Lines = map[string]uint64{"line-1": count}
	signed, err := order.Sign(c, o)
	if err != nil {
		t.Fatal(err)
	}
	return signed, o
}

func TestRefusals(t *testing.T) {
	c := newContext(t)
	f := start(t, c, engines[0].open(t))
	ctx := context.Background()
	if err := f.operator(t).Health(ctx); err != nil {
		t.Fatal(err)
	}

	other := newContext(t)
	foreign, err := other.OperatorCredential()
	if err != nil {
		t.Fatal(err)
	}
	station, err := c.IssueServiceCertificate(trust.RoleStation, "cm1-line1", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	device := deviceCredential(t, c)
	// A client that trusts the server but presents no certificate.
	anon := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: c.ServiceCAPool()}}}
	defer anon.CloseIdleConnections()
	if resp, err := anon.Get(f.url + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatal("a client without a certificate was served")
	}

	tests := []struct {
		name string
		cred *trust.ServiceCredential
		op   func(*Client) error
		want string
	}{
		// Refused in the TLS handshake: how the error reads depends on
		// when the client sees the server's alert.
		{"foreign operator", foreign, func(cl *Client) error { return cl.Health(ctx) }, "GET /healthz: "},
		{"station lists orders", station, func(cl *Client) error { _, err := cl.Orders(ctx); return err }, "(403): certificate \"cm1-line1\": certificate does not have the required service role operator (it is a station certificate)"},
		{"station loads an order", station, func(cl *Client) error {
			signed, _ := signOrder(t, c, 1, time.Now().Add(time.Hour))
			_, err := cl.LoadOrder(ctx, signed)
			return err
		}, "(403)"},
		{"device lists orders", device, func(cl *Client) error { _, err := cl.Orders(ctx); return err }, "(403): certificate \"SBM device 01020304\": certificate does not have the required service role operator (it names none)"},
		{"station reads metrics", station, func(cl *Client) error { return cl.do(ctx, http.MethodGet, "/metrics", "", nil, nil) }, "(403)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := f.client(t, tt.cred)
			err := tt.op(cl)
			if err == nil || !strings.Contains(err.Error(), tt.want) || (tt.cred == foreign) == errors.Is(err, ErrRefused) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
	// A station may reach /healthz: it is not a management endpoint.
	if err := f.client(t, station).Health(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Orders(ctx); err != nil {
		t.Fatal(err)
	}
	if orders, _ := f.store.Orders(ctx); len(orders) != 0 {
		t.Fatalf("refused requests stored %d orders", len(orders))
	}
}

// TestClientRefusesServer: the client accepts only a server certificate of
// its own context.
func TestClientRefusesServer(t *testing.T) {
	c := newContext(t)
	other := newContext(t)
	f := start(t, other, engines[0].open(t)) // a server of another OEM
	cred, err := c.OperatorCredential()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := NewClient(c, f.url, cred)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.Health(context.Background()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("another OEM's server accepted: %v", err)
	}
	if _, err := NewClient(c, "http://127.0.0.1:1", cred); err == nil {
		t.Fatal("plain http URL accepted")
	}
}

func TestOrderLifecycle(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			c := newContext(t)
			f := start(t, c, e.open(t))
			cl := f.operator(t)
			ctx := context.Background()

			signed, o := signOrder(t, c, 3, time.Now().Add(time.Hour))
			st, err := cl.LoadOrder(ctx, signed)
			if err != nil {
				t.Fatal(err)
			}
			if st.ID != o.IDString() || st.Count != 3 || st.Used != 0 || st.Remaining != 3 || st.State != "active" ||
				len(st.Lines) != 1 || st.Lines[0].Count != 3 || st.VendorID != c.VendorID().String() {
				t.Fatalf("loaded order %+v", st)
			}

			expired, _ := signOrder(t, c, 3, time.Now().Add(-time.Second))
			foreign, _ := signOrder(t, newContext(t), 3, time.Now().Add(time.Hour))
			refusals := []struct {
				name   string
				signed []byte
				want   string
			}{
				{"duplicate", signed, "(409): order " + o.IDString() + ": order already loaded"},
				{"expired", expired, "(422): order expired"},
				{"foreign-signed", foreign, "(422): order not signed by this context's root key"},
				{"garbage", []byte("not an order"), "(400): malformed order"},
			}
			for _, r := range refusals {
				_, err := cl.LoadOrder(ctx, r.signed)
				if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), r.want) {
					t.Errorf("%s: %v, want %q", r.name, err, r.want)
				}
			}

			// The station flow's reservations show in the status.
			for _, d := range []string{"d1", "d2"} {
				if _, err := f.store.Reserve(ctx, st.ID, d); err != nil {
					t.Fatal(err)
				}
			}
			if err := f.store.Spoil(ctx, st.ID, "d2"); err != nil {
				t.Fatal(err)
			}
			list, err := cl.Orders(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != 1 || list[0].Used != 1 || list[0].Spoiled != 1 || list[0].Remaining != 1 {
				t.Fatalf("status %+v", list)
			}

			rv, err := cl.RevokeOrder(ctx, st.ID)
			if err != nil {
				t.Fatal(err)
			}
			if rv.State != "revoked" {
				t.Fatalf("revoked order in state %q", rv.State)
			}
			if _, err := cl.RevokeOrder(ctx, st.ID); err == nil || !strings.Contains(err.Error(), "(409)") {
				t.Fatalf("second revocation: %v", err)
			}
			if _, err := cl.RevokeOrder(ctx, "00"); err == nil || !strings.Contains(err.Error(), "(404)") {
				t.Fatalf("unknown order: %v", err)
			}
			if _, err := f.store.Reserve(ctx, st.ID, "d3"); !errors.Is(err, store.ErrOrderRevoked) {
				t.Fatalf("reserve after revocation: %v", err)
			}

			// Metrics and logs saw it all.
			if err := cl.do(ctx, http.MethodGet, "/metrics", "", nil, nil); err != nil {
				t.Fatal(err)
			}
			metrics := scrape(t, f.srv.HealthHandler())
			for _, want := range []string{
				`sbm_http_requests_total{code="201",method="post",route="orders_load"} 1`,
				`sbm_orders_loaded_total{result="exists"} 1`,
				`sbm_store_operation_duration_seconds_count{op="load_order",result="ok"} 1`,
				`sbm_http_request_duration_seconds_bucket{method="get",route="orders_list"`,
			} {
				if !bytes.Contains(metrics, []byte(want)) {
					t.Errorf("metrics lack %s", want)
				}
			}
			if !bytes.Contains(f.logs.Bytes(), []byte(`"msg":"order loaded"`)) || !bytes.Contains(f.logs.Bytes(), []byte(`"peer_role":"operator"`)) {
				t.Errorf("logs: %s", f.logs.Bytes())
			}
		})
	}
}

// scrape reads /metrics and /healthz of the plain health handler.
func scrape(t *testing.T, h http.Handler) []byte {
	t.Helper()
	srv := &http.Server{Handler: h}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	get := func(path string) []byte {
		resp, err := http.Get("http://" + ln.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %s", path, resp.Status)
		}
		return b
	}
	if h := get("/healthz"); !bytes.Contains(h, []byte(`"ok"`)) {
		t.Fatalf("healthz: %s", h)
	}
	return get("/metrics")
}

// TestTwoInstances: two servers sharing one PostgreSQL database see each
// other's orders.
func TestTwoInstances(t *testing.T) {
	url := pgtest.Database(t, pg)
	c := newContext(t)
	open := func() store.Store {
		s, err := postgres.Open(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b := start(t, c, open()), start(t, c, open())
	ctx := context.Background()
	signed, o := signOrder(t, c, 2, time.Now().Add(time.Hour))
	if _, err := a.operator(t).LoadOrder(ctx, signed); err != nil {
		t.Fatal(err)
	}
	if _, err := b.operator(t).LoadOrder(ctx, signed); err == nil || !strings.Contains(err.Error(), "already loaded") {
		t.Fatalf("second instance loaded the same order: %v", err)
	}
	st, err := b.operator(t).Order(ctx, o.IDString())
	if err != nil || st.Count != 2 {
		t.Fatalf("order on the other instance: %+v, %v", st, err)
	}
}

// TestHealthStoreDown: /healthz says 503 when the store does not answer.
func TestHealthStoreDown(t *testing.T) {
	st := engines[0].open(t)
	srv, err := New(Config{Context: newContext(t), Store: st})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	rec := httptest.NewRecorder()
	srv.HealthHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "store unavailable") {
		t.Fatalf("healthz with the store closed: %d %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	srv.HealthHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/orders", nil))
	if rec.Code != http.StatusNotFound {
		t.Fatalf("the health listener serves /v1/orders: %d", rec.Code)
	}
	rec = httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/orders", nil))
	if rec.Code != http.StatusUnauthorized {
		t.Fatalf("/v1/orders without TLS: %d", rec.Code)
	}
}

// deviceCredential is a device certificate of c's device CA with its key,
// as a provisioned device holds them.
func deviceCredential(t *testing.T, c *trust.Context) *trust.ServiceCredential {
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
	cert, err := c.IssueDeviceCertificate(csr, []byte{1, 2, 3, 4}, ka.PublicKey(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return &trust.ServiceCredential{Certificate: cert, Chain: []*x509.Certificate{c.DeviceCACertificate()}, Key: key}
}

// lockedBuffer is a bytes.Buffer safe for the server's concurrent logging.
type lockedBuffer struct {
	mu sync.Mutex
	b  *bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// pgURL returns a new database of the test PostgreSQL server.
func pgURL(t testing.TB) string { return pgtest.Database(t, pg) }

// openPostgres opens a store instance on the database at url.
func openPostgres(t testing.TB, url string) store.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
