// Package server is the OEM service: an HTTPS server that authenticates
// every client by its certificate (mutual TLS, in the Go server itself),
// over a store.Store (embedded SQLite or shared PostgreSQL).
//
// This is its foundation: production orders are loaded, listed and revoked
// through the management API by the OEM operator (a certificate with the
// operator role, see trust.ServiceRole). The station API (provisioning
// against an order), the audit log and the update service build on it.
//
// Routes on the TLS listener (every client presents a certificate issued
// by the context's device CA):
//
//	GET  /healthz                  any client certificate of the CA
//	GET  /metrics                  operator
//	POST /v1/orders                operator; body: a signed order
//	GET  /v1/orders                operator
//	GET  /v1/orders/{id}           operator
//	POST /v1/orders/{id}/revoke    operator
//
// HealthHandler serves /healthz and /metrics without TLS, for a separate
// listener reachable only by the host's monitoring.
//
// The server imports trust, image and upk; nothing on the device side
// imports it.
package server

import (
	"context"
	"crypto"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/sbm-project/sbm/server/auditlog"
	"github.com/sbm-project/sbm/server/dashboard"
	"github.com/sbm-project/sbm/server/order"
	"github.com/sbm-project/sbm/server/store"
	"github.com/sbm-project/sbm/trust"
)

// Config configures a Server.
type Config struct {
	// Context is the OEM's security context: its device CA issues the
	// server's certificate and authenticates clients; its root verifies
	// orders.
	Context *trust.Context
	// Store holds the service's state. The server does not close it.
	Store store.Store
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// LogKey signs the audit log's checkpoints; nil means the context's
	// (trust.Context.LogKey, created on first use).
	LogKey crypto.Signer
	// DashboardURL is the dashboard listener's base URL
	// (https://HOST:PORT), for the login links it hands out.
	DashboardURL string
	// Hook, if set, is called at each step of a certification
	// (HookReserved, HookSigned, HookCommitted): fault injection for the
	// crash tests.
	Hook func(step string)
}

// Server is the OEM service.
type Server struct {
	ctx     *trust.Context
	store   store.Store
	log     *slog.Logger
	now     func() time.Time
	metrics *metrics
	mux     *http.ServeMux
	logKey  crypto.Signer
	origin  string
	hookf   func(string)
	orders  sync.Map // order ID → *cachedOrder
	issuers issuers
	dash    *dashboard.Dashboard
	// fleetView adds the update service's part to the dashboard's view.
	fleetView func(context.Context, *dashboard.View) error
	auditMu   sync.Mutex
	lastAudit *dashboard.AuditResult
	summaries fleetSummaries
	fleet     *fleet // the update service (routeFleet)
}

// New returns a server. It does not listen: see Serve, Handler.
func New(cfg Config) (*Server, error) {
	if cfg.Context == nil || cfg.Store == nil {
		return nil, errors.New("server: a context and a store are required")
	}
	s := &Server{ctx: cfg.Context, log: cfg.Logger, now: cfg.Now, metrics: newMetrics(), logKey: cfg.LogKey, hookf: cfg.Hook,
		origin: LogOrigin(cfg.Context.VendorID(), cfg.Context.ClassID())}
	if s.logKey == nil {
		k, err := cfg.Context.LogKey()
		if err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
		s.logKey = k
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.store = timedStore{s: cfg.Store, h: s.metrics.storeOps}
	s.mux = http.NewServeMux()
	s.route("GET /healthz", "healthz", "", s.handleHealth)
	s.route("GET /metrics", "metrics", trust.RoleOperator, s.metrics.handler().ServeHTTP)
	s.route("POST /v1/orders", "orders_load", trust.RoleOperator, s.handleLoad)
	s.route("GET /v1/orders", "orders_list", trust.RoleOperator, s.handleList)
	s.route("GET /v1/orders/{id}", "orders_get", trust.RoleOperator, s.handleGet)
	s.route("POST /v1/orders/{id}/revoke", "orders_revoke", trust.RoleOperator, s.handleRevoke)
	s.route("POST /v1/releases", "releases_publish", trust.RoleOperator, s.handlePublish)
	s.route("GET /v1/releases", "releases_list", trust.RoleOperator, s.handleReleases)
	s.route("GET /v1/devices/{id}", "devices_get", trust.RoleOperator, s.handleDevice)
	s.route("GET /v1/log", "log_export", trust.RoleOperator, s.handleExport)
	s.route("GET /v1/log/checkpoint", "log_checkpoint", "", s.handleCheckpoint)
	s.route("GET /v1/log/proof", "log_proof", "", s.handleInclusion)
	s.fleetView = s.dashboardFleet
	s.dash = dashboard.New(dashboard.SourceFunc(s.DashboardView), dashboard.Options{BaseURL: cfg.DashboardURL, Logger: s.log, Now: s.now})
	s.route("POST /v1/dashboard/login", "dashboard_login", trust.RoleOperator, s.handleDashboardLogin)
	s.route("POST /v1/log/audits", "log_audit_result", trust.RoleOperator, s.handleAuditResult)
	s.route("GET /v1/station/anchors", "station_anchors", trust.RoleStation, s.handleAnchors)
	s.route("POST /v1/station/certify", "station_certify", trust.RoleStation, s.handleCertify)
	s.route("POST /v1/station/spoil", "station_spoil", trust.RoleStation, s.handleSpoil)
	s.routeFleet()
	return s, nil
}

// route registers a handler that requires a client certificate with the
// given service role ("": any certificate the TLS layer accepted).
func (s *Server) route(pattern, name string, role trust.ServiceRole, h http.HandlerFunc) {
	var inner http.Handler = refuseDevices(h) // open to every service role, not to devices (fleet.go)
	if role != "" {
		inner = s.requireRole(role, h)
	}
	s.mux.Handle(pattern, s.metrics.instrument(name, s.logRequests(inner)))
}

// Handler returns the handler of the TLS listener. It expects requests
// whose r.TLS holds a verified client certificate (see TLSConfig).
func (s *Server) Handler() http.Handler { return s.mux }

// HealthHandler returns the handler of the plain-HTTP health listener:
// /healthz and /metrics, nothing else.
func (s *Server) HealthHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", s.metrics.instrument("healthz_plain", http.HandlerFunc(s.handleHealth)))
	mux.Handle("GET /metrics", s.metrics.handler())
	return mux
}

