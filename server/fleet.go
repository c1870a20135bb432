package server

// The update service: the device API (a subset of Eclipse hawkBit's
// Direct Device Integration API, plus the device's own UPK and signed
// install reports) and the operators' rollout and fleet management, on
// the same TLS listener as the rest of the service.
//
// Device routes (client certificate: a device certificate of the
// context's device CA, exactly the one recorded for the device when it
// was certified, not revoked; {deviceID} must be the certificate's):
//
//	GET  /DEFAULT/controller/v1/{deviceID}                                      poll
//	GET  /DEFAULT/controller/v1/{deviceID}/deploymentBase/{actionId}            the offered deployment
//	POST /DEFAULT/controller/v1/{deviceID}/deploymentBase/{actionId}/feedback   DDI execution state
//	GET  /DEFAULT/controller/v1/{deviceID}/deploymentBase/{actionId}/upk        the device's UPK for it
//	GET  /DEFAULT/controller/v1/{deviceID}/softwaremodules/{module}/artifacts/{file}   the package (ranges)
//	POST /DEFAULT/controller/v1/{deviceID}/reports                              a signed install report
//
// Management routes (operator):
//
//	POST /v1/rollouts                 start a rollout
//	GET  /v1/rollouts                 list
//	GET  /v1/rollouts/{id}            status
//	POST /v1/rollouts/{id}/percent    raise its share of the fleet
//	POST /v1/rollouts/{id}/pause, /resume, /abort
//	GET  /v1/fleet                    the devices' state (?after=ID&limit=N)
//	POST /v1/fleet/{id}/revoke        refuse a device from now on

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sbm-project/sbm/attest/report"
	"github.com/sbm-project/sbm/attest/verifier"
	"github.com/sbm-project/sbm/server/auditlog"
	"github.com/sbm-project/sbm/server/store"
	"github.com/sbm-project/sbm/trust"
	"github.com/sbm-project/sbm/upk"
)

// PollInterval is the polling sleep the device API tells devices
// (config.polling.sleep).
const PollInterval = 5 * time.Minute

// DDITenant is the tenant segment of the device API's paths: hawkBit's
// default tenant, so DDI clients configured for it need no change.
const DDITenant = "DEFAULT"

// UpdateServiceStation is the station field of the upk-issued log entries
// of UPKs the update service issues to devices in the field: 32 zero
// bytes, "the update service" (a station's field is the SHA-256 of its
// certificate).
var UpdateServiceStation = make([]byte, 32)

// Errors of the device API's authentication.
var (
	ErrNotADevice       = errors.New("not a device certificate")
	ErrDeviceUnknown    = errors.New("device not in the production records")
	ErrDeviceCloned     = errors.New("certificate is not the one recorded for the device")
	ErrDeviceRevoked    = errors.New("device revoked")
	ErrOtherDevice      = errors.New("a device may act only for itself")
	errDevicesRefused   = errors.New("device certificates are served only on the device API")
	errNoAction         = errors.New("no deployment offered")
	errBadPercent       = errors.New("percent must be above 0 and at most 100, in steps of 0.01")
	errBadMaxFailures   = errors.New("max failures must be N or N% (N ≥ 0, N% ≤ 100%)")
	errAmbiguousRelease = errors.New("several releases have this version: name it by manifest digest")
)

// fleet is the update service's state in one server.
type fleet struct {
	s        *Server
	verifier *trust.DeviceVerifier
	caRaw    []byte

	mu       sync.Mutex
	seen     map[string]time.Time // last-seen times not yet stored
	flushed  time.Time
	flushing bool // a batch is being stored (one at a time)

	packages sync.Map // manifest digest → *artifact
	upks     upkCommitter

	// The rollouts as read at most rolloutsTTL ago, for polls (the
	// transactions that change actions read the rollout's row itself).
	rmu      sync.Mutex
	rollouts []*store.Rollout
	rread    time.Time
}

// rolloutsTTL is how long a poll may use the rollouts read by another: a
// rollout started, resumed or raised on another instance is offered up to
// this much later; pauses and aborts are seen at once by the offer's
// transaction and the deployment's read.
const rolloutsTTL = time.Second

// activeRollouts returns the rollouts, read at most rolloutsTTL ago.
func (f *fleet) activeRollouts(ctx context.Context) ([]*store.Rollout, error) {
	now := time.Now()
	f.rmu.Lock()
	list, at := f.rollouts, f.rread
	f.rmu.Unlock()
	if list != nil && now.Sub(at) < rolloutsTTL {
		return list, nil
	}
	list, err := f.s.store.Rollouts(ctx)
	if err != nil {
		return nil, err
	}
	if list == nil {
		list = []*store.Rollout{}
	}
	f.rmu.Lock()
	f.rollouts, f.rread = list, now
	f.rmu.Unlock()
	return list, nil
}

// forgetRollouts drops the cached rollouts (after a change on this
// instance).
func (f *fleet) forgetRollouts() {
	f.rmu.Lock()
	f.rollouts = nil
	f.rmu.Unlock()
}

