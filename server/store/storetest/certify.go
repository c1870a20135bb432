package storetest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sbm-project/sbm/server/auditlog"
	"github.com/sbm-project/sbm/server/store"
)

// testLogKey is a fixed Ed25519 key for the conformance tests' logs.
var testLogKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))

func orderID(id string) auditlog.OrderID {
	var o auditlog.OrderID
	h := sha256.Sum256([]byte(id))
	copy(o[:], h[:])
	return o
}

// appendEntry appends e to the log held by ls (a transaction's log).
func appendEntry(ctx context.Context, ls auditlog.Store, e *auditlog.Entry) (int64, error) {
	l, err := auditlog.New(auditlog.Config{Store: ls, Key: testLogKey, Origin: "storetest"})
	if err != nil {
		return 0, err
	}
	i, _, err := l.Append(ctx, e)
	return i, err
}

// certifiedEntry returns the logf of a Certify that logs the device.
func certifiedEntry(orderName string, d *store.Device) func(context.Context, int64, auditlog.Store) (int64, error) {
	return func(ctx context.Context, n int64, ls auditlog.Store) (int64, error) {
		digest := sha256.Sum256(d.Certificate)
		return appendEntry(ctx, ls, &auditlog.Entry{Kind: auditlog.CertificateIssued, Order: orderID(orderName),
			Station: d.Station, Device: []byte(d.DeviceID), Digest: &digest, Count: uint64(n)})
	}
}

func loadedEntry(id string, quota int64) func(context.Context, auditlog.Store) error {
	return func(ctx context.Context, ls auditlog.Store) error {
		digest := sha256.Sum256([]byte("signed " + id))
		_, err := appendEntry(ctx, ls, &auditlog.Entry{Kind: auditlog.OrderLoaded, Order: orderID(id), Digest: &digest, Quota: uint64(quota)})
		return err
	}
}

