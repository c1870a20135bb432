package store

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math/bits"
	"time"

	"github.com/sbm-project/sbm/server/auditlog"
)

// Errors of the update service's storage.
var (
	// ErrRolloutActive is returned by CreateRollout while another rollout
	// is running, paused or halted below 100 %.
	ErrRolloutActive = errors.New("another rollout is active")
	// ErrRolloutState is returned for a change the rollout's state does
	// not allow (resuming an aborted rollout, lowering its percent, …).
	ErrRolloutState = errors.New("rollout in the wrong state")
	// ErrActionState is returned for an action that cannot move to the
	// state asked (e.g. a failure reported after the install).
	ErrActionState = errors.New("action in the wrong state")
	// ErrReportSequence is returned by RecordReport for a report whose
	// sequence is not above the device's last accepted one (a replay).
	ErrReportSequence = errors.New("report sequence not above the last accepted")
)

// FullShare is a cohort share of 100 %: shares are in hundredths of a
// percent.
const FullShare = 10000

// InCohort reports whether a device belongs to a cohort (key: a
// rollout's CohortKey) at a share of the fleet (hundredths of a percent,
// 0..FullShare): the first 8 bytes of SHA-256(key ‖ 0x00 ‖ device ID),
// read as a fraction of 2⁶⁴, must be below share/10000. Membership needs no stored assignment,
// is the same on every call, and only grows as the share rises.
func InCohort(key, deviceID string, share int64) bool {
	if share >= FullShare {
		return true
	}
	if share <= 0 {
		return false
	}
	h := sha256.New()
	h.Write([]byte(key))
	h.Write([]byte{0})
	h.Write([]byte(deviceID))
	var sum [32]byte
	x := binary.BigEndian.Uint64(h.Sum(sum[:0])[:8])
	hi, _ := bits.Mul64(x, FullShare) // ⌊x · 10000 / 2⁶⁴⌋ in [0, 10000)
	return int64(hi) < share
}

// RolloutState is the state of a rollout.
type RolloutState string

// The states of a rollout.
const (
	// RolloutRunning: devices of the cohort are offered the release.
	RolloutRunning RolloutState = "running"
	// RolloutPaused: no new device is offered it; open actions go on.
	RolloutPaused RolloutState = "paused"
	// RolloutHalted: paused by the service because failures passed the
	// rollout's threshold.
	RolloutHalted RolloutState = "halted"
	// RolloutAborted: stopped by the operator; open actions are cancelled.
	RolloutAborted RolloutState = "aborted"
	// RolloutDone: superseded by a newer rollout after reaching 100 %.
	RolloutDone RolloutState = "done"
)

// Active reports whether the rollout may still deliver (running, paused
// or halted).
func (s RolloutState) Active() bool {
	return s == RolloutRunning || s == RolloutPaused || s == RolloutHalted
}

// Rollout is the staged delivery of one release to a share of the fleet.
type Rollout struct {
	ID             string // hex, unique
	ManifestDigest [32]byte
	Version        string // the release's version
	Cohort         string // the cohort's name, or "" (see CohortKey)
	Share          int64  // hundredths of a percent of the fleet, 1..FullShare
	State          RolloutState
	// MaxFailures is the failure threshold: the rollout halts when its
	// failures pass it (MaxFailures devices, or MaxFailures % of the
	// targeted devices when FailuresPercent); −1 means none.
	MaxFailures     int64
	FailuresPercent bool
	// Counters, maintained by the store: devices offered the release,
	// devices that reported it downloaded, installed, failed.
	Targeted, Downloaded, Installed, Failed int64
	Created                                 time.Time
}

// CohortKey is what cohort membership hashes with the device ID
// (InCohort): the cohort's name when the rollout names one, so rollouts
// of the same cohort select the same devices (the same canaries for every
// release), else the rollout's ID, an independent sample per rollout.
func (r *Rollout) CohortKey() string {
	if r.Cohort != "" {
		return "cohort:" + r.Cohort
	}
	return "rollout:" + r.ID
}

