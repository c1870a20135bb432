package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/sbm-project/sbm/server/auditlog"
	"github.com/sbm-project/sbm/server/order"
	"github.com/sbm-project/sbm/server/store"
	"github.com/sbm-project/sbm/trust"
	"github.com/sbm-project/sbm/upk"
)

// CertifyRequest is the body of POST /v1/station/certify: a station
// forwards a device's CSR under an order.
type CertifyRequest struct {
	// Order is the order's ID (hex).
	Order string `json:"order"`
	// CSR is the device's certification request (DER), made by its SBM:
	// it binds the device ID and key-agreement key to the identity key.
	CSR []byte `json:"csr"`
	// Board and SBMMeasurement (64 hex digits: SHA-256 of the SBM region
	// the station installed) are the station's facts about the device,
	// kept with it for the OEM's production records (optional).
	Board          string `json:"board,omitempty"`
	SBMMeasurement string `json:"sbm_measurement,omitempty"`
}

// CertifyResponse is the answer to a certification: the same on a retry.
type CertifyResponse struct {
	DeviceID string `json:"device_id"`
	Order    string `json:"order"`
	// Certificate is the device certificate (DER).
	Certificate []byte `json:"certificate"`
	// UPK is the device's first-programming UPK, when the order names a
	// release.
	UPK []byte `json:"upk,omitempty"`
	// LogIndex is the index of the certificate-issued entry.
	LogIndex int64 `json:"log_index"`
	// Checkpoint is the signed checkpoint of the log after the
	// certification (at least LogIndex+1 entries): the station keeps it
	// as a witness for the OEM's audit.
	Checkpoint []byte `json:"checkpoint"`
	// Retry is true when the device had been certified before (a
	// station's retry after a lost answer) and this is that certificate.
	Retry bool `json:"retry,omitempty"`
}

// SpoilRequest is the body of POST /v1/station/spoil: the station reports
// that a device it reserved a unit for was lost before it was certified.
type SpoilRequest struct {
	Order    string `json:"order"`
	DeviceID string `json:"device_id"`
}

// Errors a certification is refused with (the answer's message names
// them).
var (
	ErrStationNotAllowed = errors.New("station not named in the order")
	ErrDeviceCertified   = errors.New("device already certified (possible clone)")
	ErrUnitSpoiled       = errors.New("the device's unit was spoiled")
)

// stationDigest returns the SHA-256 of the request's client certificate.
func stationDigest(r *http.Request) [32]byte {
	return sha256.Sum256(r.TLS.PeerCertificates[0].Raw)
}