// TLSConfig issues the server's certificate from the context's device CA
// for hosts (DNS names and IP addresses) and returns the listener's
// configuration: TLS 1.3, a client certificate required and verified
// against the device CA.
func (s *Server) TLSConfig(hosts []string) (*tls.Config, error) {
	cred, err := s.ctx.IssueServiceCertificate(trust.RoleServer, "sbm service", hosts, trust.ServerCertValidity)
	if err != nil {
		return nil, fmt.Errorf("server certificate: %w", err)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cred.TLSCertificate()},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    s.ctx.ServiceCAPool(),
	}, nil
}

// Serve serves the TLS API on ln (a plain TCP listener; Serve adds TLS with
// tlsConfig) until ctx is done, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context, ln net.Listener, tlsConfig *tls.Config) error {
	hs := &http.Server{
		Handler:           s.mux,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	return serve(ctx, hs, func() error { return hs.ServeTLS(ln, "", "") })
}

// ServeHealth serves HealthHandler on ln (plain HTTP) until ctx is done.
func (s *Server) ServeHealth(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{Handler: s.HealthHandler(), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	return serve(ctx, hs, func() error { return hs.Serve(ln) })
}

func serve(ctx context.Context, hs *http.Server, run func() error) error {
	errc := make(chan error, 1)
	go func() { errc <- run() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := hs.Shutdown(sctx)
	if rerr := <-errc; !errors.Is(rerr, http.ErrServerClosed) && err == nil {
		err = rerr
	}
	return err
}

type ctxKey int

const peerKey ctxKey = 0

// requireRole lets a request through only if its client certificate
// verifies against the device CA and names role: a station's or a device's
// certificate is refused on management endpoints (403).
func (s *Server) requireRole(role trust.ServiceRole, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			writeError(w, http.StatusUnauthorized, errors.New("a client certificate is required"))
			return
		}
		if err := s.ctx.VerifyServiceCertificate(r.TLS.PeerCertificates, role, s.now()); err != nil {
			writeError(w, http.StatusForbidden, err)
			return
		}
		h.ServeHTTP(w, r)
	})
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// Flush implements http.Flusher.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// logRequests logs one structured line per request.
func (s *Server) logRequests(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(sw, r)
		attrs := []slog.Attr{
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", sw.code), slog.Duration("duration", time.Since(start)),
			slog.String("remote", r.RemoteAddr),
		}
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			c := r.TLS.PeerCertificates[0]
			attrs = append(attrs, slog.String("peer", c.Subject.CommonName), slog.String("peer_role", string(trust.ServiceRoleOf(c))))
		}
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
	})
}

// Error is the JSON body of a refused request.
type Error struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, Error{Error: err.Error()})
}

// Health is the body of /healthz.
type Health struct {
	Status string `json:"status"`
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log.Error("health check", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, Health{Status: "store unavailable"})
		return
	}
	writeJSON(w, http.StatusOK, Health{Status: "ok"})
}

// OrderStatus is an order as the management API shows it.
type OrderStatus struct {
	ID        string    `json:"id"`
	State     string    `json:"state"`
	VendorID  string    `json:"vendor_id"`
	ClassID   string    `json:"class_id"`
	Count     int64     `json:"count"`
	Used      int64     `json:"used"`
	Spoiled   int64     `json:"spoiled"`
	Remaining int64     `json:"remaining"`
	NotAfter  time.Time `json:"not_after"`
	Loaded    time.Time `json:"loaded"`
	Lines     []Line    `json:"lines"`
}

// Line is one production line's sub-quota of an order.
type Line struct {
	Name      string `json:"name"`
	Count     int64  `json:"count"`
	Used      int64  `json:"used"`
	Spoiled   int64  `json:"spoiled"`
	Remaining int64  `json:"remaining"`
}

