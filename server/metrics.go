package server

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sbm-project/sbm/server/auditlog"
	"github.com/sbm-project/sbm/server/store"
)

// metrics are the service's Prometheus metrics, registered on the
// server's own registry (no global state).
type metrics struct {
	reg        *prometheus.Registry
	requests   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	storeOps   *prometheus.HistogramVec
	ordersLoad *prometheus.CounterVec
	certify    *prometheus.CounterVec
	upkBatch   prometheus.Histogram
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sbm_http_requests_total",
			Help: "HTTP requests by route, method and status code.",
		}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sbm_http_request_duration_seconds",
			Help:    "HTTP request latency by route and method.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"route", "method"}),
		storeOps: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sbm_store_operation_duration_seconds",
			Help:    "Store operation latency by operation and result (ok, or the error class).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"op", "result"}),
		ordersLoad: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sbm_orders_loaded_total",
			Help: "Production orders submitted for loading, by result.",
		}, []string{"result"}),
		certify: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sbm_certifications_total",
			Help: "Device certification requests from stations, by result (ok, retry, or the refusal).",
		}, []string{"result"}),
		upkBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sbm_upk_commit_batch_size",
			Help:    "UPKs stored and logged per transaction of the update service's group commit.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 7),
		}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.storeOps, m.ordersLoad, m.certify, m.upkBatch,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// handler serves the metrics in the Prometheus text format.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// instrument counts and times the requests of one route.
func (m *metrics) instrument(route string, h http.Handler) http.Handler {
	labels := prometheus.Labels{"route": route}
	return promhttp.InstrumentHandlerCounter(m.requests.MustCurryWith(labels),
		promhttp.InstrumentHandlerDuration(m.latency.MustCurryWith(labels), h))
}

// result classifies a store error for the metrics' result label.
func result(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, store.ErrNotFound):
		return "not_found"
	case errors.Is(err, store.ErrOrderExists):
		return "exists"
	case errors.Is(err, store.ErrOrderExhausted), errors.Is(err, store.ErrLineExhausted):
		return "exhausted"
	case errors.Is(err, store.ErrOrderRevoked):
		return "revoked"
	case errors.Is(err, store.ErrDeviceTaken), errors.Is(err, store.ErrReservationState):
		return "conflict"
	}
	return "error"
}

// timedStore is a store.Store that records each operation's latency.
type timedStore struct {
	s store.Store
	h *prometheus.HistogramVec
}

func (t timedStore) observe(op string, start time.Time, err error) {
	t.h.WithLabelValues(op, result(err)).Observe(time.Since(start).Seconds())
}

func (t timedStore) CreateOrder(ctx context.Context, o *store.Order) (err error) {
	defer func(start time.Time) { t.observe("create_order", start, err) }(time.Now())
	return t.s.CreateOrder(ctx, o)
}

func (t timedStore) Order(ctx context.Context, id string) (o *store.Order, err error) {
	defer func(start time.Time) { t.observe("order", start, err) }(time.Now())
	return t.s.Order(ctx, id)
}

func (t timedStore) Orders(ctx context.Context) (orders []*store.Order, err error) {
	defer func(start time.Time) { t.observe("orders", start, err) }(time.Now())
	return t.s.Orders(ctx)
}

func (t timedStore) RevokeOrder(ctx context.Context, id string) (err error) {
	defer func(start time.Time) { t.observe("revoke_order", start, err) }(time.Now())
	return t.s.RevokeOrder(ctx, id)
}

func (t timedStore) SetQuota(ctx context.Context, q store.Quota) (err error) {
	defer func(start time.Time) { t.observe("set_quota", start, err) }(time.Now())
	return t.s.SetQuota(ctx, q)
}

func (t timedStore) Quotas(ctx context.Context, orderID string) (qs []store.Quota, err error) {
	defer func(start time.Time) { t.observe("quotas", start, err) }(time.Now())
	return t.s.Quotas(ctx, orderID)
}

func (t timedStore) PutStation(ctx context.Context, st *store.Station) (err error) {
	defer func(start time.Time) { t.observe("put_station", start, err) }(time.Now())
	return t.s.PutStation(ctx, st)
}

func (t timedStore) Station(ctx context.Context, name string) (st *store.Station, err error) {
	defer func(start time.Time) { t.observe("station", start, err) }(time.Now())
	return t.s.Station(ctx, name)
}

