package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sbm-project/sbm/server/auditlog"
	"github.com/sbm-project/sbm/server/store"
)

// The update service's tables (migration 4): fleet, rollouts, actions,
// reports. Rollout counters are columns of the rollout's row, changed in
// the transaction that changes an action, so reading them is one row.

func unixTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// prepared returns query prepared on the database, once per store (the
// hot read paths of the device API: parsing a statement costs more than
// running it).
func (s *Store) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	if v, ok := s.stmts.Load(query); ok {
		return v.(*sql.Stmt), nil
	}
	st, err := s.db.PrepareContext(ctx, s.q(query))
	if err != nil {
		return nil, s.errorf("prepare", err)
	}
	if v, loaded := s.stmts.LoadOrStore(query, st); loaded {
		st.Close()
		return v.(*sql.Stmt), nil
	}
	return st, nil
}

// stmt returns query prepared for q: the store's prepared statement, on
// the transaction's connection when q is a transaction (database/sql
// prepares it once per connection and keeps it).
func (s *Store) stmt(ctx context.Context, q querier, query string) (*sql.Stmt, error) {
	st, err := s.prepared(ctx, query)
	if err != nil {
		return nil, err
	}
	if tx, ok := q.(*sql.Tx); ok {
		return tx.StmtContext(ctx, st), nil
	}
	return st, nil
}

// ensureFleet creates the fleet row of a certified device if it has none.
func (s *Store) ensureFleet(ctx context.Context, q querier, deviceID string) error {
	_, err := q.ExecContext(ctx, s.q(`INSERT INTO fleet (device_id) SELECT device_id FROM devices WHERE device_id = ?
		ON CONFLICT (device_id) DO NOTHING`), deviceID)
	if err != nil {
		return s.errorf("fleet state", err)
	}
	return nil
}

const fleetColumns = `d.device_id, COALESCE(f.version, ''), f.manifest_digest, COALESCE(f.last_seen, 0), COALESCE(f.last_report, 0),
	COALESCE(f.report_sequence, 0), COALESCE(f.result, -1), COALESCE(f.detail, ''), COALESCE(f.revoked, 0)`

func scanFleet(r scanner, extra ...any) (store.FleetState, error) {
	var st store.FleetState
	var seen, report, seq, revoked int64
	dest := append([]any{&st.DeviceID, &st.Version, &st.ManifestDigest, &seen, &report, &seq, &st.Result, &st.Detail, &revoked}, extra...)
	if err := r.Scan(dest...); err != nil {
		return st, err
	}
	st.ManifestDigest = nonEmpty(st.ManifestDigest)
	st.LastSeen, st.LastReport = unixTime(seen), unixTime(report)
	st.ReportSequence = uint64(seq)
	st.Revoked = revoked != 0
	return st, nil
}

