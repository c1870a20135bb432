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
	st, err := l.s.stmt(ctx, l.q, query)
	if err != nil {
		return 0, err
	}
	var n int64
	if err := st.QueryRowContext(ctx).Scan(&n); err != nil {
		return 0, l.s.errorf("log size", err)
	}
	return n, nil
}

// maxParams bounds the parameters of one statement: SQLite's default
// limit is 32766 (SQLITE_MAX_VARIABLE_NUMBER since 3.32), PostgreSQL's
// 65535. A batch's INSERTs are split into statements within it.
const maxParams = 32766

// Append implements auditlog.Store.
func (l *logStore) Append(ctx context.Context, index int64, rec auditlog.Record, hashes []tlog.Hash) error {
	return l.AppendRecords(ctx, index, []auditlog.Record{rec}, hashes)
}

// AppendRecords implements auditlog.BatchStore: one locked read of the
// size, one INSERT of the records, one of the hashes (each split within
// maxParams) and one UPDATE of the head.
func (l *logStore) AppendRecords(ctx context.Context, index int64, recs []auditlog.Record, hashes []tlog.Hash) error {
	if !l.inTx {
		return errors.New("auditlog: append outside a store transaction")
	}
	end := index + int64(len(recs))
	if len(recs) == 0 {
		return fmt.Errorf("auditlog: append %d: no records", index)
	}
	if want := tlog.StoredHashCount(end) - tlog.StoredHashCount(index); int64(len(hashes)) != want {
		return fmt.Errorf("auditlog: append [%d, %d): %d hashes do not fit the tree (want %d)", index, end, len(hashes), want)
	}
	n, err := l.Size(ctx)
	if err != nil {
		return err
	}
	if index != n {
		return fmt.Errorf("%w: index %d, size %d", auditlog.ErrConflict, index, n)
	}
	args := make([]any, 0, 3*len(recs))
	for i, r := range recs {
		// An absent checkpoint is a zero-length value: the column is NOT
		// NULL, and the drivers bind a nil []byte as NULL.
		cp := r.Checkpoint
		if cp == nil {
			cp = []byte{}
		}
		args = append(args, index+int64(i), r.Entry, cp)
	}
	if err := l.insertRows(ctx, `INSERT INTO log_records (idx, entry, checkpoint) VALUES `, `(?, ?, ?)`, 3, args); err != nil {
		return err
	}
	first := tlog.StoredHashIndex(0, index)
	args = make([]any, 0, 2*len(hashes))
	for i, h := range hashes {
		args = append(args, first+int64(i), h[:])
	}
	if err := l.insertRows(ctx, `INSERT INTO log_hashes (idx, hash) VALUES `, `(?, ?)`, 2, args); err != nil {
		return err
	}
	st, err := l.s.stmt(ctx, l.q, `UPDATE log_head SET size = ? WHERE id = 1`)
	if err != nil {
		return err
	}
	if _, err := st.ExecContext(ctx, end); err != nil {
		return l.s.errorf("log append", err)
	}
	return nil
}

// maxPreparedRows bounds the INSERTs that are prepared once and kept: a
// small batch's, of at most this many forms per table and connection;
// larger ones are parsed each time (their parsing is shared by more rows).
const maxPreparedRows = 32

// insertRows executes prefix followed by one row per width arguments of
// args, in statements of at most maxParams parameters.
func (l *logStore) insertRows(ctx context.Context, prefix, row string, width int, args []any) error {
	per := maxParams / width * width
	for len(args) > 0 {
		chunk := args[:min(per, len(args))]
		args = args[len(chunk):]
		query := prefix + row + strings.Repeat(", "+row, len(chunk)/width-1)
		var err error
		if rows := len(chunk) / width; rows <= maxPreparedRows {
			var st *sql.Stmt
			if st, err = l.s.stmt(ctx, l.q, query); err != nil {
				return err
			}
			_, err = st.ExecContext(ctx, chunk...)
		} else {
			_, err = l.q.ExecContext(ctx, l.s.q(query), chunk...)
		}
		if err != nil {
			return l.s.errorf("log append", err)
		}
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
	args = padArgs(args) // a few forms, each prepared once
	st, err := l.s.stmt(ctx, l.q, `SELECT idx, hash FROM log_hashes WHERE idx IN (?`+strings.Repeat(`, ?`, len(args)-1)+`)`)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, args...)
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
