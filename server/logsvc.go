package server

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"

	"github.com/sbm-project/sbm/image"
	"github.com/sbm-project/sbm/server/auditlog"
	"github.com/sbm-project/sbm/upk"
)

// Fault-injection steps of a certification (Config.Hook): the sweep of
// the production tests kills the service at each.
const (
	// HookReserved: the unit is reserved, nothing signed yet.
	HookReserved = "reserved"
	// HookSigned: the certificate (and UPK) are signed, not committed.
	HookSigned = "signed"
	// HookCommitted: certified and logged, the answer not sent.
	HookCommitted = "committed"
	// HookResponding: half of the answer sent.
	HookResponding = "responding"
)

func (s *Server) hook(step string) {
	if s.hookf != nil {
		s.hookf(step)
	}
}

// LogOrigin returns the origin the service's log checkpoints name.
func LogOrigin(vendor, class fmt.Stringer) string {
	return "sbm production log " + vendor.String() + " " + class.String()
}

// appendLog appends e to the log held by ls (a store transaction's log).
func (s *Server) appendLog(ctx context.Context, ls auditlog.Store, e *auditlog.Entry) (int64, *auditlog.Checkpoint, error) {
	l, err := auditlog.New(auditlog.Config{Store: ls, Key: s.logKey, Origin: s.origin, Now: s.now})
	if err != nil {
		return 0, nil, err
	}
	return l.Append(ctx, e)
}

// appendLogBatch appends entries to the log held by ls as one batch (one
// checkpoint, for the tree that ends with the last).
func (s *Server) appendLogBatch(ctx context.Context, ls auditlog.Store, entries []*auditlog.Entry) (int64, *auditlog.Checkpoint, error) {
	l, err := auditlog.New(auditlog.Config{Store: ls, Key: s.logKey, Origin: s.origin, Now: s.now})
	if err != nil {
		return 0, nil, err
	}
	return l.AppendBatch(ctx, entries)
}

// readLog returns the log over the store, for reading.
func (s *Server) readLog() (*auditlog.Log, error) {
	return auditlog.New(auditlog.Config{Store: s.store.Log(), Key: s.logKey, Origin: s.origin, Now: s.now})
}

// latestCheckpoint returns the signed checkpoint of the whole log.
func (s *Server) latestCheckpoint(ctx context.Context) ([]byte, error) {
	l, err := s.readLog()
	if err != nil {
		return nil, err
	}
	cp, err := l.Latest(ctx)
	if err != nil {
		return nil, err
	}
	return cp.Signed, nil
}

// handleExport streams the whole log as an export file (auditlog.Export).
func (s *Server) handleExport(w http.ResponseWriter, r *http.Request) {
	l, err := s.readLog()
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/cbor-seq")
	if err := l.Export(r.Context(), w); err != nil {
		s.log.ErrorContext(r.Context(), "log export", "err", err)
	}
}

// LogStatus is the body of GET /v1/log/checkpoint.
type LogStatus struct {
	Size int64 `json:"size"`
	// Checkpoint is the signed checkpoint of the whole log (absent for an
	// empty log).
	Checkpoint []byte `json:"checkpoint,omitempty"`
}

func (s *Server) handleCheckpoint(w http.ResponseWriter, r *http.Request) {
	n, err := s.store.Log().Size(r.Context())
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	st := LogStatus{Size: n}
	if n > 0 {
		if st.Checkpoint, err = s.latestCheckpoint(r.Context()); err != nil {
			s.storeError(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, st)
}

// DeviceStatus is the body of GET /v1/devices/{id}.
type DeviceStatus struct {
	DeviceID    string `json:"device_id"`
	Order       string `json:"order"`
	Station     []byte `json:"station"`
	Certificate []byte `json:"certificate"`
	UPK         []byte `json:"upk,omitempty"`
	LogIndex    int64  `json:"log_index"`
	Certified   string `json:"certified"`
	// Board and SBMMeasurement are the station's facts ("" if none).
	Board          string `json:"board"`
	SBMMeasurement string `json:"sbm_measurement"`
}

func (s *Server) handleDevice(w http.ResponseWriter, r *http.Request) {
	d, err := s.store.Device(r.Context(), r.PathValue("id"))
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, DeviceStatus{DeviceID: d.DeviceID, Order: d.OrderID, Station: d.Station, Certificate: d.Certificate,
		UPK: d.UPK, LogIndex: d.LogIndex, Certified: d.Created.Format("2006-01-02T15:04:05Z07:00"), Board: d.Board, SBMMeasurement: d.SBMMeasurement})
}

// handleInclusion answers GET /v1/log/proof?index=I&size=N with the
// inclusion proof of entry I in the tree of size N.
func (s *Server) handleInclusion(w http.ResponseWriter, r *http.Request) {
	index, err1 := strconv.ParseInt(r.URL.Query().Get("index"), 10, 64)
	size, err2 := strconv.ParseInt(r.URL.Query().Get("size"), 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("want index and size: %w", err))
		return
	}
	l, err := s.readLog()
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	p, err := l.InclusionProof(r.Context(), index, size)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	hashes := make([][]byte, len(p))
	for i := range p {
		hashes[i] = p[i][:]
	}
	writeJSON(w, http.StatusOK, map[string]any{"index": index, "size": size, "proof": hashes})
}

func parseCert(der []byte) (*x509.Certificate, error) {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("stored certificate: %w", err)
	}
	return c, nil
}

// issuers caches a upk.Issuer per release (its content key recovered once).
type issuers struct {
	mu sync.Mutex
	m  map[[32]byte]*upk.Issuer
}

// issueUPK issues the device's first-programming UPK for the published
// release with manifest digest d.
func (s *Server) issueUPK(ctx context.Context, d [32]byte, r upk.Recipient) ([]byte, error) {
	s.issuers.mu.Lock()
	is := s.issuers.m[d]
	s.issuers.mu.Unlock()
	if is == nil {
		rel, err := s.store.Release(ctx, d)
		if err != nil {
			return nil, fmt.Errorf("the order's release: %w", err)
		}
		p, err := image.Parse(rel.Package)
		if err != nil {
			return nil, fmt.Errorf("release %x: %w", d[:8], err)
		}
		cek, err := image.RecoverCEK(s.ctx, p)
		if err != nil {
			return nil, fmt.Errorf("release %x: %w", d[:8], err)
		}
		if is, err = upk.NewIssuer(s.ctx, p.Manifest, cek); err != nil {
			return nil, err
		}
		s.issuers.mu.Lock()
		if s.issuers.m == nil {
			s.issuers.m = make(map[[32]byte]*upk.Issuer)
		}
		s.issuers.m[d] = is
		s.issuers.mu.Unlock()
	}
	return is.Issue(r, &upk.Options{Now: s.now})
}
