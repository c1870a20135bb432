// Package sqlstore implements store.Store over database/sql for the SQL
// engines; each engine supplies its Dialect (placeholders, row locks,
// migration lock, constraint errors) and its migrations.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sbm-project/sbm/server/store"
)

// Dialect is what differs between the SQL engines.
type Dialect struct {
	// Name names the engine in errors ("sqlite", "postgres").
	Name string
	// Dollar is true when placeholders are $1, $2, … instead of ?.
	Dollar bool
	// ForUpdate is appended to a SELECT that must lock the rows it reads
	// until the end of the transaction ("FOR UPDATE"), or empty where a
	// transaction already holds the database's write lock (SQLite's
	// BEGIN IMMEDIATE).
	ForUpdate string
	// MigrationLock, if set, is executed first in the migration
	// transaction to serialize instances migrating at the same time.
	MigrationLock string
	// IsUniqueViolation reports whether err is a unique-constraint
	// violation.
	IsUniqueViolation func(error) bool
	// OneWriter is true when the database has one writer at a time
	// (SQLite): the store's write transactions then queue on a mutex, in
	// order, instead of polling for the database's lock (where a busy
	// writer can starve past its timeout).
	OneWriter bool
}

// maxConns bounds the pool's connections, open and idle: enough for the
// concurrent requests of a busy service (database/sql keeps only 2 idle by
// default, so most requests opened a connection) and within PostgreSQL's
// default max_connections (100) for two instances. Requests beyond it
// wait for a connection. No transaction uses a second connection, so the
// bound cannot deadlock.
const maxConns = 32

// Store is a store.Store over a *sql.DB.
type Store struct {
	db *sql.DB
	d  Dialect
	// Now returns the current time (for created columns).
	now func() time.Time
	// stmts caches prepared statements of the hot read paths (fleet.go).
	stmts sync.Map
	// writer serializes write transactions (Dialect.OneWriter).
	writer sync.Mutex
}

// New returns a Store over db, after applying migrations.
func New(ctx context.Context, db *sql.DB, d Dialect, migrations []store.Migration) (*Store, error) {
	s := &Store{db: db, d: d, now: time.Now}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	if err := s.migrate(ctx, migrations); err != nil {
		return nil, err
	}
	return s, nil
}

// DB returns the underlying database.
func (s *Store) DB() *sql.DB { return s.db }

// q rewrites ? placeholders for the dialect.
func (s *Store) q(query string) string {
	query = strings.ReplaceAll(query, "FOR UPDATE", s.d.ForUpdate)
	if !s.d.Dollar {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (s *Store) errorf(op string, err error) error {
	return fmt.Errorf("%s: %s: %w", s.d.Name, op, err)
}

func (s *Store) migrate(ctx context.Context, ms []store.Migration) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.errorf("migrate", err)
	}
	defer tx.Rollback()
	if s.d.MigrationLock != "" {
		if _, err := tx.ExecContext(ctx, s.d.MigrationLock); err != nil {
			return s.errorf("migration lock", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	version BIGINT PRIMARY KEY,
	name    TEXT NOT NULL,
	applied BIGINT NOT NULL)`); err != nil {
		return s.errorf("create schema_migrations", err)
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return s.errorf("read schema version", err)
	}
	latest := 0
	for _, m := range ms {
		latest = max(latest, m.Version)
		if m.Version <= current {
			continue
		}
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return s.errorf(fmt.Sprintf("migration %d (%s)", m.Version, m.Name), err)
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO schema_migrations (version, name, applied) VALUES (?, ?, ?)`),
			m.Version, m.Name, s.now().UnixNano()); err != nil {
			return s.errorf("record migration", err)
		}
	}
	if current > latest {
		return fmt.Errorf("%s: database schema version %d is newer than this program's (%d)", s.d.Name, current, latest)
	}
	if err := tx.Commit(); err != nil {
		return s.errorf("migrate", err)
	}
	return nil
}

// SchemaVersion returns the highest applied migration.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	if err != nil {
		return 0, s.errorf("schema version", err)
	}
	return v, nil
}

