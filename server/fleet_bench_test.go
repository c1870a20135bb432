package server

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sbm-project/sbm/image"
	"github.com/sbm-project/sbm/internal/firmware"
	"github.com/sbm-project/sbm/server/auditlog"
	"github.com/sbm-project/sbm/server/store"
	"github.com/sbm-project/sbm/server/store/sqlite"
	"github.com/sbm-project/sbm/trust"
	"github.com/sbm-project/sbm/upk"
)

// BenchmarkDevicePoll measures device polls per second over mutual TLS
// (each client its own device, kept-alive connections, 32 in parallel):
// the authentication against the device records, the device's actions,
// the rollouts and the cohort check. "idle": a rollout runs at 0.01 %, so
// almost no device is offered anything (the steady state of a fleet);
// "offered": every device has an open action. It reports polls/s and the
// p50 and p99 latencies seen by the clients (in the same process, so the
// clients' TLS competes for the same cores).
//
//	go test ./server -run XXX -bench DevicePoll -benchtime 20000x
func BenchmarkDevicePoll(b *testing.B) {
	for _, engine := range []string{"sqlite", "postgres"} {
		for _, scenario := range []string{"idle", "offered"} {
			b.Run(engine+"/"+scenario, func(b *testing.B) { benchPoll(b, engine, scenario == "offered") })
		}
	}
}

// benchDevice is a device certified directly in the store, with an HTTPS
// client presenting its certificate.
type benchDevice struct {
	id string
	cl *http.Client
	ka *ecdh.PublicKey // its key-agreement key
}

func benchPoll(b *testing.B, engine string, offered bool) {
	ctx := context.Background()
	c, err := trust.Init(b.TempDir()+"/ctx", nil)
	if err != nil {
		b.Fatal(err)
	}
	var st store.Store
	if engine == "postgres" {
		if pg == nil {
			b.Skip("PostgreSQL not installed")
		}
		st = openPostgres(b, pgURL(b))
	} else if st, err = sqlite.Open(ctx, b.TempDir()); err != nil {
		b.Fatal(err)
	} else {
		b.Cleanup(func() { st.Close() })
	}
	f := startWith(b, c, st, Config{})
	const n = 64
	devs := benchDevices(b, c, st, n)
	rel := &store.Release{ManifestDigest: sha256.Sum256([]byte("bench")), Version: "2.0.0", SecurityCounter: 2, Package: []byte("pkg")}
	if err := st.PutRelease(ctx, rel); err != nil {
		b.Fatal(err)
	}
	share := int64(1)
	if offered {
		share = store.FullShare
	}
	if err := st.CreateRollout(ctx, &store.Rollout{ID: "bench-rollout", ManifestDigest: rel.ManifestDigest, Share: share, MaxFailures: -1}); err != nil {
		b.Fatal(err)
	}
	poll := func(d *benchDevice) error {
		resp, err := d.cl.Get(f.url + "/DEFAULT/controller/v1/" + d.id)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("poll: %s", resp.Status)
		}
		return nil
	}
	for _, d := range devs { // handshakes and offers before the timer
		if err := poll(d); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		d := devs[int(next.Add(1)-1)%n]
		var mine []time.Duration
		for pb.Next() {
			start := time.Now()
			if err := poll(d); err != nil {
				b.Error(err)
				return
			}
			mine = append(mine, time.Since(start))
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	b.StopTimer()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "polls/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(0, "ns/op")
}

// benchOrder is the order of the benchmarks' devices (an order ID's form:
// the UPK's log entry names it).
var benchOrder = strings.Repeat("be", 16)

// benchDevices certifies n devices directly in the store (benchOrder)
// and returns them with HTTPS clients presenting their certificates.
func benchDevices(b *testing.B, c *trust.Context, st store.Store, n int) []*benchDevice {
	ctx := context.Background()
	devs := make([]*benchDevice, n)
	if err := st.CreateOrder(ctx, &store.Order{ID: benchOrder, Signed: []byte{1}, VendorID: "v", ClassID: "c", Count: int64(n), NotAfter: time.Now().Add(time.Hour)}); err != nil {
		b.Fatal(err)
	}
	for i := range devs {
		key, err := c.Suite().GenerateSigningKey()
		if err != nil {
			b.Fatal(err)
		}
		ka, err := c.Suite().GenerateKeyAgreementKey()
		if err != nil {
			b.Fatal(err)
		}
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "device"}}, key)
		if err != nil {
			b.Fatal(err)
		}
		csr, _ := x509.ParseCertificateRequest(der)
		id := make([]byte, 16)
		rand.Read(id)
		cert, err := c.IssueDeviceCertificate(csr, id, ka.PublicKey(), time.Now())
		if err != nil {
			b.Fatal(err)
		}
		hexID := hex.EncodeToString(id)
		if _, err := st.Reserve(ctx, benchOrder, hexID); err != nil {
			b.Fatal(err)
		}
		d := &store.Device{DeviceID: hexID, OrderID: benchOrder, Station: []byte{1}, Certificate: cert.Raw}
		if err := st.Certify(ctx, d, func(context.Context, int64, auditlog.Store) (int64, error) { return 0, nil }); err != nil {
			b.Fatal(err)
		}
		tc := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: c.ServiceCAPool(),
			Certificates: []tls.Certificate{{Certificate: [][]byte{cert.Raw}, PrivateKey: key}}}
		cl := &http.Client{Transport: &http.Transport{TLSClientConfig: tc, MaxIdleConnsPerHost: 4}, Timeout: time.Minute}
		b.Cleanup(cl.CloseIdleConnections)
		devs[i] = &benchDevice{id: hexID, cl: cl, ka: ka.PublicKey()}
	}
	return devs
}

