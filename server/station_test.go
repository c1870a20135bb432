package server

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sbm-project/sbm/server/auditlog"
	"github.com/sbm-project/sbm/server/order"
	"github.com/sbm-project/sbm/server/store"
	"github.com/sbm-project/sbm/trust"
)

// testDevice is a device's keys as its SBM holds them: an identity key
// and a key-agreement key, bound with its ID by its CSRs.
type testDevice struct {
	id  []byte
	key crypto.Signer
	ka  *ecdh.PrivateKey
}

func newTestDevice(t testing.TB, c *trust.Context, n int) *testDevice {
	t.Helper()
	key, err := c.Suite().GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	ka, err := c.Suite().GenerateKeyAgreementKey()
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 16)
	rand.Read(id[:8])
	id[15] = byte(n)
	id[14] = byte(n >> 8)
	return &testDevice{id: id, key: key, ka: ka}
}

// csr returns a new CSR of the device (a new signature each call, as a
// retry after a crash would send).
func (d *testDevice) csr(t testing.TB) []byte {
	t.Helper()
	kaName := "p256"
	if d.ka.Curve() == ecdh.X25519() {
		kaName = "x25519"
	}
	dev, _ := url.Parse("urn:sbm:device:" + hex.EncodeToString(d.id))
	ka, _ := url.Parse("urn:sbm:ka:" + kaName + ":" + base64.RawURLEncoding.EncodeToString(d.ka.PublicKey().Bytes()))
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "SBM device"}, URIs: []*url.URL{dev, ka}}, d.key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func (d *testDevice) hexID() string { return hex.EncodeToString(d.id) }

