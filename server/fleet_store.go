package server

import (
	"context"
	"time"

	"github.com/sbm-project/sbm/server/auditlog"
	"github.com/sbm-project/sbm/server/store"
)

// The update service's store operations, timed like the others (see
// timedStore in metrics.go).

func (t timedStore) FleetDevice(ctx context.Context, id string) (d *store.Device, st *store.FleetState, err error) {
	defer func(start time.Time) { t.observe("fleet_device", start, err) }(time.Now())
	return t.s.FleetDevice(ctx, id)
}

func (t timedStore) Seen(ctx context.Context, seen map[string]time.Time) (err error) {
	defer func(start time.Time) { t.observe("seen", start, err) }(time.Now())
	return t.s.Seen(ctx, seen)
}

func (t timedStore) FleetList(ctx context.Context, after string, limit int) (l []store.FleetState, err error) {
	defer func(start time.Time) { t.observe("fleet_list", start, err) }(time.Now())
	return t.s.FleetList(ctx, after, limit)
}

func (t timedStore) RevokeDevice(ctx context.Context, id string, logf func(context.Context, *store.Device, auditlog.Store) error) (err error) {
	defer func(start time.Time) { t.observe("revoke_device", start, err) }(time.Now())
	return t.s.RevokeDevice(ctx, id, logf)
}

func (t timedStore) CreateRollout(ctx context.Context, r *store.Rollout) (err error) {
	defer func(start time.Time) { t.observe("create_rollout", start, err) }(time.Now())
	return t.s.CreateRollout(ctx, r)
}

func (t timedStore) Rollout(ctx context.Context, id string) (r *store.Rollout, err error) {
	defer func(start time.Time) { t.observe("rollout", start, err) }(time.Now())
	return t.s.Rollout(ctx, id)
}

func (t timedStore) Rollouts(ctx context.Context) (rs []*store.Rollout, err error) {
	defer func(start time.Time) { t.observe("rollouts", start, err) }(time.Now())
	return t.s.Rollouts(ctx)
}

func (t timedStore) UpdateRollout(ctx context.Context, id string, f func(*store.Rollout) error) (r *store.Rollout, err error) {
	defer func(start time.Time) { t.observe("update_rollout", start, err) }(time.Now())
	return t.s.UpdateRollout(ctx, id, f)
}

func (t timedStore) DeviceActions(ctx context.Context, id string) (as []*store.Action, err error) {
	defer func(start time.Time) { t.observe("device_actions", start, err) }(time.Now())
	return t.s.DeviceActions(ctx, id)
}

func (t timedStore) Offer(ctx context.Context, deviceID, rolloutID string) (a *store.Action, err error) {
	defer func(start time.Time) { t.observe("offer", start, err) }(time.Now())
	return t.s.Offer(ctx, deviceID, rolloutID)
}

func (t timedStore) Feedback(ctx context.Context, deviceID, rolloutID string, state store.ActionState) (o *store.ReportOutcome, err error) {
	defer func(start time.Time) { t.observe("feedback", start, err) }(time.Now())
	return t.s.Feedback(ctx, deviceID, rolloutID, state)
}

func (t timedStore) ActionUPK(ctx context.Context, deviceID, rolloutID string, upk []byte, logf func(context.Context, *store.Device, auditlog.Store) error) (b []byte, err error) {
	defer func(start time.Time) { t.observe("action_upk", start, err) }(time.Now())
	return t.s.ActionUPK(ctx, deviceID, rolloutID, upk, logf)
}

func (t timedStore) ActionUPKs(ctx context.Context, grants []*store.UPKGrant, logf func(context.Context, []*store.UPKGrant, auditlog.Store) error) (err error) {
	defer func(start time.Time) { t.observe("action_upks", start, err) }(time.Now())
	return t.s.ActionUPKs(ctx, grants, logf)
}

func (t timedStore) RecordReport(ctx context.Context, u *store.ReportUpdate) (o *store.ReportOutcome, err error) {
	defer func(start time.Time) { t.observe("record_report", start, err) }(time.Now())
	return t.s.RecordReport(ctx, u)
}

func (t timedStore) Reports(ctx context.Context, id string) (rs []store.StoredReport, err error) {
	defer func(start time.Time) { t.observe("reports", start, err) }(time.Now())
	return t.s.Reports(ctx, id)
}