// FleetDevice implements store.Store: one query, a row per action (or
// one row with NULL action columns).
func (s *Store) FleetDevice(ctx context.Context, deviceID string) (*store.Device, *store.FleetState, error) {
	q, err := s.prepared(ctx, `SELECT `+fleetColumns+`, d.order_id, d.station, d.certificate, d.upk, d.log_index, d.created,
		a.rollout_id, a.state, a.upk, a.created, a.updated
		FROM devices d LEFT JOIN fleet f ON f.device_id = d.device_id
		LEFT JOIN actions a ON a.device_id = d.device_id LEFT JOIN rollouts r ON r.id = a.rollout_id
		WHERE d.device_id = ? ORDER BY r.created DESC, r.id DESC`)
	if err != nil {
		return nil, nil, err
	}
	rows, err := q.QueryContext(ctx, deviceID)
	if err != nil {
		return nil, nil, s.errorf("read fleet device", err)
	}
	defer rows.Close()
	var d *store.Device
	var st store.FleetState
	var actions []*store.Action
	for rows.Next() {
		row := &store.Device{}
		var created int64
		var rollout, state sql.NullString
		var upk []byte
		var aCreated, aUpdated sql.NullInt64
		st, err = scanFleet(rows, &row.OrderID, &row.Station, &row.Certificate, &row.UPK, &row.LogIndex, &created,
			&rollout, &state, &upk, &aCreated, &aUpdated)
		if err != nil {
			return nil, nil, s.errorf("read fleet device", err)
		}
		if d == nil {
			d = row
			d.DeviceID = st.DeviceID
			d.Station, d.UPK = nonEmpty(d.Station), nonEmpty(d.UPK)
			d.Created = unixTime(created)
		}
		if rollout.Valid {
			actions = append(actions, &store.Action{DeviceID: st.DeviceID, RolloutID: rollout.String, State: store.ActionState(state.String),
				UPK: nonEmpty(upk), Created: unixTime(aCreated.Int64), Updated: unixTime(aUpdated.Int64)})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, s.errorf("read fleet device", err)
	}
	if d == nil {
		return nil, nil, fmt.Errorf("device %s: %w", deviceID, store.ErrNotFound)
	}
	st.Actions = actions
	return d, &st, nil
}

// Seen implements store.Store.
func (s *Store) Seen(ctx context.Context, seen map[string]time.Time) error {
	if len(seen) == 0 {
		return nil
	}
	// In ID order: concurrent batches lock their rows in the same order
	// (PostgreSQL would find a deadlock otherwise).
	ids := make([]string, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return s.inTx(ctx, "seen", func(tx *sql.Tx) error {
		for len(ids) > 0 {
			n := min(len(ids), seenChunk)
			values := strings.Repeat(`(?, CAST(? AS BIGINT)), `, n)
			args := make([]any, 0, 2*n)
			for _, id := range ids[:n] {
				args = append(args, id, seen[id].UnixNano())
			}
			// WHERE true: SQLite's parser needs it before an upsert's ON.
			if _, err := tx.ExecContext(ctx, s.q(`WITH v (id, t) AS (VALUES `+values[:len(values)-2]+`)
				INSERT INTO fleet (device_id, last_seen)
				SELECT d.device_id, v.t FROM v JOIN devices d ON d.device_id = v.id
				WHERE true ORDER BY d.device_id
				ON CONFLICT (device_id) DO UPDATE SET last_seen = excluded.last_seen WHERE fleet.last_seen < excluded.last_seen`), args...); err != nil {
				return s.errorf("seen", err)
			}
			ids = ids[n:]
		}
		return nil
	})
}

// seenChunk is how many devices one statement of Seen updates.
const seenChunk = 250

// FleetList implements store.Store.
func (s *Store) FleetList(ctx context.Context, after string, limit int) ([]store.FleetState, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+fleetColumns+` FROM devices d LEFT JOIN fleet f ON f.device_id = d.device_id
		WHERE d.device_id > ? ORDER BY d.device_id LIMIT ?`), after, limit)
	if err != nil {
		return nil, s.errorf("fleet list", err)
	}
	defer rows.Close()
	var out []store.FleetState
	for rows.Next() {
		st, err := scanFleet(rows)
		if err != nil {
			return nil, s.errorf("fleet list", err)
		}
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, s.errorf("fleet list", err)
	}
	return out, nil
}