// storeError answers a failed store operation; a request its client gave
// up (context canceled) is not an error of the service.
func (f *fleet) storeError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		f.s.log.DebugContext(r.Context(), "request canceled", "path", r.URL.Path, "err", err)
		return
	}
	f.s.storeError(w, r, err)
}

// artifact is a published package as the device API serves it.
type artifact struct {
	rel                  *store.Release
	sha256, sha1, md5sum string
}

// routeFleet registers the update service's routes (called by New).
func (s *Server) routeFleet() {
	f := &fleet{s: s, seen: map[string]time.Time{}, caRaw: s.ctx.DeviceCACertificate().Raw}
	s.fleet = f
	if v, err := s.ctx.NewDeviceVerifier(); err == nil {
		f.verifier = v
	} else {
		s.log.Error("device verifier", "err", err) // every device is refused
	}
	base := "/" + DDITenant + "/controller/v1/{deviceID}"
	f.device("GET "+base, "ddi_poll", f.handlePoll)
	f.device("GET "+base+"/deploymentBase/{actionId}", "ddi_deployment", f.handleDeployment)
	f.device("POST "+base+"/deploymentBase/{actionId}/feedback", "ddi_feedback", f.handleFeedback)
	f.device("GET "+base+"/deploymentBase/{actionId}/upk", "ddi_upk", f.handleUPK)
	f.device("GET "+base+"/softwaremodules/{module}/artifacts/{file}", "ddi_artifact", f.handleArtifact)
	f.device("POST "+base+"/reports", "ddi_report", f.handleReport)

	s.route("POST /v1/rollouts", "rollouts_start", trust.RoleOperator, f.handleStart)
	s.route("GET /v1/rollouts", "rollouts_list", trust.RoleOperator, f.handleRollouts)
	s.route("GET /v1/rollouts/{id}", "rollouts_get", trust.RoleOperator, f.handleRollout)
	s.route("POST /v1/rollouts/{id}/percent", "rollouts_percent", trust.RoleOperator, f.handlePercent)
	s.route("POST /v1/rollouts/{id}/pause", "rollouts_pause", trust.RoleOperator, f.transition(store.RolloutPaused))
	s.route("POST /v1/rollouts/{id}/resume", "rollouts_resume", trust.RoleOperator, f.transition(store.RolloutRunning))
	s.route("POST /v1/rollouts/{id}/abort", "rollouts_abort", trust.RoleOperator, f.transition(store.RolloutAborted))
	s.route("GET /v1/fleet", "fleet_list", trust.RoleOperator, f.handleFleet)
	s.route("POST /v1/fleet/{id}/revoke", "fleet_revoke", trust.RoleOperator, f.handleRevokeDevice)
}

// refuseDevices refuses a device certificate (one naming no service
// role) on a route open to every service role (see route).
func refuseDevices(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 && trust.ServiceRoleOf(r.TLS.PeerCertificates[0]) == "" {
			writeError(w, http.StatusForbidden, errDevicesRefused)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// deviceKey is the context key of an authenticated device.
type deviceKey struct{}

// authDevice is an authenticated device: its certificate, identity,
// record and fleet state.
type authDevice struct {
	id     string
	cert   *x509.Certificate
	ident  *trust.DeviceIdentity
	record *store.Device
	state  *store.FleetState
}

// device registers a device route: h runs only for an authenticated
// device acting for itself.
func (f *fleet) device(pattern, name string, h func(http.ResponseWriter, *http.Request, *authDevice)) {
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, code, err := f.authenticate(r)
		if err != nil {
			if code != http.StatusInternalServerError {
				f.s.log.WarnContext(r.Context(), "device refused", "path", r.URL.Path, "err", err)
			}
			writeError(w, code, err)
			return
		}
		f.noteSeen(r.Context(), d.id)
		h(w, r, d)
	})
	f.s.mux.Handle(pattern, f.s.metrics.instrument(name, f.s.logRequests(inner)))
}