// verifiedOrder returns the order with the given ID, its signature checked
// once per server (cached) and its validity at now on every call.
func (s *Server) verifiedOrder(ctx context.Context, id string) (*store.Order, *order.Order, error) {
	rec, err := s.store.Order(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	digest := order.Digest(rec.Signed)
	if v, ok := s.orders.Load(id); ok {
		if c := v.(*cachedOrder); c.digest == digest {
			return rec, c.o, checkValidity(c.o, s.now())
		}
	}
	o, err := order.Verify(s.ctx, rec.Signed, s.now())
	if err != nil {
		return nil, nil, err
	}
	s.orders.Store(id, &cachedOrder{digest: digest, o: o})
	return rec, o, nil
}

type cachedOrder struct {
	digest [32]byte
	o      *order.Order
}

func checkValidity(o *order.Order, now time.Time) error {
	if now.Before(o.NotBefore) {
		return fmt.Errorf("%w: valid from %s", order.ErrNotYetValid, o.NotBefore.Format(time.RFC3339))
	}
	if !now.Before(o.NotAfter) {
		return fmt.Errorf("%w: valid until %s", order.ErrExpired, o.NotAfter.Format(time.RFC3339))
	}
	return nil
}

func (s *Server) handleAnchors(w http.ResponseWriter, r *http.Request) {
	a, err := s.ctx.Anchors()
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

// refuse answers a refused certification and counts it.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, code int, reason string, err error) {
	s.metrics.certify.WithLabelValues(reason).Inc()
	s.log.WarnContext(r.Context(), "certification refused", "reason", reason, "err", err)
	writeError(w, code, err)
}

func (s *Server) handleCertify(w http.ResponseWriter, r *http.Request) {
	var req CertifyRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		s.refuse(w, r, http.StatusBadRequest, "malformed", fmt.Errorf("certification request: %w", err))
		return
	}
	ctx := r.Context()
	station := stationDigest(r)
	rec, o, err := s.verifiedOrder(ctx, req.Order)
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.refuse(w, r, http.StatusNotFound, "order", err)
		return
	case err != nil && (errors.Is(err, order.ErrExpired) || errors.Is(err, order.ErrNotYetValid) ||
		errors.Is(err, order.ErrSignature) || errors.Is(err, order.ErrProduct) || errors.Is(err, order.ErrMalformed)):
		s.refuse(w, r, http.StatusUnprocessableEntity, "order", fmt.Errorf("order %s: %w", req.Order, err))
		return
	case err != nil:
		s.storeError(w, r, err)
		return
	}
	if rec.State == store.OrderRevoked {
		s.refuse(w, r, http.StatusConflict, "revoked", fmt.Errorf("order %s: %w", req.Order, store.ErrOrderRevoked))
		return
	}
	if !o.AllowsStation(station) {
		s.refuse(w, r, http.StatusForbidden, "station", fmt.Errorf("%w: station %x, order %s", ErrStationNotAllowed, station[:8], req.Order))
		return
	}
	if m := req.SBMMeasurement; m != "" {
		if b, err := hex.DecodeString(m); err != nil || len(b) != 32 || m != hex.EncodeToString(b) {
			s.refuse(w, r, http.StatusBadRequest, "malformed", errors.New("certification request: sbm_measurement is not 64 lowercase hex digits"))
			return
		}
	}
	if len(req.Board) > 64 {
		s.refuse(w, r, http.StatusBadRequest, "malformed", errors.New("certification request: board name over 64 bytes"))
		return
	}
	dreq, err := s.ctx.ParseDeviceRequest(req.CSR)
	if err != nil {
		s.refuse(w, r, http.StatusUnprocessableEntity, "csr", err)
		return
	}
	deviceID := hex.EncodeToString(dreq.ID)

	// A device certified before: the same device retrying (its identity
	// key, under this order) gets its certificate again; anything else is
	// a clone or a re-used ID.
	if prev, err := s.store.Device(ctx, deviceID); err == nil {
		s.answerRetry(w, r, prev, dreq, req.Order)
		return
	} else if !errors.Is(err, store.ErrNotFound) {
		s.storeError(w, r, err)
		return
	}

	line := ""
	if _, ok := o.Lines[r.TLS.PeerCertificates[0].Subject.CommonName]; ok {
		line = r.TLS.PeerCertificates[0].Subject.CommonName
	}
	res, err := s.store.ReserveFor(ctx, store.ReserveRequest{OrderID: req.Order, Line: line, DeviceID: deviceID, Station: station[:]})
	switch {
	case errors.Is(err, store.ErrOrderExhausted), errors.Is(err, store.ErrLineExhausted):
		s.refuse(w, r, http.StatusConflict, "exhausted", err)
		return
	case errors.Is(err, store.ErrOrderRevoked), errors.Is(err, store.ErrDeviceTaken):
		s.refuse(w, r, http.StatusConflict, "conflict", err)
		return
	case err != nil:
		s.storeError(w, r, err)
		return
	}
	if res.State == store.Spoiled {
		s.refuse(w, r, http.StatusConflict, "spoiled", fmt.Errorf("device %s: %w", deviceID, ErrUnitSpoiled))
		return
	}
	if res.State == store.Committed {
		// Certified between the lookup above and the reservation.
		prev, err := s.store.Device(ctx, deviceID)
		if err != nil {
			s.storeError(w, r, err)
			return
		}
		s.answerRetry(w, r, prev, dreq, req.Order)
		return
	}
	s.hook(HookReserved)

	cert, err := s.ctx.IssueDeviceCertificate(dreq.CSR, dreq.ID, dreq.KeyAgreement, s.now())
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	var upkBytes []byte
	if o.Release != ([32]byte{}) {
		if upkBytes, err = s.issueUPK(ctx, o.Release, upk.Recipient{Kind: upk.Device, Key: dreq.KeyAgreement, DeviceID: dreq.ID}); err != nil {
			s.storeError(w, r, err)
			return
		}
	}
	s.hook(HookSigned)
	dev := &store.Device{DeviceID: deviceID, OrderID: req.Order, Station: station[:], Certificate: cert.Raw, UPK: upkBytes, Created: s.now(),
		Board: req.Board, SBMMeasurement: req.SBMMeasurement}
	var cp *auditlog.Checkpoint
	err = s.store.Certify(ctx, dev, func(ctx context.Context, certified int64, ls auditlog.Store) (int64, error) {
		oid := o.ID
		digest := sha256.Sum256(cert.Raw)
		index, c, err := s.appendLog(ctx, ls, &auditlog.Entry{Kind: auditlog.CertificateIssued, Order: oid, Station: station[:],
			Device: dreq.ID, Digest: &digest, Count: uint64(certified)})
		if err != nil {
			return 0, err
		}
		cp = c
		if upkBytes != nil {
			ud := sha256.Sum256(upkBytes)
			if _, cp, err = s.appendLog(ctx, ls, &auditlog.Entry{Kind: auditlog.UPKIssued, Order: oid, Station: station[:],
				Device: dreq.ID, Digest: &ud}); err != nil {
				return 0, err
			}
		}
		return index, nil
	})
	if errors.Is(err, store.ErrReservationState) {
		s.refuse(w, r, http.StatusConflict, "spoiled", fmt.Errorf("device %s: %w", deviceID, ErrUnitSpoiled))
		return
	}
	if errors.Is(err, store.ErrDeviceCertified) {
		prev, perr := s.store.Device(ctx, deviceID)
		if perr != nil {
			s.storeError(w, r, perr)
			return
		}
		s.answerRetry(w, r, prev, dreq, req.Order)
		return
	}
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	s.hook(HookCommitted)
	s.metrics.certify.WithLabelValues("ok").Inc()
	s.log.InfoContext(ctx, "device certified", "device", deviceID, "order", req.Order, "log_index", dev.LogIndex, "upk", upkBytes != nil)
	resp := CertifyResponse{DeviceID: deviceID, Order: req.Order, Certificate: cert.Raw, UPK: upkBytes,
		LogIndex: dev.LogIndex, Checkpoint: cp.Signed}
	if s.hookf == nil {
		writeJSON(w, http.StatusCreated, resp)
		return
	}
	// Fault injection: half the answer on the wire, then HookResponding.
	body, _ := json.Marshal(resp)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(http.StatusCreated)
	w.Write(body[:len(body)/2])
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	s.hook(HookResponding)
	w.Write(body[len(body)/2:])
}