// RevokeDevice implements store.Store.
func (s *Store) RevokeDevice(ctx context.Context, deviceID string, logf func(context.Context, *store.Device, auditlog.Store) error) error {
	return s.inTx(ctx, "revoke device", func(tx *sql.Tx) error {
		if err := s.ensureFleet(ctx, tx, deviceID); err != nil {
			return err
		}
		var revoked int64
		err := tx.QueryRowContext(ctx, s.q(`SELECT revoked FROM fleet WHERE device_id = ? FOR UPDATE`), deviceID).Scan(&revoked)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("device %s: %w", deviceID, store.ErrNotFound)
		}
		if err != nil {
			return s.errorf("revoke device", err)
		}
		if revoked != 0 {
			return nil
		}
		if logf != nil {
			d := &store.Device{DeviceID: deviceID}
			if err := tx.QueryRowContext(ctx, s.q(`SELECT order_id, station, certificate, log_index FROM devices WHERE device_id = ?`), deviceID).
				Scan(&d.OrderID, &d.Station, &d.Certificate, &d.LogIndex); err != nil {
				return s.errorf("revoke device", err)
			}
			d.Station = nonEmpty(d.Station)
			if err := logf(ctx, d, s.txLog(tx)); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE fleet SET revoked = 1 WHERE device_id = ?`), deviceID); err != nil {
			return s.errorf("revoke device", err)
		}
		return nil
	})
}

const rolloutColumns = `id, manifest_digest, version, cohort, share, state, max_failures, failures_percent,
	targeted, downloaded, installed, failed, created`

func scanRollout(r scanner) (*store.Rollout, error) {
	ro := &store.Rollout{}
	var digest []byte
	var state string
	var pct, created int64
	if err := r.Scan(&ro.ID, &digest, &ro.Version, &ro.Cohort, &ro.Share, &state, &ro.MaxFailures, &pct,
		&ro.Targeted, &ro.Downloaded, &ro.Installed, &ro.Failed, &created); err != nil {
		return nil, err
	}
	if len(digest) != len(ro.ManifestDigest) {
		return nil, fmt.Errorf("rollout %s: stored manifest digest has %d bytes", ro.ID, len(digest))
	}
	copy(ro.ManifestDigest[:], digest)
	ro.State = store.RolloutState(state)
	ro.FailuresPercent = pct != 0
	ro.Created = unixTime(created)
	return ro, nil
}

func (s *Store) rolloutTx(ctx context.Context, q querier, id string, lock bool) (*store.Rollout, error) {
	query := `SELECT ` + rolloutColumns + ` FROM rollouts WHERE id = ?`
	if lock {
		query += ` FOR UPDATE`
	}
	st, err := s.stmt(ctx, q, query)
	if err != nil {
		return nil, err
	}
	ro, err := scanRollout(st.QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("rollout %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, s.errorf("read rollout", err)
	}
	return ro, nil
}

// CreateRollout implements store.Store.
func (s *Store) CreateRollout(ctx context.Context, r *store.Rollout) error {
	if r.Share <= 0 || r.Share > store.FullShare || r.ID == "" {
		return fmt.Errorf("%s: create rollout: want an ID and a share in 1..%d", s.d.Name, store.FullShare)
	}
	created := r.Created
	if created.IsZero() {
		created = s.now()
	}
	return s.inTx(ctx, "create rollout", func(tx *sql.Tx) error {
		// The log head's row serializes rollout creation across instances
		// (SQLite: the transaction holds the write lock already).
		var n int64
		if err := tx.QueryRowContext(ctx, s.q(`SELECT size FROM log_head WHERE id = 1 FOR UPDATE`)).Scan(&n); err != nil {
			return s.errorf("create rollout", err)
		}
		var version string
		err := tx.QueryRowContext(ctx, s.q(`SELECT version FROM releases WHERE manifest_digest = ?`), r.ManifestDigest[:]).Scan(&version)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("release %x: %w", r.ManifestDigest[:8], store.ErrNotFound)
		}
		if err != nil {
			return s.errorf("create rollout", err)
		}
		rows, err := tx.QueryContext(ctx, s.q(`SELECT `+rolloutColumns+` FROM rollouts WHERE state IN (?, ?, ?)`),
			string(store.RolloutRunning), string(store.RolloutPaused), string(store.RolloutHalted))
		if err != nil {
			return s.errorf("create rollout", err)
		}
		var active []*store.Rollout
		for rows.Next() {
			ro, err := scanRollout(rows)
			if err != nil {
				rows.Close()
				return s.errorf("create rollout", err)
			}
			active = append(active, ro)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return s.errorf("create rollout", err)
		}
		for _, ro := range active {
			if ro.State != store.RolloutRunning || ro.Share != store.FullShare {
				return fmt.Errorf("rollout %s of %s is %s at %d.%02d %%: %w", ro.ID, ro.Version, ro.State, ro.Share/100, ro.Share%100, store.ErrRolloutActive)
			}
			if _, err := tx.ExecContext(ctx, s.q(`UPDATE rollouts SET state = ? WHERE id = ?`), string(store.RolloutDone), ro.ID); err != nil {
				return s.errorf("create rollout", err)
			}
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO rollouts (id, manifest_digest, version, cohort, share, state, max_failures, failures_percent, created)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`), r.ID, r.ManifestDigest[:], version, r.Cohort, r.Share, string(store.RolloutRunning),
			r.MaxFailures, boolInt(r.FailuresPercent), created.UnixNano()); err != nil {
			if s.d.IsUniqueViolation(err) {
				return fmt.Errorf("rollout %s: %w", r.ID, store.ErrRolloutActive)
			}
			return s.errorf("create rollout", err)
		}
		r.Version, r.State, r.Created = version, store.RolloutRunning, unixTime(created.UnixNano())
		return nil
	})
}