// OverThreshold reports whether the rollout's failures pass its
// threshold.
func (r *Rollout) OverThreshold() bool {
	switch {
	case r.MaxFailures < 0:
		return false
	case r.FailuresPercent:
		return r.Failed*100 > r.MaxFailures*r.Targeted
	default:
		return r.Failed > r.MaxFailures
	}
}

// ActionState is the state of one device's action in a rollout.
type ActionState string

// The states of an action.
const (
	ActionOffered    ActionState = "offered"
	ActionDownloaded ActionState = "downloaded"
	ActionInstalled  ActionState = "installed"
	ActionFailed     ActionState = "failed"
)

// Open reports whether the action is still under way.
func (s ActionState) Open() bool { return s == ActionOffered || s == ActionDownloaded }

// Action is a rollout's delivery to one device.
type Action struct {
	DeviceID  string
	RolloutID string
	State     ActionState
	// UPK is the device's UPK for the release, issued once and stored
	// (nil until the device asks for it).
	UPK     []byte
	Created time.Time
	Updated time.Time
}

// MaxUPKGrants bounds the grants of one ActionUPKs.
const MaxUPKGrants = 256

// UPKGrant is one device's UPK for its action in a rollout, for
// ActionUPKs.
type UPKGrant struct {
	DeviceID  string
	RolloutID string
	UPK       []byte // the UPK issued for the action (not empty)

	// Set by ActionUPKs:
	Stored []byte  // the action's UPK after: UPK if this call stored it, else the one issued first
	Device *Device // the device's order, station and log index (for the log entry)
	Err    error   // why the grant was refused; nothing stored for it
}

// FleetState is what the service knows of a certified device in the
// field.
type FleetState struct {
	DeviceID string
	// Version and ManifestDigest are the running application's, from the
	// device's last report (empty before it).
	Version        string
	ManifestDigest []byte
	LastSeen       time.Time // zero: never polled
	// LastReport is when the last report was accepted (zero: none);
	// ReportSequence its sequence, Result and Detail its update result
	// (Result −1: the report named none).
	LastReport     time.Time
	ReportSequence uint64
	Result         int
	Detail         string
	Revoked        bool
	// Actions are the device's actions, newest rollout first, as
	// FleetDevice reads them with the rest (FleetList leaves them nil).
	Actions []*Action
}

// StoredReport is a signed install report the service accepted.
type StoredReport struct {
	DeviceID string
	Sequence uint64
	Report   []byte // the COSE_Sign1 as the device sent it
	Received time.Time
}

// ReportUpdate is what RecordReport records from a verified report.
type ReportUpdate struct {
	StoredReport
	// Version and ManifestDigest: the running application (nil digest:
	// the report named none; the state keeps the previous).
	Version        string
	ManifestDigest []byte
	// Result is the update result (−1: none), Detail its text.
	Result int
	Detail string
	// Package is the manifest digest the result is about (nil: none).
	Package []byte
}

// ReportOutcome is what RecordReport did to the device's action.
type ReportOutcome struct {
	// Action is the action the report settled, or nil.
	Action *Action
	// Halted is true when the report's failure halted the rollout.
	Halted bool
}