// authenticate checks the request's client certificate: a device
// certificate of the context's device CA, for the device in the path,
// exactly the one recorded when it was certified, not revoked.
func (f *fleet) authenticate(r *http.Request) (*authDevice, int, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil, http.StatusUnauthorized, errors.New("a client certificate is required")
	}
	cert := r.TLS.PeerCertificates[0]
	if role := trust.ServiceRoleOf(cert); role != "" {
		return nil, http.StatusForbidden, fmt.Errorf("certificate %q: %w (it is a %s certificate)", cert.Subject.CommonName, ErrNotADevice, role)
	}
	if !f.verifiedByTLS(r.TLS.VerifiedChains) {
		if f.verifier == nil {
			return nil, http.StatusForbidden, ErrNotADevice
		}
		if _, err := f.verifier.Verify(cert); err != nil {
			return nil, http.StatusForbidden, err
		}
	}
	ident, err := trust.ParseDeviceIdentity(cert)
	if err != nil {
		return nil, http.StatusForbidden, fmt.Errorf("%w: %w", ErrNotADevice, err)
	}
	id := hex.EncodeToString(ident.ID)
	if p := r.PathValue("deviceID"); p != id {
		return nil, http.StatusForbidden, fmt.Errorf("%w: device %s asked for %q", ErrOtherDevice, id, p)
	}
	rec, st, err := f.s.store.FleetDevice(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, http.StatusForbidden, fmt.Errorf("device %s: %w", id, ErrDeviceUnknown)
	case err != nil:
		if r.Context().Err() == nil {
			f.s.log.ErrorContext(r.Context(), "store", "err", err, "path", r.URL.Path)
		}
		return nil, http.StatusInternalServerError, errors.New("internal error")
	case !bytes.Equal(rec.Certificate, cert.Raw):
		return nil, http.StatusForbidden, fmt.Errorf("device %s: %w", id, ErrDeviceCloned)
	case st.Revoked:
		return nil, http.StatusForbidden, fmt.Errorf("device %s: %w", id, ErrDeviceRevoked)
	}
	return &authDevice{id: id, cert: cert, ident: ident, record: rec, state: st}, 0, nil
}

// verifiedByTLS reports whether the TLS layer verified the certificate
// to the context's device CA (one of its verified chains ends there).
func (f *fleet) verifiedByTLS(chains [][]*x509.Certificate) bool {
	for _, c := range chains {
		if len(c) > 1 && bytes.Equal(c[len(c)-1].Raw, f.caRaw) {
			return true
		}
	}
	return false
}

// noteSeen records that a device was seen now. The times are stored in
// batches, at most one transaction a second (a crash loses at most that
// second's last-seen times, nothing else).
func (f *fleet) noteSeen(ctx context.Context, id string) {
	now := f.s.now()
	f.mu.Lock()
	f.seen[id] = now
	var batch map[string]time.Time
	if !f.flushing && (len(f.seen) >= 1000 || now.Sub(f.flushed) >= time.Second) {
		batch, f.seen, f.flushed, f.flushing = f.seen, map[string]time.Time{}, now, true
	}
	f.mu.Unlock()
	if batch != nil {
		err := f.s.store.Seen(context.WithoutCancel(ctx), batch)
		f.mu.Lock()
		f.flushing = false
		f.mu.Unlock()
		if err != nil {
			f.s.log.WarnContext(ctx, "last seen", "err", err, "devices", len(batch))
		}
	}
}

// flushSeen stores the pending last-seen times.
func (f *fleet) flushSeen(ctx context.Context) error {
	f.mu.Lock()
	batch := f.seen
	f.seen, f.flushed = map[string]time.Time{}, f.s.now()
	f.mu.Unlock()
	return f.s.store.Seen(ctx, batch)
}

// DDI documents (the subset the service produces and reads).

// DDILink is a hypermedia link.
type DDILink struct {
	Href string `json:"href"`
}

// DDIPoll is the body of the poll: the polling interval and, when an
// action is offered, the link to its deployment.
type DDIPoll struct {
	Config struct {
		Polling struct {
			Sleep string `json:"sleep"`
		} `json:"polling"`
	} `json:"config"`
	Links map[string]DDILink `json:"_links,omitempty"`
}

// DDIDeployment is the body of deploymentBase.
type DDIDeployment struct {
	ID         string `json:"id"`
	Deployment struct {
		Download string     `json:"download"`
		Update   string     `json:"update"`
		Chunks   []DDIChunk `json:"chunks"`
	} `json:"deployment"`
	// Links holds our additions: the device's UPK and the report route.
	Links map[string]DDILink `json:"_links,omitempty"`
}

// DDIChunk is one software module of a deployment.
type DDIChunk struct {
	Part      string        `json:"part"`
	Version   string        `json:"version"`
	Name      string        `json:"name"`
	Artifacts []DDIArtifact `json:"artifacts"`
}

// DDIArtifact is one downloadable file.
type DDIArtifact struct {
	Filename string             `json:"filename"`
	Hashes   map[string]string  `json:"hashes"`
	Size     int64              `json:"size"`
	Links    map[string]DDILink `json:"_links"`
}

// DDIFeedback is the body of a feedback. The action is the path's; the
// body's id (a string or, from older clients, a number) and time are
// not used.
type DDIFeedback struct {
	ID     json.RawMessage `json:"id,omitempty"`
	Time   string          `json:"time,omitempty"`
	Status struct {
		Execution string `json:"execution"`
		Result    struct {
			Finished string `json:"finished"`
		} `json:"result"`
		Details []string `json:"details,omitempty"`
	} `json:"status"`
}

// ReportAnswer is the answer to an accepted install report.
type ReportAnswer struct {
	DeviceID string `json:"device_id"`
	Sequence uint64 `json:"sequence"`
	// Rollout and Action say which action the report settled, if any.
	Rollout string `json:"rollout,omitempty"`
	Action  string `json:"action,omitempty"`
	// Halted: the report's failure halted the rollout.
	Halted bool `json:"halted,omitempty"`
}