// OrderList is the body of GET /v1/orders.
type OrderList struct {
	Orders []OrderStatus `json:"orders"`
}

func (s *Server) status(ctx context.Context, o *store.Order) (OrderStatus, error) {
	c, err := s.store.Counter(ctx, o.ID)
	if err != nil {
		return OrderStatus{}, err
	}
	qs, err := s.store.Quotas(ctx, o.ID)
	if err != nil {
		return OrderStatus{}, err
	}
	st := OrderStatus{ID: o.ID, State: string(o.State), VendorID: o.VendorID, ClassID: o.ClassID,
		Count: c.Count, Used: c.Used, Spoiled: c.Spoiled, Remaining: c.Remaining(), NotAfter: o.NotAfter, Loaded: o.Created, Lines: []Line{}}
	for _, q := range qs {
		st.Lines = append(st.Lines, Line{Name: q.Line, Count: q.Count, Used: q.Used, Spoiled: q.Spoiled, Remaining: q.Remaining()})
	}
	return st, nil
}

// storeError answers a failed store operation.
func (s *Server) storeError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, err)
	case errors.Is(err, store.ErrOrderExists), errors.Is(err, store.ErrOrderRevoked):
		writeError(w, http.StatusConflict, err)
	default:
		s.log.ErrorContext(r.Context(), "store", "err", err, "path", r.URL.Path)
		writeError(w, http.StatusInternalServerError, errors.New("internal error"))
	}
}

func (s *Server) handleLoad(w http.ResponseWriter, r *http.Request) {
	signed, err := io.ReadAll(http.MaxBytesReader(w, r.Body, order.MaxSize))
	if err != nil {
		s.metrics.ordersLoad.WithLabelValues("malformed").Inc()
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("order: %w", err))
		return
	}
	o, err := order.Verify(s.ctx, signed, s.now())
	if err != nil {
		code, res := http.StatusUnprocessableEntity, "refused"
		if errors.Is(err, order.ErrMalformed) {
			code, res = http.StatusBadRequest, "malformed"
		}
		s.metrics.ordersLoad.WithLabelValues(res).Inc()
		s.log.WarnContext(r.Context(), "order refused", "err", err)
		writeError(w, code, err)
		return
	}
	if o.Release != ([32]byte{}) {
		if _, err := s.store.Release(r.Context(), o.Release); errors.Is(err, store.ErrNotFound) {
			s.metrics.ordersLoad.WithLabelValues("refused").Inc()
			writeError(w, http.StatusUnprocessableEntity, fmt.Errorf("the order names release %x, which is not published on the service (sbm release publish first)", o.Release[:8]))
			return
		} else if err != nil {
			s.storeError(w, r, err)
			return
		}
	}
	rec := &store.Order{ID: o.IDString(), Signed: signed, VendorID: o.VendorID.String(), ClassID: o.ClassID.String(),
		Count: int64(o.Count), NotAfter: o.NotAfter, State: store.OrderActive, Created: s.now()}
	var quotas []store.Quota
	for line, n := range o.Lines {
		quotas = append(quotas, store.Quota{Line: line, Count: int64(n)})
	}
	digest := order.Digest(signed)
	err = s.store.LoadOrder(r.Context(), rec, quotas, func(ctx context.Context, ls auditlog.Store) error {
		_, _, err := s.appendLog(ctx, ls, &auditlog.Entry{Kind: auditlog.OrderLoaded, Order: o.ID, Digest: &digest, Quota: o.Count})
		return err
	})
	if err != nil {
		s.metrics.ordersLoad.WithLabelValues(result(err)).Inc()
		s.storeError(w, r, err)
		return
	}
	s.metrics.ordersLoad.WithLabelValues("ok").Inc()
	s.log.InfoContext(r.Context(), "order loaded", "order", rec.ID, "count", rec.Count, "not_after", rec.NotAfter, "stations", len(o.Stations))
	st, err := s.status(r.Context(), rec)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, st)
}

func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	orders, err := s.store.Orders(r.Context())
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	list := OrderList{Orders: []OrderStatus{}}
	for _, o := range orders {
		st, err := s.status(r.Context(), o)
		if err != nil {
			s.storeError(w, r, err)
			return
		}
		list.Orders = append(list.Orders, st)
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) handleGet(w http.ResponseWriter, r *http.Request) {
	o, err := s.store.Order(r.Context(), r.PathValue("id"))
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	st, err := s.status(r.Context(), o)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	oid, err := parseOrderID(id)
	if err != nil {
		writeError(w, http.StatusNotFound, fmt.Errorf("order %s: %w", id, store.ErrNotFound))
		return
	}
	err = s.store.RevokeOrderLogged(r.Context(), id, func(ctx context.Context, ls auditlog.Store) error {
		_, _, err := s.appendLog(ctx, ls, &auditlog.Entry{Kind: auditlog.OrderRevoked, Order: oid})
		return err
	})
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	s.log.InfoContext(r.Context(), "order revoked", "order", id)
	s.handleGet(w, r)
}