// Fleet is the update service's storage: the devices' state in the
// field, revocations, rollouts, per-device actions and signed reports.
// Implemented by every Store.
type Fleet interface {
	// FleetDevice returns a certified device's record and fleet state
	// with its actions, in one read (a zero state for a device never
	// seen; ErrNotFound). The device API makes it once per request.
	FleetDevice(ctx context.Context, deviceID string) (*Device, *FleetState, error)
	// Seen records when devices were last seen (a batch, one
	// transaction; unknown devices are ignored; times never go back).
	Seen(ctx context.Context, seen map[string]time.Time) error
	// FleetList returns the fleet state of up to limit certified devices
	// with IDs above after, in ID order.
	FleetList(ctx context.Context, after string, limit int) ([]FleetState, error)
	// RevokeDevice marks a certified device revoked: the update service
	// refuses it from then on. logf (if not nil) runs in the same
	// transaction, with the device's record (its order, its certificate)
	// and the audit log bound to the transaction, to log the revocation;
	// its error stores nothing. Revoking a revoked device is a no-op: logf
	// does not run. ErrNotFound for a device never certified (nothing
	// logged). Locks: the device's fleet row, then the log head.
	RevokeDevice(ctx context.Context, deviceID string, logf func(ctx context.Context, d *Device, log auditlog.Store) error) error

	// CreateRollout records a new running rollout of a published release
	// (ErrNotFound for an unknown release). A rollout still active is
	// refused (ErrRolloutActive) unless it runs at 100 %: it becomes
	// done. It sets r.Created and r.State.
	CreateRollout(ctx context.Context, r *Rollout) error
	// Rollout returns a rollout (ErrNotFound).
	Rollout(ctx context.Context, id string) (*Rollout, error)
	// Rollouts returns every rollout, oldest first.
	Rollouts(ctx context.Context) ([]*Rollout, error)
	// UpdateRollout changes a rollout in one transaction: f gets the
	// rollout as stored and changes it (share, state); its error aborts.
	// It returns the rollout as stored after.
	UpdateRollout(ctx context.Context, id string, f func(*Rollout) error) (*Rollout, error)

	// DeviceActions returns a device's actions, newest rollout first.
	DeviceActions(ctx context.Context, deviceID string) ([]*Action, error)
	// Offer creates the device's action in a rollout, counted in its
	// targeted devices, if the rollout is running and the device is in
	// its cohort now (InCohort with its CohortKey and Share); it returns the existing action if there is one
	// (in any state), or ErrNotFound if none was created.
	Offer(ctx context.Context, deviceID, rolloutID string) (*Action, error)
	// Feedback moves a device's action to state (downloaded or failed),
	// counting it on the rollout and halting it when failures pass its
	// threshold; moving to the state it is in is a no-op. Errors:
	// ErrNotFound, ErrActionState.
	Feedback(ctx context.Context, deviceID, rolloutID string, state ActionState) (*ReportOutcome, error)
	// ActionUPK stores the UPK of an open action and runs logf in the same
	// transaction, unless the action has one already: it returns the UPK
	// stored (the first one issued, on every call). Errors: ErrNotFound,
	// ErrActionState (closed action), logf's (nothing stored).
	ActionUPK(ctx context.Context, deviceID, rolloutID string, upk []byte, logf func(ctx context.Context, d *Device, log auditlog.Store) error) ([]byte, error)
	// ActionUPKs is ActionUPK for several actions in one transaction (the
	// update service's group commit): each grant's action is checked and,
	// unless it holds a UPK already, given the grant's; logf runs once,
	// in the same transaction, with the grants that stored theirs, in
	// order, to log them. A grant refused (ErrNotFound, ErrActionState)
	// gets the error in its Err and does not stop the others; an error of
	// logf or of the store aborts the whole transaction (nothing stored)
	// and is returned. At most MaxUPKGrants grants.
	ActionUPKs(ctx context.Context, grants []*UPKGrant, logf func(ctx context.Context, stored []*UPKGrant, log auditlog.Store) error) error
	// RecordReport stores a verified report, if its sequence is above the
	// device's last (ErrReportSequence), updates the fleet state, and
	// settles the open action whose release the report's result is
	// about: installed if it names the release as installed (or the
	// release runs), failed for another result about it; the rollout
	// counts it and halts at its threshold. ErrNotFound: unknown device.
	RecordReport(ctx context.Context, u *ReportUpdate) (*ReportOutcome, error)
	// Reports returns a device's stored reports, by sequence.
	Reports(ctx context.Context, deviceID string) ([]StoredReport, error)
}