// sleepString formats d as DDI's HH:MM:SS.
func sleepString(d time.Duration) string {
	s := int64(d / time.Second)
	return fmt.Sprintf("%02d:%02d:%02d", s/3600, s/60%60, s%60)
}

func baseURL(r *http.Request, deviceID string) string {
	return "https://" + r.Host + "/" + DDITenant + "/controller/v1/" + deviceID
}

// offered returns the action the device should work on: its open action
// in an active rollout, else a new one of the running rollout if the
// device is in its cohort and does not run its release; nil if none.
func (f *fleet) offered(ctx context.Context, d *authDevice) (*store.Action, *store.Rollout, error) {
	acts := d.state.Actions
	rollouts, err := f.activeRollouts(ctx)
	if err != nil {
		return nil, nil, err
	}
	byID := make(map[string]*store.Rollout, len(rollouts))
	for _, ro := range rollouts {
		byID[ro.ID] = ro
	}
	has := make(map[string]bool, len(acts))
	for _, a := range acts {
		has[a.RolloutID] = true
		if ro := byID[a.RolloutID]; ro != nil && a.State.Open() && ro.State.Active() {
			return a, ro, nil
		}
	}
	for i := len(rollouts) - 1; i >= 0; i-- {
		ro := rollouts[i]
		if ro.State != store.RolloutRunning || has[ro.ID] || bytes.Equal(d.state.ManifestDigest, ro.ManifestDigest[:]) ||
			!store.InCohort(ro.CohortKey(), d.id, ro.Share) {
			continue
		}
		a, err := f.s.store.Offer(ctx, d.id, ro.ID)
		if errors.Is(err, store.ErrNotFound) {
			continue // paused or aborted meanwhile
		}
		if err != nil {
			return nil, nil, err
		}
		return a, ro, nil
	}
	return nil, nil, nil
}

func (f *fleet) handlePoll(w http.ResponseWriter, r *http.Request, d *authDevice) {
	a, _, err := f.offered(r.Context(), d)
	if err != nil {
		f.storeError(w, r, err)
		return
	}
	var p DDIPoll
	p.Config.Polling.Sleep = sleepString(PollInterval)
	if a != nil {
		p.Links = map[string]DDILink{"deploymentBase": {Href: baseURL(r, d.id) + "/deploymentBase/" + a.RolloutID}}
	}
	writeJSON(w, http.StatusOK, p)
}

// openAction returns the device's action {actionId} if it is open in an
// active rollout: 404 if there is none, 410 if it is closed or its
// rollout aborted or done.
func (f *fleet) openAction(w http.ResponseWriter, r *http.Request, d *authDevice) (*store.Action, *store.Rollout, bool) {
	id := r.PathValue("actionId")
	ro, err := f.s.store.Rollout(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Errorf("action %s: %w", id, errNoAction))
		return nil, nil, false
	}
	if err != nil {
		f.storeError(w, r, err)
		return nil, nil, false
	}
	var a *store.Action
	for _, x := range d.state.Actions {
		if x.RolloutID == id {
			a = x
		}
	}
	switch {
	case a == nil:
		writeError(w, http.StatusNotFound, fmt.Errorf("action %s: %w to device %s", id, errNoAction, d.id))
		return nil, nil, false
	case !a.State.Open() || !ro.State.Active():
		writeError(w, http.StatusGone, fmt.Errorf("action %s is %s (rollout %s)", id, a.State, ro.State))
		return nil, nil, false
	}
	return a, ro, true
}

// artifact returns the release's package with its hashes (cached: a
// release never changes).
func (f *fleet) artifact(ctx context.Context, digest [32]byte) (*artifact, error) {
	if v, ok := f.packages.Load(digest); ok {
		return v.(*artifact), nil
	}
	rel, err := f.s.store.Release(ctx, digest)
	if err != nil {
		return nil, err
	}
	s256, s1, m5 := sha256.Sum256(rel.Package), sha1.Sum(rel.Package), md5.Sum(rel.Package)
	a := &artifact{rel: rel, sha256: hex.EncodeToString(s256[:]), sha1: hex.EncodeToString(s1[:]), md5sum: hex.EncodeToString(m5[:])}
	f.packages.Store(digest, a)
	return a, nil
}

// artifactName is the file name of a release's package.
func artifactName(rel *store.Release) string { return "sbm-" + rel.Version + ".pkg" }

