// Package storetest is the conformance test of store.Store engines: every
// engine runs Run with its own Opener.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sbm-project/sbm/server/store"
)

// Opener returns a function opening store instances on one new, empty
// database: every call of the returned function opens another instance on
// that same database. The instances are closed by the tests.
type Opener func(t testing.TB) func() (store.Store, error)

// Run runs the conformance tests against the engine.
func Run(t *testing.T, newDB Opener) {
	tests := []struct {
		name string
		f    func(t *testing.T, open func() (store.Store, error))
	}{
		{"Orders", testOrders},
		{"ReserveCommitSpoil", testReserveCommitSpoil},
		{"QuotasStations", testQuotasStations},
		{"Lines", testLines},
		{"RaceLine", testRaceLine},
		{"Reopen", testReopen},
		{"RaceOneInstance", func(t *testing.T, open func() (store.Store, error)) { testRace(t, open, 1) }},
		{"RaceTwoInstances", func(t *testing.T, open func() (store.Store, error)) { testRace(t, open, 2) }},
		{"RaceSameDevice", testRaceSameDevice},
		{"Certify", testCertify},
		{"LogRace", testLogRace},
		{"LogBatch", testLogBatch},
		{"Releases", testReleases},
		{"Summary", testSummary},
	}
	tests = append(tests, fleetTests...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.f(t, newDB(t)) })
	}
}