// stationOrder loads an order of count naming the stations and returns
// its ID.
func stationOrder(t *testing.T, f *fixture, count uint64, stations ...*trust.ServiceCredential) string {
	t.Helper()
	o := order.New(f.ctx, count, time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
	for _, s := range stations {
		o.Stations = append(o.Stations, s.Digest())
	}
	signed, err := order.Sign(f.ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.operator(t).LoadOrder(context.Background(), signed); err != nil {
		t.Fatal(err)
	}
	return o.IDString()
}

func newStation(t testing.TB, c *trust.Context, name string) *trust.ServiceCredential {
	t.Helper()
	cred, err := c.IssueServiceCertificate(trust.RoleStation, name, nil, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

func (f *fixture) station(t *testing.T, cred *trust.ServiceCredential) *Client {
	t.Helper()
	cl, err := NewStationClient(f.url, cred)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// snapshot is what a refused request must leave unchanged.
type snapshot struct {
	counter store.Counter
	logSize int64
}

func (f *fixture) snapshot(t *testing.T, orderID string) snapshot {
	t.Helper()
	ctx := context.Background()
	c, err := f.store.Counter(ctx, orderID)
	if err != nil {
		t.Fatal(err)
	}
	n, err := f.store.Log().Size(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return snapshot{c, n}
}

// auditLog exports the service's log and audits it.
func (f *fixture) auditLog(t *testing.T) *auditlog.Report {
	t.Helper()
	var buf bytes.Buffer
	if err := f.operator(t).ExportLog(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	key, err := f.ctx.LogKey()
	if err != nil {
		t.Fatal(err)
	}
	rep, err := auditlog.Audit(&buf, key.Public(), nil)
	if err != nil {
		t.Fatalf("audit: %v", err)
	}
	return rep
}

func TestStationCertify(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			c := newContext(t)
			f := start(t, c, e.open(t))
			ctx := context.Background()
			st := newStation(t, c, "line-a")
			id := stationOrder(t, f, 3, st)
			cl := f.station(t, st)

			a, err := cl.Anchors(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.Check(); err != nil {
				t.Fatal(err)
			}
			dev := newTestDevice(t, c, 1)
			resp, err := cl.Certify(ctx, &CertifyRequest{Order: id, CSR: dev.csr(t)})
			if err != nil {
				t.Fatal(err)
			}
			cert, err := x509.ParseCertificate(resp.Certificate)
			if err != nil {
				t.Fatal(err)
			}
			ident, err := c.VerifyDeviceCertificate(cert)
			if err != nil || !bytes.Equal(ident.ID, dev.id) || !ident.KeyAgreement.Equal(dev.ka.PublicKey()) {
				t.Fatalf("certificate for %x: %+v, %v", dev.id, ident, err)
			}
			if resp.Retry || resp.LogIndex != 1 || resp.UPK != nil {
				t.Fatalf("response %+v", resp)
			}
			cp, err := auditlog.VerifyCheckpoint(resp.Checkpoint, mustLogKey(t, c).Public())
			if err != nil || cp.Size != 2 {
				t.Fatalf("checkpoint %+v, %v", cp, err)
			}
			before := f.snapshot(t, id)
			if before.counter.Certified != 1 || before.counter.Used != 1 || before.logSize != 2 {
				t.Fatalf("after one certification: %+v", before)
			}

			// A retry (a new CSR of the same device) gets the same
			// certificate and records nothing.
			again, err := cl.Certify(ctx, &CertifyRequest{Order: id, CSR: dev.csr(t)})
			if err != nil {
				t.Fatal(err)
			}
			if !again.Retry || !bytes.Equal(again.Certificate, resp.Certificate) || again.LogIndex != resp.LogIndex {
				t.Fatalf("retry: %+v", again)
			}
			if got := f.snapshot(t, id); got != before {
				t.Fatalf("a retry changed %+v to %+v", before, got)
			}

			// Refusals: each names its reason and changes nothing.
			other := newContext(t)
			foreignStation := newStation(t, other, "line-a")
			unnamed := newStation(t, c, "line-b")
			clone := &testDevice{id: dev.id, key: newTestDevice(t, c, 1).key, ka: dev.ka}
			badSig := dev.csr(t)
			badSig[len(badSig)-3] ^= 0x40
			unbound, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "x"}}, dev.key)
			if err != nil {
				t.Fatal(err)
			}
			fresh := newTestDevice(t, c, 2)
			tests := []struct {
				name string
				cred *trust.ServiceCredential
				req  CertifyRequest
				want string
			}{
				{"clone of a certified device", st, CertifyRequest{Order: id, CSR: clone.csr(t)}, "(409): device " + dev.hexID() + ": device already certified (possible clone)"},
				{"station not named in the order", unnamed, CertifyRequest{Order: id, CSR: fresh.csr(t)}, "(403): station not named in the order"},
				{"unknown order", st, CertifyRequest{Order: strings.Repeat("ab", 16), CSR: fresh.csr(t)}, "(404)"},
				{"CSR signature fails", st, CertifyRequest{Order: id, CSR: badSig}, "(422)"},
				{"CSR without the binding", st, CertifyRequest{Order: id, CSR: unbound}, "(422)"},
				{"garbage CSR", st, CertifyRequest{Order: id, CSR: []byte("garbage")}, "(422): device CSR"},
				{"operator on the station route", mustOperator(t, c), CertifyRequest{Order: id, CSR: fresh.csr(t)}, "(403)"},
				{"device certificate on the station route", deviceCredential(t, c), CertifyRequest{Order: id, CSR: fresh.csr(t)}, "(403)"},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					_, err := f.station(t, tt.cred).Certify(ctx, &tt.req)
					if err == nil || !strings.Contains(err.Error(), tt.want) {
						t.Fatalf("error %v, want %q", err, tt.want)
					}
					if got := f.snapshot(t, id); got != before {
						t.Fatalf("a refused request changed %+v to %+v", before, got)
					}
				})
			}
			// Another context's station fails the TLS handshake.
			if _, err := NewStationClient(f.url, foreignStation); err != nil {
				t.Fatal(err)
			} else if _, err := f.station(t, foreignStation).Certify(ctx, &CertifyRequest{Order: id, CSR: fresh.csr(t)}); err == nil {
				t.Fatal("a foreign station was served")
			}

			// A revoked order certifies nothing more.
			if _, err := f.operator(t).RevokeOrder(ctx, id); err != nil {
				t.Fatal(err)
			}
			before = f.snapshot(t, id)
			if _, err := cl.Certify(ctx, &CertifyRequest{Order: id, CSR: fresh.csr(t)}); err == nil || !strings.Contains(err.Error(), "order revoked") {
				t.Fatalf("revoked order: %v", err)
			}
			if got := f.snapshot(t, id); got != before {
				t.Fatalf("a refused request changed %+v to %+v", before, got)
			}
			rep := f.auditLog(t)
			if rep.Size != 3 || len(rep.Devices) != 1 || rep.Devices[dev.hexID()] != 1 {
				t.Fatalf("audit report %+v", rep)
			}
		})
	}
}