// BenchmarkUPKIssue measures device UPKs issued per second.
//
// "sqlite", "postgres": through the device API, each request a device's
// first for its action, on the connection of its poll (its TLS handshake
// is not counted; the device's record and action, the UPK for its
// key-agreement key, the action's UPK and its upk-issued log entry,
// committed with those of the other requests waiting at the time: group
// commit, one transaction and one checkpoint signature per batch), 32
// devices at a time, the clients in the same process.
//
// "sqlite-issuance", "postgres-issuance": what a UPK costs the service
// beyond the request it arrives on (whose cost is a poll's,
// BenchmarkDevicePoll): the same UPK made and committed by the same
// code (issueUPK, commitUPK) from 32 goroutines, without HTTP, TLS and
// the device's authentication.
//
// "raw" is the cryptography a UPK cannot do without, in the same run and
// on every core: an ephemeral key, one ECDH and one signature with the
// update-authority key.
//
//	go test ./server -run XXX -bench UPKIssue -benchtime 4000x
func BenchmarkUPKIssue(b *testing.B) {
	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run(engine, func(b *testing.B) { benchUPK(b, engine, true) })
	}
	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run(engine+"-issuance", func(b *testing.B) { benchUPK(b, engine, false) })
	}
	b.Run("raw", benchRawUPK)
}

// upkBenchParallelism is how many devices (per GOMAXPROCS) ask for their
// UPKs at once in BenchmarkUPKIssue.
const upkBenchParallelism = 16