func (f *fleet) handleDeployment(w http.ResponseWriter, r *http.Request, d *authDevice) {
	a, ro, ok := f.openAction(w, r, d)
	if !ok {
		return
	}
	art, err := f.artifact(r.Context(), ro.ManifestDigest)
	if err != nil {
		f.storeError(w, r, err)
		return
	}
	base := baseURL(r, d.id)
	name := artifactName(art.rel)
	href := base + "/softwaremodules/" + hex.EncodeToString(ro.ManifestDigest[:]) + "/artifacts/" + name
	var dep DDIDeployment
	dep.ID = a.RolloutID
	dep.Deployment.Download, dep.Deployment.Update = "forced", "forced"
	dep.Deployment.Chunks = []DDIChunk{{Part: "os", Version: art.rel.Version, Name: "sbm-package", Artifacts: []DDIArtifact{{
		Filename: name, Size: int64(len(art.rel.Package)),
		Hashes: map[string]string{"sha256": art.sha256, "sha1": art.sha1, "md5": art.md5sum},
		Links:  map[string]DDILink{"download": {Href: href}, "download-http": {Href: href}},
	}}}}
	dep.Links = map[string]DDILink{
		"upk":      {Href: base + "/deploymentBase/" + a.RolloutID + "/upk"},
		"feedback": {Href: base + "/deploymentBase/" + a.RolloutID + "/feedback"},
		"reports":  {Href: base + "/reports"},
	}
	writeJSON(w, http.StatusOK, dep)
}

func (f *fleet) handleArtifact(w http.ResponseWriter, r *http.Request, d *authDevice) {
	digest, err := hex.DecodeString(r.PathValue("module"))
	if err != nil || len(digest) != 32 {
		writeError(w, http.StatusNotFound, errors.New("no such software module"))
		return
	}
	for _, a := range d.state.Actions {
		if !a.State.Open() {
			continue
		}
		ro, err := f.s.store.Rollout(r.Context(), a.RolloutID)
		if err != nil {
			f.storeError(w, r, err)
			return
		}
		if !ro.State.Active() || !bytes.Equal(ro.ManifestDigest[:], digest) {
			continue
		}
		art, err := f.artifact(r.Context(), ro.ManifestDigest)
		if err != nil {
			f.storeError(w, r, err)
			return
		}
		if r.PathValue("file") != artifactName(art.rel) {
			break
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("ETag", `"`+art.sha256+`"`)
		http.ServeContent(w, r, "", art.rel.Created, bytes.NewReader(art.rel.Package))
		return
	}
	writeError(w, http.StatusNotFound, fmt.Errorf("no such artifact offered to device %s", d.id))
}

func (f *fleet) handleFeedback(w http.ResponseWriter, r *http.Request, d *authDevice) {
	var fb DDIFeedback
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&fb); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("feedback: %w", err))
		return
	}
	var to store.ActionState
	switch exec := fb.Status.Execution; exec {
	case "proceeding", "scheduled", "resumed", "downloading", "canceled":
	case "downloaded":
		to = store.ActionDownloaded
	case "rejected":
		to = store.ActionFailed
	case "closed":
		switch fb.Status.Result.Finished {
		case "failure":
			to = store.ActionFailed
		case "success", "none":
			// Installed only when the device's signed report says so.
		default:
			writeError(w, http.StatusBadRequest, fmt.Errorf("feedback: result.finished %q is not success, failure or none", fb.Status.Result.Finished))
			return
		}
	default:
		writeError(w, http.StatusBadRequest, fmt.Errorf("feedback: unknown execution state %q", exec))
		return
	}
	id := r.PathValue("actionId")
	if to == "" {
		// Progress, or a close the signed report settles: acknowledged for
		// any action of the device, whatever its state.
		for _, a := range d.state.Actions {
			if a.RolloutID == id {
				w.WriteHeader(http.StatusOK)
				return
			}
		}
		writeError(w, http.StatusNotFound, fmt.Errorf("action %s: %w to device %s", id, errNoAction, d.id))
		return
	}
	out, err := f.s.store.Feedback(r.Context(), d.id, id, to)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, fmt.Errorf("action %s: %w to device %s", id, errNoAction, d.id))
		return
	case errors.Is(err, store.ErrActionState):
		writeError(w, http.StatusConflict, err)
		return
	case err != nil:
		f.storeError(w, r, err)
		return
	}
	if out.Halted {
		f.s.log.WarnContext(r.Context(), "rollout halted", "rollout", id, "device", d.id)
	}
	f.s.log.InfoContext(r.Context(), "feedback", "device", d.id, "rollout", id, "execution", fb.Status.Execution, "state", out.Action.State)
	w.WriteHeader(http.StatusOK)
}

