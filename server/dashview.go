package server

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/sbm-project/sbm/server/auditlog"
	"github.com/sbm-project/sbm/server/dashboard"
)

// DashboardView is the service's state for the operator dashboard
// (dashboard.Source): production orders, releases and the audit log, and
// what fleetView adds (devices and rollouts). It reads counters, not the
// fleet, so a page's refresh costs a few queries whatever the fleet's size.
func (s *Server) DashboardView(ctx context.Context) (*dashboard.View, error) {
	v := &dashboard.View{Service: s.ctx.VendorID().String() + " / " + s.ctx.ClassID().String(), Generated: s.now()}
	orders, err := s.store.Orders(ctx)
	if err != nil {
		return nil, err
	}
	for i := len(orders) - 1; i >= 0; i-- { // newest first
		st, err := s.status(ctx, orders[i])
		if err != nil {
			return nil, err
		}
		o := dashboard.Order{ID: st.ID, State: st.State, Count: st.Count, Used: st.Used, Spoiled: st.Spoiled,
			Remaining: st.Remaining, NotAfter: st.NotAfter}
		for _, l := range st.Lines {
			o.Lines = append(o.Lines, dashboard.Line{Name: l.Name, Count: l.Count, Used: l.Used, Spoiled: l.Spoiled, Remaining: l.Remaining})
		}
		v.Orders = append(v.Orders, o)
	}
	rels, err := s.store.Releases(ctx)
	if err != nil {
		return nil, err
	}
	for i := len(rels) - 1; i >= 0; i-- {
		r := rels[i]
		v.Releases = append(v.Releases, dashboard.Release{Version: r.Version, SecurityCounter: uint64(r.SecurityCounter),
			ManifestDigest: hex.EncodeToString(r.ManifestDigest[:]), Published: r.Created})
	}
	n, err := s.store.Log().Size(ctx)
	if err != nil {
		return nil, err
	}
	v.Audit.LogSize = uint64(n)
	if n > 0 {
		signed, err := s.latestCheckpoint(ctx)
		if err != nil {
			return nil, err
		}
		if cp, err := auditlog.VerifyCheckpoint(signed, s.logKey.Public()); err == nil {
			v.Audit.LatestCheckpoint = cp.Time
		}
	}
	s.auditMu.Lock()
	if s.lastAudit != nil {
		a := *s.lastAudit
		v.Audit.LastAudit = &a
	}
	s.auditMu.Unlock()
	if s.fleetView != nil {
		if err := s.fleetView(ctx, v); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// Dashboard returns the operator dashboard: serve it on a listener of its
// own (browsers present no client certificate; dashboard.TLSConfig), and
// hand out login links through POST /v1/dashboard/login (operator).
func (s *Server) Dashboard() *dashboard.Dashboard { return s.dash }

// handleAuditResult records the result of an offline audit that the
// operator's "sbm production audit" reports, for the dashboard. It is kept
// in memory by this instance: a claim by the operator, shown as such, not
// a proof (the proof is the audit itself).
func (s *Server) handleAuditResult(w http.ResponseWriter, r *http.Request) {
	var res dashboard.AuditResult
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&res); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("audit result: %w", err))
		return
	}
	res.Time = s.now().UTC()
	s.auditMu.Lock()
	s.lastAudit = &res
	s.auditMu.Unlock()
	s.log.InfoContext(r.Context(), "audit reported", "ok", res.OK, "size", res.Size, "problem", res.Problem)
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) handleDashboardLogin(w http.ResponseWriter, r *http.Request) {
	s.log.InfoContext(r.Context(), "dashboard login link issued", "peer", r.TLS.PeerCertificates[0].Subject.CommonName)
	s.dash.LoginLinkHandler().ServeHTTP(w, r)
}

// ServeDashboard serves the dashboard on ln with TLS (the API's
// certificate, no client certificate asked: dashboard.TLSConfig) until ctx
// is done. Only the dashboard's paths are served there; the API is not.
func (s *Server) ServeDashboard(ctx context.Context, ln net.Listener, apiTLS *tls.Config) error {
	mux := http.NewServeMux()
	mux.Handle(s.dash.Prefix()+"/", s.dash)
	mux.Handle(s.dash.Prefix(), s.dash)
	mux.Handle("/{$}", http.RedirectHandler(s.dash.Prefix()+"/", http.StatusSeeOther))
	hs := &http.Server{
		Handler:           s.metrics.instrument("dashboard", mux),
		TLSConfig:         dashboard.TLSConfig(apiTLS),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	return serve(ctx, hs, func() error { return hs.ServeTLS(ln, "", "") })
}