func benchUPK(b *testing.B, engine string, viaAPI bool) {
	ctx := context.Background()
	c, err := trust.Init(b.TempDir()+"/ctx", nil)
	if err != nil {
		b.Fatal(err)
	}
	var st store.Store
	if engine == "postgres" {
		if pg == nil {
			b.Skip("PostgreSQL not installed")
		}
		st = openPostgres(b, pgURL(b))
	} else if st, err = sqlite.Open(ctx, b.TempDir()); err != nil {
		b.Fatal(err)
	} else {
		b.Cleanup(func() { st.Close() })
	}
	f := startWith(b, c, st, Config{})
	cr, err := image.Create(c, &firmware.Image{Data: make([]byte, 4096), Format: firmware.FormatBinary},
		&image.CreateOptions{Version: "2.0.0", SecurityCounter: 2, ClassUPK: true})
	if err != nil {
		b.Fatal(err)
	}
	pkg, err := cr.Package.MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	if err := st.PutRelease(ctx, &store.Release{ManifestDigest: cr.ManifestDigest, Version: "2.0.0", SecurityCounter: 2, Package: pkg}); err != nil {
		b.Fatal(err)
	}
	if err := st.CreateRollout(ctx, &store.Rollout{ID: "upk-rollout", ManifestDigest: cr.ManifestDigest, Share: store.FullShare, MaxFailures: -1}); err != nil {
		b.Fatal(err)
	}
	devs := benchDevices(b, c, st, b.N)
	for _, d := range devs {
		if _, err := st.Offer(ctx, d.id, "upk-rollout"); err != nil {
			b.Fatal(err)
		}
	}
	get := func(d *benchDevice) error {
		resp, err := d.cl.Get(f.url + "/DEFAULT/controller/v1/" + d.id + "/deploymentBase/upk-rollout/upk")
		if err != nil {
			return err
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || n == 0 {
			return fmt.Errorf("upk: %s, %d bytes", resp.Status, n)
		}
		return nil
	}
	issue := func(d *benchDevice) error {
		id, err := hex.DecodeString(d.id)
		if err != nil {
			return err
		}
		issued, err := f.srv.issueUPK(ctx, cr.ManifestDigest, upk.Recipient{Kind: upk.Device, Key: d.ka, DeviceID: id})
		if err != nil {
			return err
		}
		g, err := f.srv.fleet.commitUPK(ctx, store.UPKGrant{DeviceID: d.id, RolloutID: "upk-rollout", UPK: issued}, id)
		if err == nil {
			err = g.Err
		}
		if err == nil && len(g.Stored) == 0 {
			err = errors.New("no UPK stored")
		}
		return err
	}
	if viaAPI {
		// Before the timer: every device's connection (its TLS handshake,
		// the poll a device makes before it asks for a UPK).
		for _, d := range devs {
			resp, err := d.cl.Get(f.url + "/DEFAULT/controller/v1/" + d.id)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	} else {
		get = issue
	}
	// One UPK before the timer, so the release's issuer is made.
	if err := get(devs[0]); err != nil {
		b.Fatal(err)
	}
	before, err := st.Log().Size(ctx)
	if err != nil {
		b.Fatal(err)
	}
	var next atomic.Int64
	next.Store(1)
	b.SetParallelism(upkBenchParallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(next.Add(1) - 1)
			if i >= len(devs) {
				i = i % len(devs) // more iterations than devices: retries, served from the store
			}
			if err := get(devs[i]); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "upks/s")
	if after, err := st.Log().Size(ctx); err == nil && after > before {
		b.ReportMetric(float64(after-before)/float64(countCheckpoints(b, st, before, after)), "upks/batch")
	}
	b.ReportMetric(0, "ns/op")
}

// countCheckpoints counts the log's records in [start, end) that hold a
// checkpoint: the batches of a group commit.
func countCheckpoints(b *testing.B, st store.Store, start, end int64) int {
	recs, err := st.Log().ReadRecords(context.Background(), start, end)
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for _, r := range recs {
		if len(r.Checkpoint) > 0 {
			n++
		}
	}
	return max(n, 1)
}

func benchRawUPK(b *testing.B) {
	c, err := trust.Init(b.TempDir()+"/ctx", nil)
	if err != nil {
		b.Fatal(err)
	}
	signer, err := c.Signer(trust.UpdateAuthorityKey)
	if err != nil {
		b.Fatal(err)
	}
	peer, err := c.Suite().GenerateKeyAgreementKey()
	if err != nil {
		b.Fatal(err)
	}
	digest := sha256.Sum256([]byte("upk"))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) { // on every core, as the service
		for pb.Next() {
			eph, err := c.Suite().KeyAgreementCurve().GenerateKey(rand.Reader)
			if err != nil {
				b.Error(err)
				return
			}
			if _, err := eph.ECDH(peer.PublicKey()); err != nil {
				b.Error(err)
				return
			}
			if _, err := signer.Sign(rand.Reader, digest[:], hashFor(signer)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "upks/s")
}