// Rollout implements store.Store.
func (s *Store) Rollout(ctx context.Context, id string) (*store.Rollout, error) {
	return s.rolloutTx(ctx, s.db, id, false)
}

// Rollouts implements store.Store.
func (s *Store) Rollouts(ctx context.Context) ([]*store.Rollout, error) {
	q, err := s.prepared(ctx, `SELECT `+rolloutColumns+` FROM rollouts ORDER BY created, id`)
	if err != nil {
		return nil, err
	}
	rows, err := q.QueryContext(ctx)
	if err != nil {
		return nil, s.errorf("list rollouts", err)
	}
	defer rows.Close()
	var out []*store.Rollout
	for rows.Next() {
		ro, err := scanRollout(rows)
		if err != nil {
			return nil, s.errorf("list rollouts", err)
		}
		out = append(out, ro)
	}
	if err := rows.Err(); err != nil {
		return nil, s.errorf("list rollouts", err)
	}
	return out, nil
}

// UpdateRollout implements store.Store.
func (s *Store) UpdateRollout(ctx context.Context, id string, f func(*store.Rollout) error) (*store.Rollout, error) {
	var out *store.Rollout
	err := s.inTx(ctx, "update rollout", func(tx *sql.Tx) error {
		ro, err := s.rolloutTx(ctx, tx, id, true)
		if err != nil {
			return err
		}
		if err := f(ro); err != nil {
			return err
		}
		if ro.Share <= 0 || ro.Share > store.FullShare {
			return fmt.Errorf("rollout %s: share %d outside 1..%d: %w", id, ro.Share, store.FullShare, store.ErrRolloutState)
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE rollouts SET share = ?, state = ?, cohort = ?, max_failures = ?, failures_percent = ? WHERE id = ?`),
			ro.Share, string(ro.State), ro.Cohort, ro.MaxFailures, boolInt(ro.FailuresPercent), id); err != nil {
			return s.errorf("update rollout", err)
		}
		out, err = s.rolloutTx(ctx, tx, id, false)
		return err
	})
	return out, err
}

func (s *Store) scanAction(r scanner) (*store.Action, error) {
	a := &store.Action{}
	var state string
	var created, updated int64
	if err := r.Scan(&a.DeviceID, &a.RolloutID, &state, &a.UPK, &created, &updated); err != nil {
		return nil, err
	}
	a.State = store.ActionState(state)
	a.UPK = nonEmpty(a.UPK)
	a.Created, a.Updated = unixTime(created), unixTime(updated)
	return a, nil
}

const actionColumns = `a.device_id, a.rollout_id, a.state, a.upk, a.created, a.updated`

func (s *Store) actionTx(ctx context.Context, q querier, deviceID, rolloutID string, lock bool) (*store.Action, error) {
	query := `SELECT ` + actionColumns + ` FROM actions a WHERE a.device_id = ? AND a.rollout_id = ?`
	if lock {
		query += ` FOR UPDATE`
	}
	a, err := s.scanAction(q.QueryRowContext(ctx, s.q(query), deviceID, rolloutID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("action of device %s in rollout %s: %w", deviceID, rolloutID, store.ErrNotFound)
	}
	if err != nil {
		return nil, s.errorf("read action", err)
	}
	return a, nil
}

// DeviceActions implements store.Store.
func (s *Store) DeviceActions(ctx context.Context, deviceID string) ([]*store.Action, error) {
	q, err := s.prepared(ctx, `SELECT `+actionColumns+` FROM actions a JOIN rollouts r ON r.id = a.rollout_id
		WHERE a.device_id = ? ORDER BY r.created DESC, r.id DESC`)
	if err != nil {
		return nil, err
	}
	rows, err := q.QueryContext(ctx, deviceID)
	if err != nil {
		return nil, s.errorf("device actions", err)
	}
	defer rows.Close()
	var out []*store.Action
	for rows.Next() {
		a, err := s.scanAction(rows)
		if err != nil {
			return nil, s.errorf("device actions", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, s.errorf("device actions", err)
	}
	return out, nil
}

// Offer implements store.Store.
func (s *Store) Offer(ctx context.Context, deviceID, rolloutID string) (*store.Action, error) {
	if a, err := s.actionTx(ctx, s.db, deviceID, rolloutID, false); err == nil || !errors.Is(err, store.ErrNotFound) {
		return a, err
	}
	var out *store.Action
	err := s.inTx(ctx, "offer", func(tx *sql.Tx) error {
		ro, err := s.rolloutTx(ctx, tx, rolloutID, true)
		if err != nil {
			return err
		}
		if a, err := s.actionTx(ctx, tx, deviceID, rolloutID, false); err == nil || !errors.Is(err, store.ErrNotFound) {
			out = a
			return err
		}
		if ro.State != store.RolloutRunning || !store.InCohort(ro.CohortKey(), deviceID, ro.Share) {
			return fmt.Errorf("rollout %s (%s) offers nothing to device %s: %w", rolloutID, ro.State, deviceID, store.ErrNotFound)
		}
		now := s.now().UnixNano()
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO actions (device_id, rollout_id, state, created, updated) VALUES (?, ?, ?, ?, ?)`),
			deviceID, rolloutID, string(store.ActionOffered), now, now); err != nil {
			return s.errorf("offer", err)
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE rollouts SET targeted = targeted + 1 WHERE id = ?`), rolloutID); err != nil {
			return s.errorf("offer", err)
		}
		out = &store.Action{DeviceID: deviceID, RolloutID: rolloutID, State: store.ActionOffered, Created: unixTime(now), Updated: unixTime(now)}
		return nil
	})
	return out, err
}

// moveTx moves an action (locked and read as a) to state to and counts it
// on its rollout, halting the rollout when a failure passes its threshold.
func (s *Store) moveTx(ctx context.Context, tx *sql.Tx, a *store.Action, to store.ActionState) (bool, error) {
	now := s.now().UnixNano()
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE actions SET state = ?, updated = ? WHERE device_id = ? AND rollout_id = ?`),
		string(to), now, a.DeviceID, a.RolloutID); err != nil {
		return false, s.errorf("move action", err)
	}
	var counts string
	switch to {
	case store.ActionDownloaded:
		counts = `downloaded = downloaded + 1`
	case store.ActionInstalled:
		counts = `installed = installed + 1`
		if a.State == store.ActionOffered {
			counts += `, downloaded = downloaded + 1`
		}
	case store.ActionFailed:
		counts = `failed = failed + 1`
	}
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE rollouts SET `+counts+` WHERE id = ?`), a.RolloutID); err != nil {
		return false, s.errorf("move action", err)
	}
	a.State, a.Updated = to, unixTime(now)
	if to != store.ActionFailed {
		return false, nil
	}
	ro, err := s.rolloutTx(ctx, tx, a.RolloutID, true)
	if err != nil {
		return false, err
	}
	if (ro.State != store.RolloutRunning && ro.State != store.RolloutPaused) || !ro.OverThreshold() {
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE rollouts SET state = ? WHERE id = ?`), string(store.RolloutHalted), a.RolloutID); err != nil {
		return false, s.errorf("halt rollout", err)
	}
	return true, nil
}