func (f *fleet) handleUPK(w http.ResponseWriter, r *http.Request, d *authDevice) {
	a, ro, ok := f.openAction(w, r, d)
	if !ok {
		return
	}
	b := a.UPK
	if b == nil {
		issued, err := f.s.issueUPK(r.Context(), ro.ManifestDigest, upk.Recipient{Kind: upk.Device, Key: d.ident.KeyAgreement, DeviceID: d.ident.ID})
		if err != nil {
			f.storeError(w, r, err)
			return
		}
		g, err := f.commitUPK(r.Context(), store.UPKGrant{DeviceID: d.id, RolloutID: a.RolloutID, UPK: issued}, d.ident.ID)
		if err == nil {
			err = g.Err
		}
		switch {
		case errors.Is(err, store.ErrActionState):
			writeError(w, http.StatusGone, err)
			return
		case errors.Is(err, store.ErrNotFound):
			writeError(w, http.StatusNotFound, fmt.Errorf("action %s: %w to device %s", a.RolloutID, errNoAction, d.id))
			return
		case err != nil:
			f.storeError(w, r, err)
			return
		}
		b = g.Stored
		if bytes.Equal(b, issued) {
			f.s.log.InfoContext(r.Context(), "upk issued", "device", d.id, "rollout", a.RolloutID, "release", ro.Version)
		}
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Write(b)
}

func (f *fleet) handleReport(w http.ResponseWriter, r *http.Request, d *authDevice) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, report.MaxReportSize))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("report: %w", err))
		return
	}
	rep, err := verifier.VerifyReport(body, d.cert)
	if err != nil {
		f.s.log.WarnContext(r.Context(), "report refused", "device", d.id, "err", err)
		writeError(w, http.StatusUnprocessableEntity, err)
		return
	}
	u := &store.ReportUpdate{StoredReport: store.StoredReport{DeviceID: d.id, Sequence: rep.Sequence, Report: body, Received: f.s.now()}, Result: -1}
	if rep.HasResult {
		u.Result, u.Detail = int(rep.Result), rep.Detail
	}
	if rep.HasPackage {
		u.Package = rep.Package[:]
	}
	if rep.HasApp {
		u.Version, u.ManifestDigest = rep.App.Version, rep.App.ManifestDigest[:]
	}
	out, err := f.s.store.RecordReport(r.Context(), u)
	switch {
	case errors.Is(err, store.ErrReportSequence):
		writeError(w, http.StatusConflict, err)
		return
	case err != nil:
		f.storeError(w, r, err)
		return
	}
	ans := ReportAnswer{DeviceID: d.id, Sequence: rep.Sequence}
	if out.Action != nil {
		ans.Rollout, ans.Action, ans.Halted = out.Action.RolloutID, string(out.Action.State), out.Halted
	}
	if out.Halted {
		f.s.log.WarnContext(r.Context(), "rollout halted", "rollout", ans.Rollout, "device", d.id)
	}
	f.s.log.InfoContext(r.Context(), "report", "device", d.id, "sequence", rep.Sequence, "action", ans.Action, "rollout", ans.Rollout)
	writeJSON(w, http.StatusCreated, ans)
}

// Management.

// RolloutRequest is the body of POST /v1/rollouts.
type RolloutRequest struct {
	// Release is the release's version, or its manifest digest (hex).
	Release string `json:"release"`
	// Percent is the share of the fleet, above 0 and at most 100, in
	// steps of 0.01.
	Percent float64 `json:"percent"`
	// Cohort names the cohort: rollouts of the same cohort select the
	// same devices. Empty: a sample of this rollout's own.
	Cohort string `json:"cohort,omitempty"`
	// MaxFailures halts the rollout when its failures pass it: "N"
	// devices, or "N%" of the devices targeted. Empty: never.
	MaxFailures string `json:"max_failures,omitempty"`
}

// PercentRequest is the body of POST /v1/rollouts/{id}/percent.
type PercentRequest struct {
	Percent float64 `json:"percent"`
}

// RolloutStatus is a rollout as the management API shows it.
type RolloutStatus struct {
	ID             string    `json:"id"`
	Release        string    `json:"release"`
	ManifestDigest string    `json:"manifest_digest"`
	Cohort         string    `json:"cohort,omitempty"`
	State          string    `json:"state"`
	Percent        float64   `json:"percent"`
	MaxFailures    string    `json:"max_failures,omitempty"`
	Targeted       int64     `json:"targeted"`
	Downloaded     int64     `json:"downloaded"`
	Updated        int64     `json:"updated"`
	Failed         int64     `json:"failed"`
	Created        time.Time `json:"created"`
}

// RolloutList is the body of GET /v1/rollouts.
type RolloutList struct {
	Rollouts []RolloutStatus `json:"rollouts"`
}

// FleetDevice is one device's state as the management API shows it.
type FleetDevice struct {
	DeviceID       string    `json:"device_id"`
	Version        string    `json:"version,omitempty"`
	ManifestDigest string    `json:"manifest_digest,omitempty"`
	LastSeen       time.Time `json:"last_seen,omitzero"`
	LastReport     time.Time `json:"last_report,omitzero"`
	// Result is the last report's update result (absent: none), Detail
	// its text.
	Result  *int   `json:"result,omitempty"`
	Detail  string `json:"detail,omitempty"`
	Revoked bool   `json:"revoked,omitempty"`
}

// FleetList is the body of GET /v1/fleet: a page of devices, and the
// ?after= of the next page ("" on the last).
type FleetList struct {
	Devices []FleetDevice `json:"devices"`
	Next    string        `json:"next,omitempty"`
}