// Ping implements store.Store.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return s.errorf("ping", err)
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// inTx runs f in a transaction, committing if it returns nil.
func (s *Store) inTx(ctx context.Context, op string, f func(*sql.Tx) error) error {
	if s.d.OneWriter {
		s.writer.Lock()
		defer s.writer.Unlock()
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.errorf(op, err)
	}
	defer tx.Rollback()
	if err := f(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return s.errorf(op, err)
	}
	return nil
}

// CreateOrder implements store.Store.
func (s *Store) CreateOrder(ctx context.Context, o *store.Order) error {
	if o.Count <= 0 {
		return fmt.Errorf("%s: create order: count %d is not positive", s.d.Name, o.Count)
	}
	created := o.Created
	if created.IsZero() {
		created = s.now()
	}
	state := o.State
	if state == "" {
		state = store.OrderActive
	}
	return s.inTx(ctx, "create order", func(tx *sql.Tx) error {
		return s.createOrderTx(ctx, tx, o, state, created)
	})
}

func (s *Store) createOrderTx(ctx context.Context, tx *sql.Tx, o *store.Order, state store.OrderState, created time.Time) error {
	_, err := tx.ExecContext(ctx, s.q(`INSERT INTO orders (id, signed, vendor_id, class_id, count, not_after, state, created)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
		o.ID, o.Signed, o.VendorID, o.ClassID, o.Count, o.NotAfter.UnixNano(), string(state), created.UnixNano())
	if err != nil {
		if s.d.IsUniqueViolation(err) {
			return fmt.Errorf("order %s: %w", o.ID, store.ErrOrderExists)
		}
		return s.errorf("create order", err)
	}
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO counters (order_id, count) VALUES (?, ?)`), o.ID, o.Count); err != nil {
		return s.errorf("create counter", err)
	}
	return nil
}

const orderColumns = `id, signed, vendor_id, class_id, count, not_after, state, created`

type scanner interface{ Scan(...any) error }

func scanOrder(r scanner) (*store.Order, error) {
	var o store.Order
	var notAfter, created int64
	var state string
	if err := r.Scan(&o.ID, &o.Signed, &o.VendorID, &o.ClassID, &o.Count, &notAfter, &state, &created); err != nil {
		return nil, err
	}
	o.NotAfter = time.Unix(0, notAfter).UTC()
	o.Created = time.Unix(0, created).UTC()
	o.State = store.OrderState(state)
	return &o, nil
}