func (t timedStore) Counter(ctx context.Context, orderID string) (c store.Counter, err error) {
	defer func(start time.Time) { t.observe("counter", start, err) }(time.Now())
	return t.s.Counter(ctx, orderID)
}

func (t timedStore) Reserve(ctx context.Context, orderID, deviceID string) (r store.Reservation, err error) {
	defer func(start time.Time) { t.observe("reserve", start, err) }(time.Now())
	return t.s.Reserve(ctx, orderID, deviceID)
}

func (t timedStore) ReserveLine(ctx context.Context, orderID, line, deviceID string) (r store.Reservation, err error) {
	defer func(start time.Time) { t.observe("reserve_line", start, err) }(time.Now())
	return t.s.ReserveLine(ctx, orderID, line, deviceID)
}

func (t timedStore) Commit(ctx context.Context, orderID, deviceID string) (err error) {
	defer func(start time.Time) { t.observe("commit", start, err) }(time.Now())
	return t.s.Commit(ctx, orderID, deviceID)
}

func (t timedStore) Spoil(ctx context.Context, orderID, deviceID string) (err error) {
	defer func(start time.Time) { t.observe("spoil", start, err) }(time.Now())
	return t.s.Spoil(ctx, orderID, deviceID)
}

func (t timedStore) Reservation(ctx context.Context, deviceID string) (r store.Reservation, err error) {
	defer func(start time.Time) { t.observe("reservation", start, err) }(time.Now())
	return t.s.Reservation(ctx, deviceID)
}

func (t timedStore) Ping(ctx context.Context) (err error) {
	defer func(start time.Time) { t.observe("ping", start, err) }(time.Now())
	return t.s.Ping(ctx)
}

func (t timedStore) ReserveFor(ctx context.Context, req store.ReserveRequest) (r store.Reservation, err error) {
	defer func(start time.Time) { t.observe("reserve", start, err) }(time.Now())
	return t.s.ReserveFor(ctx, req)
}

func (t timedStore) Certify(ctx context.Context, d *store.Device, logf func(context.Context, int64, auditlog.Store) (int64, error)) (err error) {
	defer func(start time.Time) { t.observe("certify", start, err) }(time.Now())
	return t.s.Certify(ctx, d, logf)
}

func (t timedStore) Device(ctx context.Context, id string) (d *store.Device, err error) {
	defer func(start time.Time) { t.observe("device", start, err) }(time.Now())
	return t.s.Device(ctx, id)
}

func (t timedStore) SpoilLogged(ctx context.Context, orderID, deviceID string, logf func(context.Context, store.Reservation, int64, auditlog.Store) error) (err error) {
	defer func(start time.Time) { t.observe("spoil", start, err) }(time.Now())
	return t.s.SpoilLogged(ctx, orderID, deviceID, logf)
}

func (t timedStore) StaleReservations(ctx context.Context, before time.Time, limit int) (rs []store.Reservation, err error) {
	defer func(start time.Time) { t.observe("stale_reservations", start, err) }(time.Now())
	return t.s.StaleReservations(ctx, before, limit)
}

func (t timedStore) LoadOrder(ctx context.Context, o *store.Order, qs []store.Quota, logf func(context.Context, auditlog.Store) error) (err error) {
	defer func(start time.Time) { t.observe("load_order", start, err) }(time.Now())
	return t.s.LoadOrder(ctx, o, qs, logf)
}

func (t timedStore) RevokeOrderLogged(ctx context.Context, id string, logf func(context.Context, auditlog.Store) error) (err error) {
	defer func(start time.Time) { t.observe("revoke_order", start, err) }(time.Now())
	return t.s.RevokeOrderLogged(ctx, id, logf)
}

func (t timedStore) Log() auditlog.Store { return t.s.Log() }

func (t timedStore) PutRelease(ctx context.Context, r *store.Release) (err error) {
	defer func(start time.Time) { t.observe("put_release", start, err) }(time.Now())
	return t.s.PutRelease(ctx, r)
}

func (t timedStore) Release(ctx context.Context, d [32]byte) (r *store.Release, err error) {
	defer func(start time.Time) { t.observe("release", start, err) }(time.Now())
	return t.s.Release(ctx, d)
}

func (t timedStore) Releases(ctx context.Context) (rs []*store.Release, err error) {
	defer func(start time.Time) { t.observe("releases", start, err) }(time.Now())
	return t.s.Releases(ctx)
}

func (t timedStore) Close() error { return t.s.Close() }

var _ store.Store = timedStore{}
