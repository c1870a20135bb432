package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/sbm-project/sbm/server/auditlog"
	"github.com/sbm-project/sbm/server/store"
)

// nonEmpty returns b, or nil for an empty slice (an unset station).
func nonEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// LoadOrder implements store.Store.
func (s *Store) LoadOrder(ctx context.Context, o *store.Order, quotas []store.Quota, logf func(context.Context, auditlog.Store) error) error {
	if o.Count <= 0 {
		return fmt.Errorf("%s: create order: count %d is not positive", s.d.Name, o.Count)
	}
	created := o.Created
	if created.IsZero() {
		created = s.now()
	}
	return s.inTx(ctx, "load order", func(tx *sql.Tx) error {
		if err := s.createOrderTx(ctx, tx, o, store.OrderActive, created); err != nil {
			return err
		}
		for _, q := range quotas {
			q.OrderID = o.ID
			if q.Count < 0 || q.Line == "" {
				return fmt.Errorf("%s: set quota: want a line name and a count ≥ 0", s.d.Name)
			}
			if err := s.setQuotaTx(ctx, tx, q); err != nil {
				return err
			}
		}
		if logf != nil {
			return logf(ctx, s.txLog(tx))
		}
		return nil
	})
}

// RevokeOrderLogged implements store.Store.
func (s *Store) RevokeOrderLogged(ctx context.Context, id string, logf func(context.Context, auditlog.Store) error) error {
	return s.inTx(ctx, "revoke order", func(tx *sql.Tx) error {
		if err := s.revokeTx(ctx, tx, id); err != nil {
			return err
		}
		if logf != nil {
			return logf(ctx, s.txLog(tx))
		}
		return nil
	})
}

// Certify implements store.Store. The order's counter row is locked as
// late as possible (its certified count is what the log entry needs), so
// that concurrent certifications are serialized only for the counter
// update, the log append and the device record. Locks are taken in the
// order counter, reservation, log head, as Spoil and RevokeOrder take them.
func (s *Store) Certify(ctx context.Context, d *store.Device, logf func(context.Context, int64, auditlog.Store) (int64, error)) error {
	created := d.Created
	if created.IsZero() {
		created = s.now()
	}
	return s.inTx(ctx, "certify", func(tx *sql.Tx) error {
		res, err := s.reservation(ctx, tx, d.DeviceID)
		if err != nil {
			return err
		}
		if err := certifiable(res, d); err != nil {
			return err
		}
		var certified int64
		err = tx.QueryRowContext(ctx, s.q(`UPDATE counters SET certified = certified + 1 WHERE order_id = ? RETURNING certified`), d.OrderID).Scan(&certified)
		if err != nil {
			return s.errorf("certify", err)
		}
		// Under the counter lock: a revocation committed before it is
		// seen here; one not yet committed waits for this certification.
		var state string
		if err := tx.QueryRowContext(ctx, s.q(`SELECT state FROM orders WHERE id = ?`), d.OrderID).Scan(&state); err != nil {
			return s.errorf("certify", err)
		}
		if store.OrderState(state) != store.OrderActive {
			return fmt.Errorf("order %s: %w", d.OrderID, store.ErrOrderRevoked)
		}
		r, err := tx.ExecContext(ctx, s.q(`UPDATE reservations SET state = ? WHERE device_id = ? AND order_id = ? AND state = ?`),
			string(store.Committed), d.DeviceID, d.OrderID, string(store.Reserved))
		if err != nil {
			return s.errorf("certify", err)
		}
		if n, err := r.RowsAffected(); err != nil {
			return s.errorf("certify", err)
		} else if n != 1 {
			// Committed or spoiled meanwhile.
			if res, err = s.reservation(ctx, tx, d.DeviceID); err != nil {
				return err
			}
			if err := certifiable(res, d); err != nil {
				return err
			}
			return fmt.Errorf("device %s: %w", d.DeviceID, store.ErrReservationState)
		}
		index, err := logf(ctx, certified, s.txLog(tx))
		if err != nil {
			return err
		}
		station := d.Station
		if station == nil {
			station = []byte{}
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO devices (device_id, order_id, station, certificate, upk, log_index, created, board, sbm_measurement)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`), d.DeviceID, d.OrderID, station, d.Certificate, d.UPK, index, created.UnixNano(), d.Board, d.SBMMeasurement); err != nil {
			if s.d.IsUniqueViolation(err) {
				return fmt.Errorf("device %s: %w", d.DeviceID, store.ErrDeviceCertified)
			}
			return s.errorf("certify", err)
		}
		d.LogIndex = index
		return nil
	})
}

// certifiable checks that res is d's reservation and still reserved.
func certifiable(res store.Reservation, d *store.Device) error {
	switch {
	case res.OrderID != d.OrderID:
		return fmt.Errorf("device %s under order %s: %w", d.DeviceID, d.OrderID, store.ErrNotFound)
	case res.State == store.Committed:
		return fmt.Errorf("device %s: %w", d.DeviceID, store.ErrDeviceCertified)
	case res.State == store.Spoiled:
		return fmt.Errorf("device %s is spoiled: %w", d.DeviceID, store.ErrReservationState)
	}
	return nil
}

// Device implements store.Store.
func (s *Store) Device(ctx context.Context, deviceID string) (*store.Device, error) {
	d := &store.Device{DeviceID: deviceID}
	var created int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT order_id, station, certificate, upk, log_index, created, board, sbm_measurement FROM devices WHERE device_id = ?`), deviceID).
		Scan(&d.OrderID, &d.Station, &d.Certificate, &d.UPK, &d.LogIndex, &created, &d.Board, &d.SBMMeasurement)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("device %s: %w", deviceID, store.ErrNotFound)
	}
	if err != nil {
		return nil, s.errorf("read device", err)
	}
	d.Station = nonEmpty(d.Station)
	d.UPK = nonEmpty(d.UPK)
	d.Created = time.Unix(0, created).UTC()
	return d, nil
}