func mustOpen(t testing.TB, open func() (store.Store, error)) store.Store {
	t.Helper()
	s, err := open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newOrder(id string, count int64) *store.Order {
	return &store.Order{
		ID:       id,
		Signed:   []byte("signed " + id),
		VendorID: "0b5cbe42-0c1c-4c36-8f5e-3c7b0d6c1e11",
		ClassID:  "8a3c1e0f-4d2b-4a9e-9b7c-2f1e0d3c4b5a",
		Count:    count,
		NotAfter: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC),
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}

func wantCounter(t *testing.T, s store.Store, id string, used, spoiled int64) {
	t.Helper()
	c, err := s.Counter(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if c.Used != used || c.Spoiled != spoiled {
		t.Fatalf("counter of %s: used %d spoiled %d, want %d %d", id, c.Used, c.Spoiled, used, spoiled)
	}
}

func testOrders(t *testing.T, open func() (store.Store, error)) {
	ctx := context.Background()
	s := mustOpen(t, open)
	a, b := newOrder("aa", 3), newOrder("bb", 7)
	for _, o := range []*store.Order{a, b} {
		if err := s.CreateOrder(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	wantErr(t, "duplicate order", s.CreateOrder(ctx, newOrder("aa", 1)), store.ErrOrderExists)
	if err := s.CreateOrder(ctx, newOrder("cc", 0)); err == nil {
		t.Fatal("order with count 0 accepted")
	}
	got, err := s.Order(ctx, "aa")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "aa" || string(got.Signed) != "signed aa" || got.Count != 3 || got.VendorID != a.VendorID ||
		got.ClassID != a.ClassID || !got.NotAfter.Equal(a.NotAfter) || got.State != store.OrderActive || got.Created.IsZero() {
		t.Fatalf("order read back as %+v", got)
	}
	_, err = s.Order(ctx, "zz")
	wantErr(t, "unknown order", err, store.ErrNotFound)
	all, err := s.Orders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].ID != "aa" || all[1].ID != "bb" {
		t.Fatalf("orders: %v", all)
	}
	c, err := s.Counter(ctx, "bb")
	if err != nil {
		t.Fatal(err)
	}
	if c.Count != 7 || c.Remaining() != 7 {
		t.Fatalf("new counter %+v", c)
	}

	if err := s.RevokeOrder(ctx, "aa"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "revoke twice", s.RevokeOrder(ctx, "aa"), store.ErrOrderRevoked)
	wantErr(t, "revoke unknown", s.RevokeOrder(ctx, "zz"), store.ErrNotFound)
	if got, _ := s.Order(ctx, "aa"); got.State != store.OrderRevoked {
		t.Fatalf("revoked order in state %q", got.State)
	}
	_, err = s.Reserve(ctx, "aa", "dev1")
	wantErr(t, "reserve on a revoked order", err, store.ErrOrderRevoked)
	_, err = s.Reserve(ctx, "zz", "dev1")
	wantErr(t, "reserve on an unknown order", err, store.ErrNotFound)
	wantCounter(t, s, "aa", 0, 0)
}

func testReserveCommitSpoil(t *testing.T, open func() (store.Store, error)) {
	ctx := context.Background()
	s := mustOpen(t, open)
	for _, o := range []*store.Order{newOrder("o1", 3), newOrder("o2", 3)} {
		if err := s.CreateOrder(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		op, order, device string
		want              error
		existing          bool
		used, spoiled     int64
	}{
		{"reserve", "o1", "d1", nil, false, 1, 0},
		{"reserve", "o1", "d1", nil, true, 1, 0}, // a retry: the same unit
		{"commit", "o1", "d1", nil, false, 1, 0},
		{"commit", "o1", "d1", nil, false, 1, 0}, // idempotent
		{"spoil", "o1", "d1", store.ErrReservationState, false, 1, 0},
		{"reserve", "o2", "d1", store.ErrDeviceTaken, false, 1, 0},
		{"commit", "o1", "d9", store.ErrNotFound, false, 1, 0},
		{"commit", "o2", "d1", store.ErrNotFound, false, 1, 0},
		{"reserve", "o1", "d2", nil, false, 2, 0},
		{"spoil", "o1", "d2", nil, false, 1, 1},
		{"spoil", "o1", "d2", nil, false, 1, 1}, // idempotent
		{"commit", "o1", "d2", store.ErrReservationState, false, 1, 1},
		{"reserve", "o1", "d2", nil, true, 1, 1}, // a spoiled unit is not given again
		{"reserve", "o1", "d3", nil, false, 2, 1},
		{"reserve", "o1", "d4", store.ErrOrderExhausted, false, 2, 1},
		{"reserve", "o1", "d3", nil, true, 2, 1}, // a retry still works when exhausted
		{"commit", "o1", "d3", nil, false, 2, 1},
	}
	for i, st := range steps {
		var err error
		var res store.Reservation
		switch st.op {
		case "reserve":
			res, err = s.Reserve(ctx, st.order, st.device)
		case "commit":
			err = s.Commit(ctx, st.order, st.device)
		case "spoil":
			err = s.Spoil(ctx, st.order, st.device)
		}
		what := fmt.Sprintf("step %d: %s %s %s", i, st.op, st.order, st.device)
		if st.want != nil {
			wantErr(t, what, err, st.want)
		} else if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if st.op == "reserve" && err == nil && (res.Existing != st.existing || res.OrderID != st.order || res.DeviceID != st.device) {
			t.Fatalf("%s: reservation %+v, want existing=%v", what, res, st.existing)
		}
		wantCounter(t, s, "o1", st.used, st.spoiled)
	}
	r, err := s.Reservation(ctx, "d2")
	if err != nil || r.State != store.Spoiled {
		t.Fatalf("reservation of d2: %+v, %v", r, err)
	}
	_, err = s.Reservation(ctx, "d9")
	wantErr(t, "unknown reservation", err, store.ErrNotFound)
}

func testQuotasStations(t *testing.T, open func() (store.Store, error)) {
	ctx := context.Background()
	s := mustOpen(t, open)
	if err := s.CreateOrder(ctx, newOrder("o1", 10)); err != nil {
		t.Fatal(err)
	}
	for _, q := range []store.Quota{{OrderID: "o1", Line: "line-b", Count: 4}, {OrderID: "o1", Line: "line-a", Count: 5}, {OrderID: "o1", Line: "line-b", Count: 3}} {
		if err := s.SetQuota(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	wantErr(t, "quota of an unknown order", s.SetQuota(ctx, store.Quota{OrderID: "zz", Line: "l", Count: 1}), store.ErrNotFound)
	qs, err := s.Quotas(ctx, "o1")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(qs) != "[{o1 line-a 5 0 0} {o1 line-b 3 0 0}]" {
		t.Fatalf("quotas %v", qs)
	}

	st := &store.Station{Name: "cm1-line1", CertDigest: [32]byte{1, 2, 3}}
	if err := s.PutStation(ctx, st); err != nil {
		t.Fatal(err)
	}
	st.CertDigest[0] = 9
	if err := s.PutStation(ctx, st); err != nil {
		t.Fatal(err)
	}
	got, err := s.Station(ctx, "cm1-line1")
	if err != nil {
		t.Fatal(err)
	}
	if got.CertDigest != st.CertDigest {
		t.Fatalf("station digest %x", got.CertDigest)
	}
	_, err = s.Station(ctx, "nobody")
	wantErr(t, "unknown station", err, store.ErrNotFound)
}

// testReopen opens the database again: the migrations are not applied
// twice and the data is there.
func testReopen(t *testing.T, open func() (store.Store, error)) {
	ctx := context.Background()
	s := mustOpen(t, open)
	if err := s.CreateOrder(ctx, newOrder("o1", 2)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2 := mustOpen(t, open)
	if _, err := s2.Order(ctx, "o1"); err != nil {
		t.Fatal(err)
	}
}

// testRace has 8 goroutines race 50 reservations of distinct devices on an
// order of 5, spread over n store instances on one database: exactly 5
// succeed, the others get ErrOrderExhausted.
func testRace(t *testing.T, open func() (store.Store, error), n int) {
	const count, attempts, workers = 5, 50, 8
	ctx := context.Background()
	stores := make([]store.Store, n)
	for i := range stores {
		stores[i] = mustOpen(t, open)
	}
	if err := stores[0].CreateOrder(ctx, newOrder("race", count)); err != nil {
		t.Fatal(err)
	}
	next := make(chan int, attempts)
	for i := range attempts {
		next <- i
	}
	close(next)
	var mu sync.Mutex
	var ok, exhausted int
	var other []error
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			s := stores[w%n]
			for i := range next {
				_, err := s.Reserve(ctx, "race", fmt.Sprintf("device-%02d", i))
				mu.Lock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, store.ErrOrderExhausted):
					exhausted++
				default:
					other = append(other, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(other) > 0 {
		t.Fatalf("unexpected errors: %v", other)
	}
	if ok != count || exhausted != attempts-count {
		t.Fatalf("%d reserved, %d exhausted; want %d, %d", ok, exhausted, count, attempts-count)
	}
	wantCounter(t, stores[n-1], "race", count, 0)
}

// testRaceSameDevice has 8 goroutines reserve one device at once: one
// unit is taken, every goroutine gets that reservation.
func testRaceSameDevice(t *testing.T, open func() (store.Store, error)) {
	ctx := context.Background()
	s := mustOpen(t, open)
	if err := s.CreateOrder(ctx, newOrder("o1", 5)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	fresh := 0
	var errs []error
	for range 8 {
		wg.Go(func() {
			r, err := s.Reserve(ctx, "o1", "the-device")
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			} else if !r.Existing {
				fresh++
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 || fresh != 1 {
		t.Fatalf("%d new reservations, errors %v; want 1 and none", fresh, errs)
	}
	wantCounter(t, s, "o1", 1, 0)
}

// Bench measures a reservation and its commit, the store's part of
// certifying one device, from parallel goroutines on one order.
func Bench(b *testing.B, newDB Opener) {
	ctx := context.Background()
	s := mustOpen(b, newDB(b))
	if err := s.CreateOrder(ctx, newOrder("bench", 1<<40)); err != nil {
		b.Fatal(err)
	}
	var n atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			d := fmt.Sprintf("device-%d", n.Add(1))
			if _, err := s.Reserve(ctx, "bench", d); err != nil {
				b.Error(err)
				return
			}
			if err := s.Commit(ctx, "bench", d); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "devices/s")
}

// testLines counts reservations against per-line sub-quotas.
func testLines(t *testing.T, open func() (store.Store, error)) {
	ctx := context.Background()
	s := mustOpen(t, open)
	if err := s.CreateOrder(ctx, newOrder("o1", 4)); err != nil {
		t.Fatal(err)
	}
	for _, q := range []store.Quota{{OrderID: "o1", Line: "a", Count: 2}, {OrderID: "o1", Line: "b", Count: 2}} {
		if err := s.SetQuota(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		op, line, device string
		want             error
	}{
		{"reserve", "a", "d1", nil},
		{"reserve", "a", "d2", nil},
		{"reserve", "a", "d3", store.ErrLineExhausted},
		{"reserve", "a", "d1", nil}, // a retry
		{"reserve", "c", "d3", store.ErrNotFound},
		{"spoil", "a", "d2", nil},
		{"reserve", "a", "d3", store.ErrLineExhausted}, // spoiled units stay counted
		{"reserve", "b", "d3", nil},
		{"reserve", "", "d4", nil}, // order-wide: 3 used, 1 spoiled
		{"reserve", "b", "d5", store.ErrOrderExhausted},
	}
	for i, st := range steps {
		var err error
		switch {
		case st.op == "spoil":
			err = s.Spoil(ctx, "o1", st.device)
		case st.line == "":
			_, err = s.Reserve(ctx, "o1", st.device)
		default:
			_, err = s.ReserveLine(ctx, "o1", st.line, st.device)
		}
		what := fmt.Sprintf("step %d: %s %s %s", i, st.op, st.line, st.device)
		if st.want != nil {
			wantErr(t, what, err, st.want)
		} else if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	qs, err := s.Quotas(ctx, "o1")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(qs) != "[{o1 a 2 1 1} {o1 b 2 1 0}]" {
		t.Fatalf("quotas %v", qs)
	}
	if r, _ := s.Reservation(ctx, "d3"); r.Line != "b" {
		t.Fatalf("reservation of d3 on line %q", r.Line)
	}
	wantCounter(t, s, "o1", 3, 1)
	// A line's count cannot go below what it used.
	if err := s.SetQuota(ctx, store.Quota{OrderID: "o1", Line: "a", Count: 1}); err == nil {
		t.Fatal("line quota set below its use")
	}
	if err := s.SetQuota(ctx, store.Quota{OrderID: "o1", Line: "b", Count: 3}); err != nil {
		t.Fatal(err)
	}
}

// testRaceLine races 8 goroutines over 30 reservations on a line of 3 of an
// order of 10: exactly 3 succeed.
func testRaceLine(t *testing.T, open func() (store.Store, error)) {
	ctx := context.Background()
	s := mustOpen(t, open)
	if err := s.CreateOrder(ctx, newOrder("o1", 10)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetQuota(ctx, store.Quota{OrderID: "o1", Line: "a", Count: 3}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var ok, exhausted atomic.Int64
	for w := range 8 {
		wg.Go(func() {
			for i := range 30 / 8 {
				_, err := s.ReserveLine(ctx, "o1", "a", fmt.Sprintf("d-%d-%d", w, i))
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, store.ErrLineExhausted):
					exhausted.Add(1)
				default:
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if ok.Load() != 3 {
		t.Fatalf("%d reserved on a line of 3 (%d exhausted)", ok.Load(), exhausted.Load())
	}
	wantCounter(t, s, "o1", 3, 0)
}