// audit exports the store's log and audits it.
func audit(t *testing.T, s store.Store) *auditlog.Report {
	t.Helper()
	ctx := context.Background()
	l, err := auditlog.New(auditlog.Config{Store: s.Log(), Key: testLogKey, Origin: "storetest"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := l.Export(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	rep, err := auditlog.Audit(&buf, testLogKey.Public(), nil)
	if err != nil {
		t.Fatalf("audit of the store's log: %v", err)
	}
	return rep
}

// testCertify checks the transactional operations of the station flow:
// a device is certified and logged together or not at all.
func testCertify(t *testing.T, open func() (store.Store, error)) {
	ctx := context.Background()
	s := mustOpen(t, open)
	if err := s.LoadOrder(ctx, newOrder("o1", 3), []store.Quota{{Line: "a", Count: 2}}, loadedEntry("o1", 3)); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "load again", s.LoadOrder(ctx, newOrder("o1", 3), nil, loadedEntry("o1", 3)), store.ErrOrderExists)
	station := bytes.Repeat([]byte{0x5a}, 32)
	res, err := s.ReserveFor(ctx, store.ReserveRequest{OrderID: "o1", Line: "a", DeviceID: "d1", Station: station})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(res.Station, station) || res.Line != "a" {
		t.Fatalf("reservation %+v", res)
	}
	if got, err := s.Reservation(ctx, "d1"); err != nil || !bytes.Equal(got.Station, station) {
		t.Fatalf("stored reservation %+v, %v", got, err)
	}

	// A failing log append rolls the whole certification back.
	d := &store.Device{DeviceID: "d1", OrderID: "o1", Station: station, Certificate: []byte("cert d1"), UPK: []byte("upk d1"),
		Board: "small", SBMMeasurement: strings.Repeat("ab", 32)}
	boom := errors.New("boom")
	err = s.Certify(ctx, d, func(ctx context.Context, n int64, ls auditlog.Store) (int64, error) {
		if _, err := certifiedEntry("o1", d)(ctx, n, ls); err != nil {
			return 0, err
		}
		return 0, boom
	})
	wantErr(t, "certify with a failing log", err, boom)
	if _, err := s.Device(ctx, "d1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("device after a rolled-back certify: %v", err)
	}
	if r, _ := s.Reservation(ctx, "d1"); r.State != store.Reserved {
		t.Fatalf("reservation after a rolled-back certify: %s", r.State)
	}
	if n, err := s.Log().Size(ctx); err != nil || n != 1 {
		t.Fatalf("log size after a rolled-back certify: %d, %v (want 1)", n, err)
	}
	if c, _ := s.Counter(ctx, "o1"); c.Certified != 0 || c.Used != 1 {
		t.Fatalf("counter after a rolled-back certify: %+v", c)
	}

	if err := s.Certify(ctx, d, certifiedEntry("o1", d)); err != nil {
		t.Fatal(err)
	}
	if d.LogIndex != 1 {
		t.Fatalf("log index %d, want 1", d.LogIndex)
	}
	got, err := s.Device(ctx, "d1")
	if err != nil {
		t.Fatal(err)
	}
	if got.OrderID != "o1" || !bytes.Equal(got.Certificate, d.Certificate) || !bytes.Equal(got.UPK, d.UPK) ||
		!bytes.Equal(got.Station, station) || got.LogIndex != 1 || got.Board != "small" || got.SBMMeasurement != d.SBMMeasurement {
		t.Fatalf("device record %+v", got)
	}
	wantErr(t, "certify twice", s.Certify(ctx, d, certifiedEntry("o1", d)), store.ErrDeviceCertified)
	if c, _ := s.Counter(ctx, "o1"); c.Certified != 1 || c.Used != 1 {
		t.Fatalf("counter after certify: %+v", c)
	}
	// No reservation, or one under another order: nothing certified.
	wantErr(t, "certify unreserved", s.Certify(ctx, &store.Device{DeviceID: "d9", OrderID: "o1", Certificate: []byte("x")}, certifiedEntry("o1", d)), store.ErrNotFound)

	// Spoil with its log entry; a spoiled unit cannot be certified.
	if _, err := s.ReserveFor(ctx, store.ReserveRequest{OrderID: "o1", Line: "a", DeviceID: "d2", Station: station}); err != nil {
		t.Fatal(err)
	}
	var spoiledCount int64
	err = s.SpoilLogged(ctx, "o1", "d2", func(ctx context.Context, r store.Reservation, n int64, ls auditlog.Store) error {
		spoiledCount = n
		_, err := appendEntry(ctx, ls, &auditlog.Entry{Kind: auditlog.UnitSpoiled, Order: orderID("o1"), Station: r.Station, Device: []byte(r.DeviceID), Count: uint64(n)})
		return err
	})
	if err != nil || spoiledCount != 1 {
		t.Fatalf("spoil: %v (count %d)", err, spoiledCount)
	}
	d2 := &store.Device{DeviceID: "d2", OrderID: "o1", Certificate: []byte("cert d2")}
	wantErr(t, "certify spoiled", s.Certify(ctx, d2, certifiedEntry("o1", d2)), store.ErrReservationState)
	if q, _ := s.Quotas(ctx, "o1"); len(q) != 1 || q[0].Used != 1 || q[0].Spoiled != 1 {
		t.Fatalf("line after spoil: %+v", q)
	}

	// Stale reservations: the oldest reserved ones, not committed or spoiled.
	if _, err := s.ReserveFor(ctx, store.ReserveRequest{OrderID: "o1", DeviceID: "d3"}); err != nil {
		t.Fatal(err)
	}
	stale, err := s.StaleReservations(ctx, time.Now().Add(time.Minute), 10)
	if err != nil || len(stale) != 1 || stale[0].DeviceID != "d3" || stale[0].Station != nil {
		t.Fatalf("stale reservations %+v, %v", stale, err)
	}
	if stale, err := s.StaleReservations(ctx, time.Now().Add(-time.Hour), 10); err != nil || len(stale) != 0 {
		t.Fatalf("stale reservations an hour ago %+v, %v", stale, err)
	}

	// d3 is reserved, then the order revoked: it is never certified.
	defer func() {
		d3 := &store.Device{DeviceID: "d3", OrderID: "o1", Certificate: []byte("cert d3")}
		wantErr(t, "certify under a revoked order", s.Certify(ctx, d3, certifiedEntry("o1", d3)), store.ErrOrderRevoked)
		if _, err := s.Device(ctx, "d3"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("device certified under a revoked order: %v", err)
		}
		if r, _ := s.Reservation(ctx, "d3"); r.State != store.Reserved {
			t.Fatalf("reservation after a refused certify: %s", r.State)
		}
		if n, _ := s.Log().Size(ctx); n != 4 {
			t.Fatalf("log size %d after a refused certify, want 4", n)
		}
	}()
	if err := s.RevokeOrderLogged(ctx, "o1", func(ctx context.Context, ls auditlog.Store) error {
		_, err := appendEntry(ctx, ls, &auditlog.Entry{Kind: auditlog.OrderRevoked, Order: orderID("o1")})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "revoke again", s.RevokeOrderLogged(ctx, "o1", nil), store.ErrOrderRevoked)

	rep := audit(t, s)
	if rep.Size != 4 {
		t.Fatalf("audited %d entries, want 4", rep.Size)
	}
}

// testLogRace certifies devices from many goroutines on two instances:
// every certified device is in the log once, and the log audits.
func testLogRace(t *testing.T, open func() (store.Store, error)) {
	ctx := context.Background()
	a, b := mustOpen(t, open), mustOpen(t, open)
	const n = 24
	if err := a.LoadOrder(ctx, newOrder("race", n), nil, loadedEntry("race", n)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("dev-%02d", i)
			if _, err := s.ReserveFor(ctx, store.ReserveRequest{OrderID: "race", DeviceID: id}); err != nil {
				errs <- err
				return
			}
			d := &store.Device{DeviceID: id, OrderID: "race", Station: []byte{1}, Certificate: []byte("cert " + id)}
			errs <- s.Certify(ctx, d, certifiedEntry("race", d))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	rep := audit(t, a)
	if rep.Size != n+1 {
		t.Fatalf("audited %d entries, want %d", rep.Size, n+1)
	}
	if c, _ := b.Counter(ctx, "race"); c.Certified != n {
		t.Fatalf("certified %d, want %d", c.Certified, n)
	}
}

// testReleases stores and reads published packages.
func testReleases(t *testing.T, open func() (store.Store, error)) {
	ctx := context.Background()
	s := mustOpen(t, open)
	r := &store.Release{ManifestDigest: sha256.Sum256([]byte("m")), Version: "1.2.3", SecurityCounter: 7, Package: []byte("package bytes")}
	if err := s.PutRelease(ctx, r); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "publish twice", s.PutRelease(ctx, r), store.ErrReleaseExists)
	got, err := s.Release(ctx, r.ManifestDigest)
	if err != nil || got.Version != "1.2.3" || got.SecurityCounter != 7 || !bytes.Equal(got.Package, r.Package) {
		t.Fatalf("release %+v, %v", got, err)
	}
	if _, err := s.Release(ctx, sha256.Sum256([]byte("other"))); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown release: %v", err)
	}
	list, err := s.Releases(ctx)
	if err != nil || len(list) != 1 || list[0].Package != nil || list[0].Version != "1.2.3" {
		t.Fatalf("releases %+v, %v", list, err)
	}
}
