package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/sbm-project/sbm/server/auditlog"
)

// querier is what the log needs of a *sql.DB or *sql.Tx.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// logStore is the audit log's auditlog.Store over the log_head,
// log_records and log_hashes tables, either on the database (reads) or
// bound to a transaction (appends). In a transaction, Size locks the log's
// head row, so appends from concurrent transactions (and instances) are
// serialized by the database and never conflict.
type logStore struct {
	s    *Store
	q    querier
	inTx bool
}

// Log implements store.Store.
func (s *Store) Log() auditlog.Store { return &logStore{s: s, q: s.db} }

func (s *Store) txLog(tx *sql.Tx) *logStore { return &logStore{s: s, q: tx, inTx: true} }

// Size implements auditlog.Store.
func (l *logStore) Size(ctx context.Context) (int64, error) {
	query := `SELECT size FROM log_head WHERE id = 1`
	if l.inTx {
		query += ` FOR UPDATE`
	}
	var n int64
	if err := l.q.QueryRowContext(ctx, l.s.q(query)).Scan(&n); err != nil {
		return 0, l.s.errorf("log size", err)
	}
	return n, nil
}

// Append implements auditlog.Store.
func (l *logStore) Append(ctx context.Context, index int64, rec auditlog.Record, hashes []tlog.Hash) error {
	if !l.inTx {
		return errors.New("auditlog: append outside a store transaction")
	}
	n, err := l.Size(ctx)
	if err != nil {
		return err
	}
	if index != n {
		return fmt.Errorf("%w: index %d, size %d", auditlog.ErrConflict, index, n)
	}
	if int64(len(hashes)) != tlog.StoredHashCount(index+1)-tlog.StoredHashCount(index) {
		return fmt.Errorf("auditlog: append %d: %d hashes do not fit the tree", index, len(hashes))
	}
	if _, err := l.q.ExecContext(ctx, l.s.q(`INSERT INTO log_records (idx, entry, checkpoint) VALUES (?, ?, ?)`), index, rec.Entry, rec.Checkpoint); err != nil {
		return l.s.errorf("log append", err)
	}
	first := tlog.StoredHashIndex(0, index)
	args := make([]any, 0, 2*len(hashes))
	for i, h := range hashes {
		args = append(args, first+int64(i), h[:])
	}
	query := `INSERT INTO log_hashes (idx, hash) VALUES (?, ?)` + strings.Repeat(`, (?, ?)`, len(hashes)-1)
	if _, err := l.q.ExecContext(ctx, l.s.q(query), args...); err != nil {
		return l.s.errorf("log append", err)
	}
	if _, err := l.q.ExecContext(ctx, l.s.q(`UPDATE log_head SET size = ? WHERE id = 1`), index+1); err != nil {
		return l.s.errorf("log append", err)
	}
	return nil
}

// ReadRecords implements auditlog.Store.
func (l *logStore) ReadRecords(ctx context.Context, start, end int64) ([]auditlog.Record, error) {
	if start < 0 || end < start {
		return nil, fmt.Errorf("auditlog: records [%d, %d): bad range", start, end)
	}
	rows, err := l.q.QueryContext(ctx, l.s.q(`SELECT idx, entry, checkpoint FROM log_records WHERE idx >= ? AND idx < ? ORDER BY idx`), start, end)
	if err != nil {
		return nil, l.s.errorf("log read", err)
	}
	defer rows.Close()
	out := make([]auditlog.Record, 0, end-start)
	for rows.Next() {
		var idx int64
		var r auditlog.Record
		if err := rows.Scan(&idx, &r.Entry, &r.Checkpoint); err != nil {
			return nil, l.s.errorf("log read", err)
		}
		if idx != start+int64(len(out)) {
			return nil, fmt.Errorf("auditlog: record %d missing", start+int64(len(out)))
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, l.s.errorf("log read", err)
	}
	if int64(len(out)) != end-start {
		return nil, fmt.Errorf("auditlog: records [%d, %d) out of range (have %d from %d)", start, end, len(out), start)
	}
	return out, nil
}

// ReadHashes implements auditlog.Store, with one query.
func (l *logStore) ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	if len(indexes) == 0 {
		return out, nil
	}
	args := make([]any, len(indexes))
	for i, x := range indexes {
		args[i] = x
	}
	query := `SELECT idx, hash FROM log_hashes WHERE idx IN (?` + strings.Repeat(`, ?`, len(indexes)-1) + `)`
	rows, err := l.q.QueryContext(ctx, l.s.q(query), args...)
	if err != nil {
		return nil, l.s.errorf("log hashes", err)
	}
	defer rows.Close()
	got := make(map[int64]tlog.Hash, len(indexes))
	for rows.Next() {
		var idx int64
		var b []byte
		if err := rows.Scan(&idx, &b); err != nil {
			return nil, l.s.errorf("log hashes", err)
		}
		if len(b) != len(tlog.Hash{}) {
			return nil, fmt.Errorf("auditlog: stored hash %d has %d bytes", idx, len(b))
		}
		got[idx] = tlog.Hash(b)
	}
	if err := rows.Err(); err != nil {
		return nil, l.s.errorf("log hashes", err)
	}
	for i, x := range indexes {
		h, ok := got[x]
		if !ok {
			return nil, fmt.Errorf("auditlog: stored hash %d not present", x)
		}
		out[i] = h
	}
	return out, nil
}