// Order implements store.Store.
func (s *Store) Order(ctx context.Context, id string) (*store.Order, error) {
	o, err := scanOrder(s.db.QueryRowContext(ctx, s.q(`SELECT `+orderColumns+` FROM orders WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("order %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, s.errorf("read order", err)
	}
	return o, nil
}

// Orders implements store.Store.
func (s *Store) Orders(ctx context.Context) ([]*store.Order, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+orderColumns+` FROM orders ORDER BY created, id`)
	if err != nil {
		return nil, s.errorf("list orders", err)
	}
	defer rows.Close()
	var out []*store.Order
	for rows.Next() {
		o, err := scanOrder(rows)
		if err != nil {
			return nil, s.errorf("list orders", err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, s.errorf("list orders", err)
	}
	return out, nil
}

// lockCounter reads an order's state and counter, locking the counter row
// until the end of tx.
func (s *Store) lockCounter(ctx context.Context, tx *sql.Tx, orderID string) (store.OrderState, store.Counter, error) {
	c := store.Counter{OrderID: orderID}
	var state string
	err := tx.QueryRowContext(ctx, s.q(`SELECT c.count, c.used, c.spoiled, c.certified, o.state FROM counters c JOIN orders o ON o.id = c.order_id
		WHERE c.order_id = ? FOR UPDATE`), orderID).Scan(&c.Count, &c.Used, &c.Spoiled, &c.Certified, &state)
	if errors.Is(err, sql.ErrNoRows) {
		return "", c, fmt.Errorf("order %s: %w", orderID, store.ErrNotFound)
	}
	if err != nil {
		return "", c, s.errorf("lock counter", err)
	}
	return store.OrderState(state), c, nil
}

// RevokeOrder implements store.Store.
func (s *Store) RevokeOrder(ctx context.Context, id string) error {
	return s.inTx(ctx, "revoke order", func(tx *sql.Tx) error { return s.revokeTx(ctx, tx, id) })
}

func (s *Store) revokeTx(ctx context.Context, tx *sql.Tx, id string) error {
	state, _, err := s.lockCounter(ctx, tx, id)
	if err != nil {
		return err
	}
	if state == store.OrderRevoked {
		return fmt.Errorf("order %s: %w", id, store.ErrOrderRevoked)
	}
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE orders SET state = ? WHERE id = ?`), string(store.OrderRevoked), id); err != nil {
		return s.errorf("revoke order", err)
	}
	return nil
}

// SetQuota implements store.Store.
func (s *Store) SetQuota(ctx context.Context, q store.Quota) error {
	if q.Count < 0 || q.Line == "" {
		return fmt.Errorf("%s: set quota: want a line name and a count ≥ 0", s.d.Name)
	}
	return s.inTx(ctx, "set quota", func(tx *sql.Tx) error { return s.setQuotaTx(ctx, tx, q) })
}

func (s *Store) setQuotaTx(ctx context.Context, tx *sql.Tx, q store.Quota) error {
	if _, _, err := s.lockCounter(ctx, tx, q.OrderID); err != nil {
		return err
	}
	r, err := tx.ExecContext(ctx, s.q(`UPDATE order_quota SET count = ? WHERE order_id = ? AND line = ?`), q.Count, q.OrderID, q.Line)
	if err != nil {
		return s.errorf(fmt.Sprintf("set quota of line %s (below what it used?)", q.Line), err)
	}
	if n, err := r.RowsAffected(); err != nil {
		return s.errorf("set quota", err)
	} else if n == 1 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO order_quota (order_id, line, count) VALUES (?, ?, ?)`), q.OrderID, q.Line, q.Count); err != nil {
		return s.errorf("set quota", err)
	}
	return nil
}

// Quotas implements store.Store.
func (s *Store) Quotas(ctx context.Context, orderID string) ([]store.Quota, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT line, count, used, spoiled FROM order_quota WHERE order_id = ? ORDER BY line`), orderID)
	if err != nil {
		return nil, s.errorf("list quotas", err)
	}
	defer rows.Close()
	var out []store.Quota
	for rows.Next() {
		q := store.Quota{OrderID: orderID}
		if err := rows.Scan(&q.Line, &q.Count, &q.Used, &q.Spoiled); err != nil {
			return nil, s.errorf("list quotas", err)
		}
		out = append(out, q)
	}
	if err := rows.Err(); err != nil {
		return nil, s.errorf("list quotas", err)
	}
	return out, nil
}

// PutStation implements store.Store.
func (s *Store) PutStation(ctx context.Context, st *store.Station) error {
	created := st.Created
	if created.IsZero() {
		created = s.now()
	}
	return s.inTx(ctx, "put station", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM stations WHERE name = ?`), st.Name); err != nil {
			return s.errorf("put station", err)
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO stations (name, cert_digest, created) VALUES (?, ?, ?)`),
			st.Name, st.CertDigest[:], created.UnixNano()); err != nil {
			return s.errorf("put station", err)
		}
		return nil
	})
}