// SpoilLogged implements store.Store.
func (s *Store) SpoilLogged(ctx context.Context, orderID, deviceID string, logf func(context.Context, store.Reservation, int64, auditlog.Store) error) error {
	return s.inTx(ctx, "spoil", func(tx *sql.Tx) error {
		res, moved, err := s.settleTx(ctx, tx, "spoil", orderID, deviceID, store.Spoiled, store.Committed, "certified", s.countSpoiled)
		if err != nil || !moved || logf == nil {
			return err
		}
		var spoiled int64
		if err := tx.QueryRowContext(ctx, s.q(`SELECT spoiled FROM counters WHERE order_id = ?`), orderID).Scan(&spoiled); err != nil {
			return s.errorf("spoil", err)
		}
		return logf(ctx, res, spoiled, s.txLog(tx))
	})
}

// StaleReservations implements store.Store.
func (s *Store) StaleReservations(ctx context.Context, before time.Time, limit int) ([]store.Reservation, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT device_id, order_id, line, station, created FROM reservations
		WHERE state = ? AND created < ? ORDER BY created, device_id LIMIT ?`), string(store.Reserved), before.UnixNano(), limit)
	if err != nil {
		return nil, s.errorf("stale reservations", err)
	}
	defer rows.Close()
	var out []store.Reservation
	for rows.Next() {
		r := store.Reservation{State: store.Reserved}
		var created int64
		if err := rows.Scan(&r.DeviceID, &r.OrderID, &r.Line, &r.Station, &created); err != nil {
			return nil, s.errorf("stale reservations", err)
		}
		r.Station = nonEmpty(r.Station)
		r.Created = time.Unix(0, created).UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, s.errorf("stale reservations", err)
	}
	return out, nil
}

// PutRelease implements store.Store.
func (s *Store) PutRelease(ctx context.Context, r *store.Release) error {
	created := r.Created
	if created.IsZero() {
		created = s.now()
	}
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO releases (manifest_digest, version, security_counter, package, created) VALUES (?, ?, ?, ?, ?)`),
		r.ManifestDigest[:], r.Version, int64(r.SecurityCounter), r.Package, created.UnixNano())
	if err != nil {
		if s.d.IsUniqueViolation(err) {
			return fmt.Errorf("release %x: %w", r.ManifestDigest[:8], store.ErrReleaseExists)
		}
		return s.errorf("put release", err)
	}
	return nil
}

func scanRelease(r scanner, withPackage bool) (*store.Release, error) {
	rel := &store.Release{}
	var digest []byte
	var counter, created int64
	dest := []any{&digest, &rel.Version, &counter, &created}
	if withPackage {
		dest = append(dest, &rel.Package)
	}
	if err := r.Scan(dest...); err != nil {
		return nil, err
	}
	if len(digest) != len(rel.ManifestDigest) {
		return nil, fmt.Errorf("stored manifest digest has %d bytes", len(digest))
	}
	copy(rel.ManifestDigest[:], digest)
	rel.SecurityCounter = uint32(counter)
	rel.Created = time.Unix(0, created).UTC()
	return rel, nil
}

// Release implements store.Store.
func (s *Store) Release(ctx context.Context, manifestDigest [32]byte) (*store.Release, error) {
	rel, err := scanRelease(s.db.QueryRowContext(ctx, s.q(`SELECT manifest_digest, version, security_counter, created, package FROM releases WHERE manifest_digest = ?`), manifestDigest[:]), true)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("release %x: %w", manifestDigest[:8], store.ErrNotFound)
	}
	if err != nil {
		return nil, s.errorf("read release", err)
	}
	return rel, nil
}

// Releases implements store.Store.
func (s *Store) Releases(ctx context.Context) ([]*store.Release, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT manifest_digest, version, security_counter, created FROM releases ORDER BY created, manifest_digest`)
	if err != nil {
		return nil, s.errorf("list releases", err)
	}
	defer rows.Close()
	var out []*store.Release
	for rows.Next() {
		rel, err := scanRelease(rows, false)
		if err != nil {
			return nil, s.errorf("list releases", err)
		}
		out = append(out, rel)
	}
	if err := rows.Err(); err != nil {
		return nil, s.errorf("list releases", err)
	}
	return out, nil
}