func mustLogKey(t *testing.T, c *trust.Context) crypto.Signer {
	t.Helper()
	k, err := c.LogKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustOperator(t *testing.T, c *trust.Context) *trust.ServiceCredential {
	t.Helper()
	cred, err := c.OperatorCredential()
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

// TestStationExpiredOrder: an order past its not-after certifies nothing.
func TestStationExpiredOrder(t *testing.T) {
	c := newContext(t)
	st := newStation(t, c, "line-a")
	s := engines[0].open(t)
	f := start(t, c, s)
	id := stationOrder(t, f, 3, st)
	// A second server on the same store, an hour and a minute later.
	late := startWith(t, c, s, Config{Now: func() time.Time { return time.Now().Add(61 * time.Minute) }})
	before := f.snapshot(t, id)
	_, err := late.station(t, st).Certify(context.Background(), &CertifyRequest{Order: id, CSR: newTestDevice(t, c, 1).csr(t)})
	if err == nil || !strings.Contains(err.Error(), "(422): order "+id+": order expired") {
		t.Fatalf("expired order: %v", err)
	}
	if got := f.snapshot(t, id); got != before {
		t.Fatalf("a refused request changed %+v to %+v", before, got)
	}
}

// TestOverProduction: 8 stations race 50 devices on an order of 5: exactly
// 5 are certified, the others refused with "order exhausted"; on SQLite,
// on PostgreSQL, and on PostgreSQL with two service instances sharing the
// database.
func TestOverProduction(t *testing.T) {
	cases := []struct {
		name      string
		engine    int
		instances int
	}{{"sqlite", 0, 1}, {"postgres", 1, 1}, {"postgres-2-instances", 1, 2}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newContext(t)
			var fs []*fixture
			switch tc.instances {
			case 1:
				fs = append(fs, start(t, c, engines[tc.engine].open(t)))
			case 2:
				url := pgURL(t)
				for range 2 {
					fs = append(fs, start(t, c, openPostgres(t, url)))
				}
			}
			var stations []*trust.ServiceCredential
			for i := range 8 {
				stations = append(stations, newStation(t, c, fmt.Sprintf("station-%d", i)))
			}
			id := stationOrder(t, fs[0], 5, stations...)
			devices := make([]*testDevice, 50)
			csrs := make([][]byte, 50)
			for i := range devices {
				devices[i] = newTestDevice(t, c, i)
				csrs[i] = devices[i].csr(t)
			}
			clients := make([]*Client, 8)
			for i, st := range stations {
				clients[i] = fs[i%len(fs)].station(t, st)
			}
			var wg sync.WaitGroup
			var mu sync.Mutex
			certified, exhausted := 0, 0
			var other []error
			next := make(chan int, 50)
			for i := range 50 {
				next <- i
			}
			close(next)
			for _, cl := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range next {
						_, err := cl.Certify(context.Background(), &CertifyRequest{Order: id, CSR: csrs[i]})
						mu.Lock()
						switch {
						case err == nil:
							certified++
						case errors.Is(err, ErrRefused) && strings.Contains(err.Error(), "(409): order "+id+": order exhausted"):
							exhausted++
						default:
							other = append(other, err)
						}
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			if certified != 5 || exhausted != 45 || len(other) != 0 {
				t.Fatalf("certified %d, exhausted %d, other errors %v", certified, exhausted, other)
			}
			cnt, err := fs[0].store.Counter(context.Background(), id)
			if err != nil || cnt.Used != 5 || cnt.Certified != 5 || cnt.Spoiled != 0 {
				t.Fatalf("counter %+v, %v", cnt, err)
			}
			rep := fs[len(fs)-1].auditLog(t)
			var oid auditlog.OrderID
			copy(oid[:], mustHex(t, id))
			if o := rep.Orders[oid]; o == nil || o.Certified != 5 || o.Remaining() != 0 || len(rep.Devices) != 5 {
				t.Fatalf("audit: %+v", rep.Orders[oid])
			}
		})
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSpoil: a unit reserved and never certified is spoiled by the
// station's report or by the stale sweep, logged, and never certified.
func TestSpoil(t *testing.T) {
	c := newContext(t)
	f := start(t, c, engines[0].open(t))
	ctx := context.Background()
	st := newStation(t, c, "line-a")
	id := stationOrder(t, f, 3, st)
	d1, d2 := newTestDevice(t, c, 1), newTestDevice(t, c, 2)
	digest := st.Digest()
	for _, d := range []*testDevice{d1, d2} {
		if _, err := f.store.ReserveFor(ctx, store.ReserveRequest{OrderID: id, DeviceID: d.hexID(), Station: digest[:]}); err != nil {
			t.Fatal(err)
		}
	}
	cl := f.station(t, st)
	// Another station cannot spoil this station's unit.
	if err := f.station(t, newStation(t, c, "line-b")).Spoil(ctx, id, d1.hexID()); err == nil || !strings.Contains(err.Error(), "(403)") {
		t.Fatalf("spoil by another station: %v", err)
	}
	if err := cl.Spoil(ctx, id, d1.hexID()); err != nil {
		t.Fatal(err)
	}
	n, err := f.srv.SpoilStale(ctx, 0)
	if err != nil || n != 1 {
		t.Fatalf("spoil stale: %d, %v", n, err)
	}
	for _, d := range []*testDevice{d1, d2} {
		if _, err := cl.Certify(ctx, &CertifyRequest{Order: id, CSR: d.csr(t)}); err == nil || !strings.Contains(err.Error(), "the device's unit was spoiled") {
			t.Fatalf("certify a spoiled unit: %v", err)
		}
	}
	cnt, _ := f.store.Counter(ctx, id)
	if cnt.Used != 0 || cnt.Spoiled != 2 || cnt.Remaining() != 1 {
		t.Fatalf("counter %+v", cnt)
	}
	rep := f.auditLog(t)
	var oid auditlog.OrderID
	copy(oid[:], mustHex(t, id))
	if o := rep.Orders[oid]; o.Spoiled != 2 || o.Certified != 0 {
		t.Fatalf("audit: %+v", o)
	}
}