// Station implements store.Store.
func (s *Store) Station(ctx context.Context, name string) (*store.Station, error) {
	st := &store.Station{Name: name}
	var digest []byte
	var created int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT cert_digest, created FROM stations WHERE name = ?`), name).Scan(&digest, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("station %s: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return nil, s.errorf("read station", err)
	}
	if len(digest) != len(st.CertDigest) {
		return nil, fmt.Errorf("%s: station %s: stored digest has %d bytes", s.d.Name, name, len(digest))
	}
	copy(st.CertDigest[:], digest)
	st.Created = time.Unix(0, created).UTC()
	return st, nil
}

// Counter implements store.Store.
func (s *Store) Counter(ctx context.Context, orderID string) (store.Counter, error) {
	c := store.Counter{OrderID: orderID}
	err := s.db.QueryRowContext(ctx, s.q(`SELECT count, used, spoiled, certified FROM counters WHERE order_id = ?`), orderID).
		Scan(&c.Count, &c.Used, &c.Spoiled, &c.Certified)
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("order %s: %w", orderID, store.ErrNotFound)
	}
	if err != nil {
		return c, s.errorf("read counter", err)
	}
	return c, nil
}

func (s *Store) reservation(ctx context.Context, r interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, deviceID string) (store.Reservation, error) {
	res := store.Reservation{DeviceID: deviceID}
	var state string
	var created int64
	err := r.QueryRowContext(ctx, s.q(`SELECT order_id, line, station, state, created FROM reservations WHERE device_id = ?`), deviceID).
		Scan(&res.OrderID, &res.Line, &res.Station, &state, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return res, fmt.Errorf("device %s: %w", deviceID, store.ErrNotFound)
	}
	if err != nil {
		return res, s.errorf("read reservation", err)
	}
	res.State = store.ReservationState(state)
	res.Created = time.Unix(0, created).UTC()
	res.Station = nonEmpty(res.Station)
	return res, nil
}

// Reservation implements store.Store.
func (s *Store) Reservation(ctx context.Context, deviceID string) (store.Reservation, error) {
	return s.reservation(ctx, s.db, deviceID)
}

// Reserve implements store.Store. The counter row is locked first (SQLite:
// the transaction holds the write lock from BEGIN IMMEDIATE; PostgreSQL:
// SELECT … FOR UPDATE), so attempts on one order are serialized; the
// UPDATE is conditional on used + spoiled < count as well.
func (s *Store) Reserve(ctx context.Context, orderID, deviceID string) (store.Reservation, error) {
	return s.reserve(ctx, orderID, "", deviceID, nil)
}

// ReserveLine implements store.Store: Reserve, with the line's quota row
// locked and checked after the order's counter.
func (s *Store) ReserveLine(ctx context.Context, orderID, line, deviceID string) (store.Reservation, error) {
	if line == "" {
		return store.Reservation{}, fmt.Errorf("%s: reserve: empty line name", s.d.Name)
	}
	return s.reserve(ctx, orderID, line, deviceID, nil)
}

// ReserveFor implements store.Store.
func (s *Store) ReserveFor(ctx context.Context, r store.ReserveRequest) (store.Reservation, error) {
	return s.reserve(ctx, r.OrderID, r.Line, r.DeviceID, r.Station)
}

func (s *Store) reserve(ctx context.Context, orderID, line, deviceID string, station []byte) (store.Reservation, error) {
	var res store.Reservation
	err := s.inTx(ctx, "reserve", func(tx *sql.Tx) error {
		state, c, err := s.lockCounter(ctx, tx, orderID)
		if err != nil {
			return err
		}
		prev, err := s.reservation(ctx, tx, deviceID)
		switch {
		case err == nil && prev.OrderID == orderID:
			prev.Existing = true
			res = prev
			return nil
		case err == nil:
			return fmt.Errorf("device %s: %w", deviceID, store.ErrDeviceTaken)
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		if state != store.OrderActive {
			return fmt.Errorf("order %s: %w", orderID, store.ErrOrderRevoked)
		}
		if c.Used+c.Spoiled >= c.Count {
			return fmt.Errorf("order %s: %w", orderID, store.ErrOrderExhausted)
		}
		if line != "" {
			var count, used, spoiled int64
			err := tx.QueryRowContext(ctx, s.q(`SELECT count, used, spoiled FROM order_quota WHERE order_id = ? AND line = ? FOR UPDATE`), orderID, line).
				Scan(&count, &used, &spoiled)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("order %s line %s: %w", orderID, line, store.ErrNotFound)
			}
			if err != nil {
				return s.errorf("lock line quota", err)
			}
			if used+spoiled >= count {
				return fmt.Errorf("order %s line %s: %w", orderID, line, store.ErrLineExhausted)
			}
			if _, err := tx.ExecContext(ctx, s.q(`UPDATE order_quota SET used = used + 1 WHERE order_id = ? AND line = ?`), orderID, line); err != nil {
				return s.errorf("reserve", err)
			}
		}
		r, err := tx.ExecContext(ctx, s.q(`UPDATE counters SET used = used + 1 WHERE order_id = ? AND used + spoiled < count`), orderID)
		if err != nil {
			return s.errorf("reserve", err)
		}
		if n, err := r.RowsAffected(); err != nil {
			return s.errorf("reserve", err)
		} else if n != 1 {
			return fmt.Errorf("order %s: %w", orderID, store.ErrOrderExhausted)
		}
		now := s.now()
		if station == nil {
			station = []byte{}
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO reservations (device_id, order_id, line, station, state, created) VALUES (?, ?, ?, ?, ?, ?)`),
			deviceID, orderID, line, station, string(store.Reserved), now.UnixNano()); err != nil {
			if s.d.IsUniqueViolation(err) {
				// Reserved at the same moment under another order.
				return fmt.Errorf("device %s: %w", deviceID, store.ErrDeviceTaken)
			}
			return s.errorf("reserve", err)
		}
		res = store.Reservation{OrderID: orderID, DeviceID: deviceID, Line: line, Station: nonEmpty(station), State: store.Reserved, Created: time.Unix(0, now.UnixNano()).UTC()}
		return nil
	})
	return res, err
}