func rolloutStatus(ro *store.Rollout) RolloutStatus {
	st := RolloutStatus{ID: ro.ID, Release: ro.Version, ManifestDigest: hex.EncodeToString(ro.ManifestDigest[:]), Cohort: ro.Cohort,
		State: string(ro.State), Percent: float64(ro.Share) / 100, Targeted: ro.Targeted, Downloaded: ro.Downloaded,
		Updated: ro.Installed, Failed: ro.Failed, Created: ro.Created}
	if ro.MaxFailures >= 0 {
		st.MaxFailures = strconv.FormatInt(ro.MaxFailures, 10)
		if ro.FailuresPercent {
			st.MaxFailures += "%"
		}
	}
	return st
}

func fleetDevice(st *store.FleetState) FleetDevice {
	d := FleetDevice{DeviceID: st.DeviceID, Version: st.Version, ManifestDigest: hex.EncodeToString(st.ManifestDigest),
		LastSeen: st.LastSeen, LastReport: st.LastReport, Detail: st.Detail, Revoked: st.Revoked}
	if st.Result >= 0 {
		res := st.Result
		d.Result = &res
	}
	return d
}

// share converts a percent to hundredths of a percent.
func share(percent float64) (int64, error) {
	s := math.Round(percent * 100)
	if math.IsNaN(percent) || s < 1 || s > store.FullShare || math.Abs(s-percent*100) > 1e-6 {
		return 0, fmt.Errorf("%w (got %v)", errBadPercent, percent)
	}
	return int64(s), nil
}

// ParseMaxFailures parses a failure threshold: "N" or "N%" ("" means
// none: −1).
func ParseMaxFailures(s string) (n int64, percent bool, err error) {
	if s == "" {
		return -1, false, nil
	}
	num, percent := strings.CutSuffix(s, "%")
	n, err = strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || (percent && n > 100) {
		return 0, false, fmt.Errorf("%w (got %q)", errBadMaxFailures, s)
	}
	return n, percent, nil
}

func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("request: %w", err))
		return false
	}
	return true
}

// rolloutError answers a refused rollout operation.
func (f *fleet) rolloutError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, store.ErrRolloutActive), errors.Is(err, store.ErrRolloutState):
		writeError(w, http.StatusConflict, err)
	default:
		f.storeError(w, r, err)
	}
}

// findRelease resolves a release by version or manifest digest.
func (f *fleet) findRelease(ctx context.Context, name string) (*store.Release, int, error) {
	list, err := f.s.store.Releases(ctx)
	if err != nil {
		return nil, http.StatusInternalServerError, err
	}
	var found []*store.Release
	for _, rel := range list {
		if rel.Version == name || hex.EncodeToString(rel.ManifestDigest[:]) == strings.ToLower(name) {
			found = append(found, rel)
		}
	}
	switch len(found) {
	case 0:
		return nil, http.StatusNotFound, fmt.Errorf("release %q: %w (sbm release publish first)", name, store.ErrNotFound)
	case 1:
		return found[0], 0, nil
	}
	return nil, http.StatusConflict, fmt.Errorf("release %q: %w", name, errAmbiguousRelease)
}

func (f *fleet) handleStart(w http.ResponseWriter, r *http.Request) {
	var req RolloutRequest
	if !decodeBody(w, r, &req) {
		return
	}
	sh, err := share(req.Percent)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	maxF, pct, err := ParseMaxFailures(req.MaxFailures)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	rel, code, err := f.findRelease(r.Context(), req.Release)
	if err != nil {
		if code == http.StatusInternalServerError {
			f.storeError(w, r, err)
			return
		}
		writeError(w, code, err)
		return
	}
	id, err := newRolloutID()
	if err != nil {
		f.storeError(w, r, err)
		return
	}
	ro := &store.Rollout{ID: id, ManifestDigest: rel.ManifestDigest, Cohort: req.Cohort, Share: sh, MaxFailures: maxF, FailuresPercent: pct, Created: f.s.now()}
	err = f.s.store.CreateRollout(r.Context(), ro)
	f.forgetRollouts()
	if err != nil {
		f.rolloutError(w, r, err)
		return
	}
	f.s.log.InfoContext(r.Context(), "rollout started", "rollout", id, "release", rel.Version, "percent", req.Percent, "cohort", req.Cohort)
	writeJSON(w, http.StatusCreated, rolloutStatus(ro))
}

