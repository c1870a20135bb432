package server

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sbm-project/sbm/server/order"
	"github.com/sbm-project/sbm/server/store"
	"github.com/sbm-project/sbm/server/store/sqlite"
	"github.com/sbm-project/sbm/trust"
)

// BenchmarkStationCertify measures certified devices per second through
// the whole station exchange: a CSR over mutual TLS (kept-alive
// connections, 8 stations in parallel), the order and station checks, the
// reservation, the device certificate, the commit with its log entry and
// signed checkpoint, the answer. The devices' CSRs are made before the
// timer (the devices make them). For the ratio, the same run measures the
// two signatures the service must make per device: the certificate's and
// the checkpoint's (sub-benchmark "raw-signatures").
//
//	go test ./server -run XXX -bench StationCertify -benchtime 2000x -count 5
func BenchmarkStationCertify(b *testing.B) {
	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run(engine, func(b *testing.B) { benchCertify(b, engine) })
	}
	b.Run("raw-signatures", benchRawSignatures)
}

func benchCertify(b *testing.B, engine string) {
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
	} else if st, err = sqlite.Open(context.Background(), b.TempDir()); err != nil {
		b.Fatal(err)
	} else {
		b.Cleanup(func() { st.Close() })
	}
	f := startWith(b, c, st, Config{})
	stations := make([]*trust.ServiceCredential, 8)
	o := order.New(c, 1<<40, time.Now().Add(-time.Minute), time.Now().Add(24*time.Hour))
	for i := range stations {
		stations[i] = newStation(b, c, fmt.Sprintf("bench-%d", i))
		o.Stations = append(o.Stations, stations[i].Digest())
	}
	signed, err := order.Sign(c, o)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := f.operator(b).LoadOrder(context.Background(), signed); err != nil {
		b.Fatal(err)
	}
	id := o.IDString()
	csrs := make([][]byte, b.N)
	for i := range csrs {
		csrs[i] = newTestDevice(b, c, i).csr(b)
	}
	clients := make([]*Client, len(stations))
	for i, cred := range stations {
		if clients[i], err = NewStationClient(f.url, cred); err != nil {
			b.Fatal(err)
		}
		defer clients[i].Close()
	}
	var next, station atomic.Int64
	// 8 goroutines per GOMAXPROCS: stations waiting on the network.
	b.SetParallelism(len(stations))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		cl := clients[int(station.Add(1)-1)%len(clients)]
		for pb.Next() {
			i := next.Add(1) - 1
			if _, err := cl.Certify(context.Background(), &CertifyRequest{Order: id, CSR: csrs[i]}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "devices/s")
}

// benchRawSignatures is the service's unavoidable work per device: one
// device certificate and one checkpoint-sized signature with keys of the
// context's suite.
func benchRawSignatures(b *testing.B) {
	c, err := trust.Init(b.TempDir()+"/ctx", nil)
	if err != nil {
		b.Fatal(err)
	}
	ca, err := c.Signer(trust.DeviceCAKey)
	if err != nil {
		b.Fatal(err)
	}
	logKey, err := c.LogKey()
	if err != nil {
		b.Fatal(err)
	}
	dev, err := c.Suite().GenerateSigningKey()
	if err != nil {
		b.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "x"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	digest := sha256.Sum256([]byte("checkpoint"))
	b.ResetTimer()
	for range b.N {
		if _, err := x509.CreateCertificate(rand.Reader, tmpl, c.DeviceCACertificate(), dev.Public(), ca); err != nil {
			b.Fatal(err)
		}
		if _, err := logKey.Sign(rand.Reader, digest[:], hashFor(logKey)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "devices/s")
}

// hashFor is the crypto.SignerOpts of a key: SHA-256 for ECDSA, none for
// Ed25519 (which signs the message itself).
func hashFor(k crypto.Signer) crypto.SignerOpts {
	if _, ok := k.Public().(ed25519.PublicKey); ok {
		return crypto.Hash(0)
	}
	return crypto.SHA256
}