// answerRetry answers a CSR for a device certified before: its stored
// certificate if the CSR is the same device's (identity key) under the
// same order, else a refusal.
func (s *Server) answerRetry(w http.ResponseWriter, r *http.Request, prev *store.Device, dreq *trust.DeviceRequest, orderID string) {
	cert, err := parseCert(prev.Certificate)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	if prev.OrderID != orderID || !bytes.Equal(cert.RawSubjectPublicKeyInfo, dreq.CSR.RawSubjectPublicKeyInfo) {
		s.refuse(w, r, http.StatusConflict, "certified", fmt.Errorf("device %s: %w", prev.DeviceID, ErrDeviceCertified))
		return
	}
	cp, err := s.latestCheckpoint(r.Context())
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	s.metrics.certify.WithLabelValues("retry").Inc()
	s.log.InfoContext(r.Context(), "certification retried", "device", prev.DeviceID, "order", orderID)
	writeJSON(w, http.StatusOK, CertifyResponse{DeviceID: prev.DeviceID, Order: orderID, Certificate: prev.Certificate, UPK: prev.UPK,
		LogIndex: prev.LogIndex, Checkpoint: cp, Retry: true})
}

func (s *Server) handleSpoil(w http.ResponseWriter, r *http.Request) {
	var req SpoilRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("spoil request: %w", err))
		return
	}
	station := stationDigest(r)
	res, err := s.store.Reservation(r.Context(), req.DeviceID)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	if res.OrderID != req.Order || !bytes.Equal(res.Station, station[:]) {
		writeError(w, http.StatusForbidden, fmt.Errorf("device %s was not reserved by this station under order %s", req.DeviceID, req.Order))
		return
	}
	if err := s.spoil(r.Context(), res); err != nil {
		if errors.Is(err, store.ErrReservationState) {
			writeError(w, http.StatusConflict, err)
			return
		}
		s.storeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"device_id": req.DeviceID, "state": string(store.Spoiled)})
}

// spoil spoils a reserved unit and logs it.
func (s *Server) spoil(ctx context.Context, res store.Reservation) error {
	oid, err := parseOrderID(res.OrderID)
	if err != nil {
		return err
	}
	return s.store.SpoilLogged(ctx, res.OrderID, res.DeviceID, func(ctx context.Context, r store.Reservation, spoiled int64, ls auditlog.Store) error {
		dev, _ := hex.DecodeString(r.DeviceID)
		station := r.Station
		if station == nil {
			station = make([]byte, 32) // reserved without a station (store API)
		}
		_, _, err := s.appendLog(ctx, ls, &auditlog.Entry{Kind: auditlog.UnitSpoiled, Order: oid, Station: station, Device: nonEmpty(dev), Count: uint64(spoiled)})
		return err
	})
}

// SpoilStale spoils the units reserved before now−age that were never
// certified (a station that crashed and never came back for the device)
// and logs each; it returns how many it spoiled. The server runs it
// periodically (Config.ReservationTimeout).
func (s *Server) SpoilStale(ctx context.Context, age time.Duration) (int, error) {
	n := 0
	for {
		stale, err := s.store.StaleReservations(ctx, s.now().Add(-age), 100)
		if err != nil || len(stale) == 0 {
			return n, err
		}
		for _, res := range stale {
			err := s.spoil(ctx, res)
			if errors.Is(err, store.ErrReservationState) {
				continue // certified meanwhile
			}
			if err != nil {
				return n, err
			}
			n++
			s.log.WarnContext(ctx, "unit spoiled", "device", res.DeviceID, "order", res.OrderID, "reserved", res.Created)
		}
		if len(stale) < 100 {
			return n, nil
		}
	}
}

func nonEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

func parseOrderID(id string) (auditlog.OrderID, error) {
	var oid auditlog.OrderID
	b, err := hex.DecodeString(id)
	if err != nil || len(b) != len(oid) {
		return oid, fmt.Errorf("order ID %q is not 32 hex digits", id)
	}
	copy(oid[:], b)
	return oid, nil
}