// Feedback implements store.Store.
func (s *Store) Feedback(ctx context.Context, deviceID, rolloutID string, state store.ActionState) (*store.ReportOutcome, error) {
	if state != store.ActionDownloaded && state != store.ActionFailed {
		return nil, fmt.Errorf("%s: feedback: state %q is not downloaded or failed", s.d.Name, state)
	}
	var out *store.ReportOutcome
	err := s.inTx(ctx, "feedback", func(tx *sql.Tx) error {
		a, err := s.actionTx(ctx, tx, deviceID, rolloutID, true)
		if err != nil {
			return err
		}
		out = &store.ReportOutcome{Action: a}
		switch {
		case a.State == state:
			return nil
		case !a.State.Open():
			return fmt.Errorf("action of device %s in rollout %s is %s: %w", deviceID, rolloutID, a.State, store.ErrActionState)
		}
		out.Halted, err = s.moveTx(ctx, tx, a, state)
		return err
	})
	return out, err
}

// ActionUPK implements store.Store: ActionUPKs of one grant.
func (s *Store) ActionUPK(ctx context.Context, deviceID, rolloutID string, upk []byte, logf func(context.Context, *store.Device, auditlog.Store) error) ([]byte, error) {
	g := &store.UPKGrant{DeviceID: deviceID, RolloutID: rolloutID, UPK: upk}
	var batchf func(context.Context, []*store.UPKGrant, auditlog.Store) error
	if logf != nil {
		batchf = func(ctx context.Context, stored []*store.UPKGrant, ls auditlog.Store) error {
			return logf(ctx, stored[0].Device, ls)
		}
	}
	if err := s.ActionUPKs(ctx, []*store.UPKGrant{g}, batchf); err != nil {
		return nil, err
	}
	return g.Stored, g.Err
}