// Commit implements store.Store.
func (s *Store) Commit(ctx context.Context, orderID, deviceID string) error {
	return s.settle(ctx, "commit", orderID, deviceID, store.Committed, store.Spoiled, "spoiled", s.countCertified)
}

// countCertified counts a commit in the order's certified count.
func (s *Store) countCertified(tx *sql.Tx, res store.Reservation) error {
	_, err := tx.Exec(s.q(`UPDATE counters SET certified = certified + 1 WHERE order_id = ?`), res.OrderID)
	return err
}

// Spoil implements store.Store.
func (s *Store) Spoil(ctx context.Context, orderID, deviceID string) error {
	return s.settle(ctx, "spoil", orderID, deviceID, store.Spoiled, store.Committed, "certified", s.countSpoiled)
}

// countSpoiled moves a unit from used to spoiled, on its line too.
func (s *Store) countSpoiled(tx *sql.Tx, res store.Reservation) error {
	if _, err := tx.Exec(s.q(`UPDATE counters SET used = used - 1, spoiled = spoiled + 1 WHERE order_id = ?`), res.OrderID); err != nil {
		return err
	}
	if res.Line != "" {
		if _, err := tx.Exec(s.q(`UPDATE order_quota SET used = used - 1, spoiled = spoiled + 1 WHERE order_id = ? AND line = ?`), res.OrderID, res.Line); err != nil {
			return err
		}
	}
	return nil
}

// settle moves the reservation of deviceID under orderID to state to, in
// one transaction holding the order's counter lock: a no-op if it is there
// already, ErrReservationState if it is in state other (described by
// otherName); then also runs counts (nil: none) in the transaction.
func (s *Store) settle(ctx context.Context, op, orderID, deviceID string, to, other store.ReservationState, otherName string,
	counts func(tx *sql.Tx, res store.Reservation) error) error {
	return s.inTx(ctx, op, func(tx *sql.Tx) error {
		_, _, err := s.settleTx(ctx, tx, op, orderID, deviceID, to, other, otherName, counts)
		return err
	})
}

// settleTx is settle within tx. It returns the reservation (as it was) and
// whether it moved.
func (s *Store) settleTx(ctx context.Context, tx *sql.Tx, op, orderID, deviceID string, to, other store.ReservationState, otherName string,
	counts func(tx *sql.Tx, res store.Reservation) error) (store.Reservation, bool, error) {
	if _, _, err := s.lockCounter(ctx, tx, orderID); err != nil {
		return store.Reservation{}, false, err
	}
	res, err := s.reservation(ctx, tx, deviceID)
	if err != nil {
		return res, false, err
	}
	if res.OrderID != orderID {
		return res, false, fmt.Errorf("device %s under order %s: %w", deviceID, orderID, store.ErrNotFound)
	}
	switch res.State {
	case to:
		return res, false, nil
	case other:
		return res, false, fmt.Errorf("device %s is %s: %w", deviceID, otherName, store.ErrReservationState)
	}
	// Conditional on the state read: a concurrent Certify (which locks the
	// reservation row after the counter) cannot be overwritten.
	r, err := tx.ExecContext(ctx, s.q(`UPDATE reservations SET state = ? WHERE device_id = ? AND state = ?`), string(to), deviceID, string(res.State))
	if err != nil {
		return res, false, s.errorf(op, err)
	}
	if n, err := r.RowsAffected(); err != nil {
		return res, false, s.errorf(op, err)
	} else if n != 1 {
		return res, false, fmt.Errorf("device %s changed state: %w", deviceID, store.ErrReservationState)
	}
	if counts != nil {
		if err := counts(tx, res); err != nil {
			return res, false, s.errorf(op, err)
		}
	}
	return res, true, nil
}

var _ store.Store = (*Store)(nil)