// newRolloutID returns a random rollout ID (16 hex digits).
func newRolloutID() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("rollout ID: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

func (f *fleet) handleRollouts(w http.ResponseWriter, r *http.Request) {
	list, err := f.s.store.Rollouts(r.Context())
	if err != nil {
		f.storeError(w, r, err)
		return
	}
	out := RolloutList{Rollouts: []RolloutStatus{}}
	for _, ro := range list {
		out.Rollouts = append(out.Rollouts, rolloutStatus(ro))
	}
	writeJSON(w, http.StatusOK, out)
}

func (f *fleet) handleRollout(w http.ResponseWriter, r *http.Request) {
	ro, err := f.s.store.Rollout(r.Context(), r.PathValue("id"))
	if err != nil {
		f.storeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rolloutStatus(ro))
}

func (f *fleet) handlePercent(w http.ResponseWriter, r *http.Request) {
	var req PercentRequest
	if !decodeBody(w, r, &req) {
		return
	}
	sh, err := share(req.Percent)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	ro, err := f.s.store.UpdateRollout(r.Context(), r.PathValue("id"), func(ro *store.Rollout) error {
		if !ro.State.Active() {
			return fmt.Errorf("rollout %s is %s: %w", ro.ID, ro.State, store.ErrRolloutState)
		}
		if sh < ro.Share {
			return fmt.Errorf("rollout %s is at %v %%; a cohort only grows: %w", ro.ID, float64(ro.Share)/100, store.ErrRolloutState)
		}
		ro.Share = sh
		return nil
	})
	f.forgetRollouts()
	if err != nil {
		f.rolloutError(w, r, err)
		return
	}
	f.s.log.InfoContext(r.Context(), "rollout percent", "rollout", ro.ID, "percent", req.Percent)
	writeJSON(w, http.StatusOK, rolloutStatus(ro))
}

// transition returns the handler moving a rollout to state to: pause
// (from running), resume (from paused or halted), abort (from running,
// paused or halted); asking for the state it is in is a no-op.
func (f *fleet) transition(to store.RolloutState) http.HandlerFunc {
	from := map[store.RolloutState][]store.RolloutState{
		store.RolloutPaused:  {store.RolloutRunning},
		store.RolloutRunning: {store.RolloutPaused, store.RolloutHalted},
		store.RolloutAborted: {store.RolloutRunning, store.RolloutPaused, store.RolloutHalted},
	}[to]
	return func(w http.ResponseWriter, r *http.Request) {
		ro, err := f.s.store.UpdateRollout(r.Context(), r.PathValue("id"), func(ro *store.Rollout) error {
			if ro.State == to {
				return nil
			}
			for _, s := range from {
				if ro.State == s {
					ro.State = to
					return nil
				}
			}
			return fmt.Errorf("rollout %s is %s, it cannot become %s: %w", ro.ID, ro.State, to, store.ErrRolloutState)
		})
		f.forgetRollouts()
		if err != nil {
			f.rolloutError(w, r, err)
			return
		}
		f.s.log.InfoContext(r.Context(), "rollout "+string(to), "rollout", ro.ID)
		writeJSON(w, http.StatusOK, rolloutStatus(ro))
	}
}

// maxFleetPage bounds a page of GET /v1/fleet.
const maxFleetPage = 1000

func (f *fleet) handleFleet(w http.ResponseWriter, r *http.Request) {
	limit := maxFleetPage
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, fmt.Errorf("limit %q: want a positive number", s))
			return
		}
		limit = min(n, maxFleetPage)
	}
	if err := f.flushSeen(r.Context()); err != nil {
		f.storeError(w, r, err)
		return
	}
	list, err := f.s.store.FleetList(r.Context(), r.URL.Query().Get("after"), limit)
	if err != nil {
		f.storeError(w, r, err)
		return
	}
	out := FleetList{Devices: []FleetDevice{}}
	for i := range list {
		out.Devices = append(out.Devices, fleetDevice(&list[i]))
	}
	if len(list) == limit {
		out.Next = list[len(list)-1].DeviceID
	}
	writeJSON(w, http.StatusOK, out)
}

func (f *fleet) handleRevokeDevice(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	logged := false
	err := f.s.store.RevokeDevice(r.Context(), id, func(ctx context.Context, d *store.Device, ls auditlog.Store) error {
		e, err := revocationEntry(d)
		if err != nil {
			return err
		}
		if _, _, err := f.s.appendLog(ctx, ls, e); err != nil {
			return err
		}
		logged = true
		return nil
	})
	if err != nil {
		f.storeError(w, r, err)
		return
	}
	_, st, err := f.s.store.FleetDevice(r.Context(), id)
	if err != nil {
		f.storeError(w, r, err)
		return
	}
	if logged {
		f.s.log.WarnContext(r.Context(), "device revoked", "device", id)
	}
	writeJSON(w, http.StatusOK, fleetDevice(st))
}

// revocationEntry is the device-revoked log entry of a device: its order,
// its ID and the SHA-256 of its certificate.
func revocationEntry(d *store.Device) (*auditlog.Entry, error) {
	oid, err := parseOrderID(d.OrderID)
	if err != nil {
		return nil, err
	}
	dev, err := hex.DecodeString(d.DeviceID)
	if err != nil {
		return nil, fmt.Errorf("device ID %q: %w", d.DeviceID, err)
	}
	digest := sha256.Sum256(d.Certificate)
	return &auditlog.Entry{Kind: auditlog.DeviceRevoked, Order: oid, Device: dev, Digest: &digest}, nil
}