// padArgs pads the values of an IN list to a power of two by repeating
// the last, so that a batch's queries take one of a few forms, each
// prepared once.
func padArgs(args []any) []any {
	n := 1
	for n < len(args) {
		n *= 2
	}
	for len(args) < n {
		args = append(args, args[len(args)-1])
	}
	return args
}

// actionUPKState is an action as ActionUPKs reads it.
type actionUPKState struct {
	state store.ActionState
	upk   []byte
}

// ActionUPKs implements store.Store. The transaction reads the grants'
// actions (locked), rollouts and devices with one query each, whatever
// the number of grants, then stores each UPK.
func (s *Store) ActionUPKs(ctx context.Context, grants []*store.UPKGrant, logf func(context.Context, []*store.UPKGrant, auditlog.Store) error) error {
	if len(grants) > store.MaxUPKGrants {
		return fmt.Errorf("%s: action upks: %d grants, at most %d", s.d.Name, len(grants), store.MaxUPKGrants)
	}
	for _, g := range grants {
		if len(g.UPK) == 0 {
			return fmt.Errorf("%s: action upk: empty UPK for device %s", s.d.Name, g.DeviceID)
		}
		g.Stored, g.Device, g.Err = nil, nil, nil
	}
	if len(grants) == 0 {
		return nil
	}
	err := s.inTx(ctx, "action upk", func(tx *sql.Tx) error {
		type key struct{ device, rollout string }
		actions := make(map[key]*actionUPKState, len(grants))
		// The grants' devices' actions in the grants' rollouts (a few
		// more rows than the grants, found by the primary key's prefix;
		// a row-value IN is not indexed by every engine).
		devArgs := make([]any, 0, len(grants))
		var rolloutArgs []any
		seenRollout := map[string]bool{}
		for _, g := range grants {
			devArgs = append(devArgs, g.DeviceID)
			if !seenRollout[g.RolloutID] {
				seenRollout[g.RolloutID] = true
				rolloutArgs = append(rolloutArgs, g.RolloutID)
			}
		}
		devArgs, rolloutArgs = padArgs(devArgs), padArgs(rolloutArgs)
		in := func(n int) string { return `(?` + strings.Repeat(`, ?`, n-1) + `)` }
		st, err := s.stmt(ctx, tx, `SELECT device_id, rollout_id, state, upk FROM actions
			WHERE device_id IN `+in(len(devArgs))+` AND rollout_id IN `+in(len(rolloutArgs))+` FOR UPDATE`)
		if err != nil {
			return err
		}
		rows, err := st.QueryContext(ctx, append(devArgs, rolloutArgs...)...)
		if err != nil {
			return s.errorf("action upk", err)
		}
		defer rows.Close()
		for rows.Next() {
			var k key
			var a actionUPKState
			var state string
			if err := rows.Scan(&k.device, &k.rollout, &state, &a.upk); err != nil {
				return s.errorf("action upk", err)
			}
			a.state, a.upk = store.ActionState(state), nonEmpty(a.upk)
			actions[k] = &a
		}
		if err := rows.Err(); err != nil {
			return s.errorf("action upk", err)
		}
		rows.Close()
		devices := make(map[string]*store.Device, len(grants))
		if st, err = s.stmt(ctx, tx, `SELECT device_id, order_id, station, log_index FROM devices WHERE device_id IN `+in(len(devArgs))); err != nil {
			return err
		}
		rows, err = st.QueryContext(ctx, devArgs...)
		if err != nil {
			return s.errorf("action upk", err)
		}
		defer rows.Close()
		for rows.Next() {
			d := &store.Device{}
			if err := rows.Scan(&d.DeviceID, &d.OrderID, &d.Station, &d.LogIndex); err != nil {
				return s.errorf("action upk", err)
			}
			devices[d.DeviceID] = d
		}
		if err := rows.Err(); err != nil {
			return s.errorf("action upk", err)
		}
		rows.Close()
		rollouts := map[string]*store.Rollout{}
		var stored []*store.UPKGrant
		for _, g := range grants {
			a := actions[key{g.DeviceID, g.RolloutID}]
			if a == nil {
				g.Err = fmt.Errorf("action of device %s in rollout %s: %w", g.DeviceID, g.RolloutID, store.ErrNotFound)
				continue
			}
			if a.upk != nil {
				g.Stored = a.upk
				continue
			}
			ro := rollouts[g.RolloutID]
			if ro == nil {
				if ro, err = s.rolloutTx(ctx, tx, g.RolloutID, false); err != nil {
					return err
				}
				rollouts[g.RolloutID] = ro
			}
			if !a.state.Open() || ro.State == store.RolloutAborted {
				g.Err = fmt.Errorf("action of device %s in rollout %s is %s (rollout %s): %w", g.DeviceID, g.RolloutID, a.state, ro.State, store.ErrActionState)
				continue
			}
			if g.Device = devices[g.DeviceID]; g.Device == nil {
				return fmt.Errorf("%s: action upk: device %s of an action has no record", s.d.Name, g.DeviceID)
			}
			g.Device.Station = nonEmpty(g.Device.Station)
			a.upk, g.Stored = g.UPK, g.UPK // a grant repeated in the batch gets this one
			stored = append(stored, g)
		}
		if len(stored) == 0 {
			return nil
		}
		if logf != nil {
			if err := logf(ctx, stored, s.txLog(tx)); err != nil {
				return err
			}
		}
		now := s.now().UnixNano()
		if st, err = s.stmt(ctx, tx, `UPDATE actions SET upk = ?, updated = ? WHERE device_id = ? AND rollout_id = ?`); err != nil {
			return err
		}
		for _, g := range stored {
			if _, err := st.ExecContext(ctx, g.UPK, now, g.DeviceID, g.RolloutID); err != nil {
				return s.errorf("action upk", err)
			}
		}
		return nil
	})
	if err != nil {
		for _, g := range grants {
			g.Stored, g.Device, g.Err = nil, nil, nil
		}
	}
	return err
}

