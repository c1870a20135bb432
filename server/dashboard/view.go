package dashboard

import (
	"context"
	"time"
)

// Source gives the dashboard what it shows. The service implements it over
// its store; the page asks for a View every few seconds (Options.Refresh)
// per open browser tab, so View should read aggregates, not walk the fleet.
type Source interface {
	// View returns the service's state now. An error is logged and the
	// page shows its last view as stale; its text is not sent to the
	// browser.
	View(ctx context.Context) (*View, error)
}

// SourceFunc adapts a function to Source.
type SourceFunc func(ctx context.Context) (*View, error)

// View calls f.
func (f SourceFunc) View(ctx context.Context) (*View, error) { return f(ctx) }

// View is the state the dashboard shows, and the JSON body of
// GET {prefix}/api/view. Times are RFC 3339; a zero time is omitted. Slices
// are shown in the order given, so the Source sorts them (newest first
// reads best).
type View struct {
	// Service names the service or its context, shown in the title
	// (optional).
	Service string `json:"service,omitempty"`
	// Generated is when the Source made the view (zero: when it was
	// served).
	Generated time.Time `json:"generated,omitzero"`
	// Fleet summarises the registered devices; Devices lists some.
	Fleet Fleet `json:"fleet"`
	// Devices are the devices shown one per row. The Source chooses which
	// (for example the devices whose last report failed, then the most
	// recently seen); the dashboard sends at most Options.MaxDevices.
	Devices []Device `json:"devices"`
	// Releases are the published releases.
	Releases []Release `json:"releases"`
	// Rollouts are the rollouts, running ones and past ones.
	Rollouts []Rollout `json:"rollouts"`
	// Orders are the production orders.
	Orders []Order `json:"orders"`
	// Audit is the state of the audit log.
	Audit Audit `json:"audit"`
}

// Fleet summarises the registered devices.
type Fleet struct {
	// Total is the number of registered devices (0: len(Devices) is
	// shown).
	Total int64 `json:"total"`
	// Failing is the number of devices whose last report is a failure.
	Failing int64 `json:"failing"`
	// Versions counts the devices per installed version.
	Versions []VersionCount `json:"versions,omitempty"`
}

// VersionCount is the number of devices running one version.
type VersionCount struct {
	Version string `json:"version"`
	Devices int64  `json:"devices"`
}

// Device is one registered device.
type Device struct {
	// ID is the device ID (hex, as in its certificate).
	ID string `json:"id"`
	// Version is the installed release's version ("" if unknown).
	Version string `json:"version"`
	// LastSeen is the time of its last poll (zero: never).
	LastSeen time.Time `json:"last_seen,omitzero"`
	// LastReport is the result of its last signed install report:
	// ReportSuccess, ReportFailure, or "" (none yet).
	LastReport string `json:"last_report,omitempty"`
	// Detail is the last report's detail text, if any.
	Detail string `json:"detail,omitempty"`
}

// The results of an install report (Device.LastReport).
const (
	ReportSuccess = "success"
	ReportFailure = "failure"
)

// Release is one published release.
type Release struct {
	// Version is the release's version string.
	Version string `json:"version"`
	// SecurityCounter is the manifest's anti-rollback counter.
	SecurityCounter uint64 `json:"security_counter"`
	// ManifestDigest is the manifest's digest, hex.
	ManifestDigest string `json:"manifest_digest"`
	// Published is when the service accepted it.
	Published time.Time `json:"published,omitzero"`
}

// The states of a rollout (Rollout.State).
const (
	RolloutRunning = "running"
	RolloutPaused  = "paused"
	RolloutAborted = "aborted"
	RolloutHalted  = "halted" // stopped by itself: failures passed the threshold
	RolloutDone    = "done"
)

// Rollout is one staged rollout of a release.
type Rollout struct {
	// ID is the rollout's ID.
	ID string `json:"id"`
	// Release is the version being rolled out.
	Release string `json:"release"`
	// Cohort names the cohort, if the rollout has one.
	Cohort string `json:"cohort,omitempty"`
	// State is one of RolloutRunning, RolloutPaused, RolloutAborted,
	// RolloutHalted, RolloutDone.
	State string `json:"state"`
	// Percent is the share of the fleet (or cohort) targeted, 0 to 100.
	Percent float64 `json:"percent"`
	// Targeted is the number of devices in the targeted share.
	Targeted int64 `json:"targeted"`
	// Downloaded is the number of targeted devices that fetched the
	// package; it includes those that have reported since.
	Downloaded int64 `json:"downloaded"`
	// Updated is the number that reported a successful install.
	Updated int64 `json:"updated"`
	// Failed is the number that reported a failed install.
	Failed int64 `json:"failed"`
	// MaxFailures is the failure threshold as a count (0: none, or see
	// MaxFailuresPercent).
	MaxFailures int64 `json:"max_failures,omitempty"`
	// MaxFailuresPercent is the threshold as a percentage of Targeted
	// (0: none, or see MaxFailures).
	MaxFailuresPercent float64 `json:"max_failures_percent,omitempty"`
	// Started is when the rollout was started.
	Started time.Time `json:"started,omitzero"`
}

// Order is a production order's status, as the management API shows it.
type Order struct {
	ID        string    `json:"id"`
	State     string    `json:"state"` // "active" or "revoked"
	Count     int64     `json:"count"`
	Used      int64     `json:"used"`
	Spoiled   int64     `json:"spoiled"`
	Remaining int64     `json:"remaining"`
	NotAfter  time.Time `json:"not_after,omitzero"`
	Lines     []Line    `json:"lines,omitempty"`
}

// Line is one production line's sub-quota of an order.
type Line struct {
	Name      string `json:"name"`
	Count     int64  `json:"count"`
	Used      int64  `json:"used"`
	Spoiled   int64  `json:"spoiled"`
	Remaining int64  `json:"remaining"`
}

// Audit is the state of the audit log.
type Audit struct {
	// LogSize is the number of entries in the log.
	LogSize uint64 `json:"log_size"`
	// LatestCheckpoint is the time of the latest signed checkpoint (zero:
	// none yet).
	LatestCheckpoint time.Time `json:"latest_checkpoint,omitzero"`
	// LastAudit is the result of the last offline audit the service
	// knows of (nil: none).
	LastAudit *AuditResult `json:"last_audit,omitempty"`
}

// AuditResult is the outcome of one audit of the log.
type AuditResult struct {
	// Time is when the audit ran.
	Time time.Time `json:"time"`
	// Size is the number of entries it covered.
	Size uint64 `json:"size"`
	// OK is true if it found no problem.
	OK bool `json:"ok"`
	// Problem is the problem it found (the *auditlog.AuditError's text).
	Problem string `json:"problem,omitempty"`
}