// RecordReport implements store.Store.
func (s *Store) RecordReport(ctx context.Context, u *store.ReportUpdate) (*store.ReportOutcome, error) {
	received := u.Received
	if received.IsZero() {
		received = s.now()
	}
	out := &store.ReportOutcome{}
	err := s.inTx(ctx, "record report", func(tx *sql.Tx) error {
		if err := s.ensureFleet(ctx, tx, u.DeviceID); err != nil {
			return err
		}
		var last, seq int64
		err := tx.QueryRowContext(ctx, s.q(`SELECT last_report, report_sequence FROM fleet WHERE device_id = ? FOR UPDATE`), u.DeviceID).Scan(&last, &seq)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("device %s: %w", u.DeviceID, store.ErrNotFound)
		}
		if err != nil {
			return s.errorf("record report", err)
		}
		if last != 0 && u.Sequence <= uint64(seq) {
			return fmt.Errorf("device %s: sequence %#x after %#x: %w", u.DeviceID, u.Sequence, uint64(seq), store.ErrReportSequence)
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO reports (device_id, sequence, report, received) VALUES (?, ?, ?, ?)`),
			u.DeviceID, int64(u.Sequence), u.Report, received.UnixNano()); err != nil {
			return s.errorf("record report", err)
		}
		set := `last_report = ?, report_sequence = ?, result = ?, detail = ?, last_seen = CASE WHEN last_seen < ? THEN ? ELSE last_seen END`
		args := []any{received.UnixNano(), int64(u.Sequence), u.Result, u.Detail, received.UnixNano(), received.UnixNano()}
		if u.ManifestDigest != nil {
			set += `, version = ?, manifest_digest = ?`
			args = append(args, u.Version, u.ManifestDigest)
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE fleet SET `+set+` WHERE device_id = ?`), append(args, u.DeviceID)...); err != nil {
			return s.errorf("record report", err)
		}

		// The open actions, and the release each delivers.
		rows, err := tx.QueryContext(ctx, s.q(`SELECT `+actionColumns+`, r.manifest_digest FROM actions a JOIN rollouts r ON r.id = a.rollout_id
			WHERE a.device_id = ? AND a.state IN (?, ?) ORDER BY r.created DESC, r.id DESC`), u.DeviceID, string(store.ActionOffered), string(store.ActionDownloaded))
		if err != nil {
			return s.errorf("record report", err)
		}
		type open struct {
			a       *store.Action
			release []byte
		}
		var opens []open
		for rows.Next() {
			a := &store.Action{}
			var state string
			var created, updated int64
			var release []byte
			if err := rows.Scan(&a.DeviceID, &a.RolloutID, &state, &a.UPK, &created, &updated, &release); err != nil {
				rows.Close()
				return s.errorf("record report", err)
			}
			a.State, a.UPK, a.Created, a.Updated = store.ActionState(state), nonEmpty(a.UPK), unixTime(created), unixTime(updated)
			opens = append(opens, open{a, release})
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return s.errorf("record report", err)
		}
		for _, o := range opens {
			about := u.Package != nil && bytes.Equal(u.Package, o.release)
			var to store.ActionState
			switch {
			case (about && u.Result == 0) || (u.ManifestDigest != nil && bytes.Equal(u.ManifestDigest, o.release)):
				to = store.ActionInstalled
			case about && u.Result > 0:
				to = store.ActionFailed
			default:
				continue
			}
			halted, err := s.moveTx(ctx, tx, o.a, to)
			if err != nil {
				return err
			}
			out.Action, out.Halted = o.a, halted
			break
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Reports implements store.Store.
func (s *Store) Reports(ctx context.Context, deviceID string) ([]store.StoredReport, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT sequence, report, received FROM reports WHERE device_id = ? ORDER BY sequence`), deviceID)
	if err != nil {
		return nil, s.errorf("reports", err)
	}
	defer rows.Close()
	var out []store.StoredReport
	for rows.Next() {
		r := store.StoredReport{DeviceID: deviceID}
		var seq, received int64
		if err := rows.Scan(&seq, &r.Report, &received); err != nil {
			return nil, s.errorf("reports", err)
		}
		r.Sequence, r.Received = uint64(seq), unixTime(received)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, s.errorf("reports", err)
	}
	return out, nil
}
