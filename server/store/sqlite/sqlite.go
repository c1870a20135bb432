// Package sqlite is the embedded store.Store engine: one SQLite database
// file (modernc.org/sqlite, pure Go) in the service's data directory.
//
// Every write transaction starts with BEGIN IMMEDIATE, so it holds the
// database's write lock from its first statement: two reservations on one
// order can never both read the same counter. The database runs in WAL
// mode (readers do not block the writer) with a busy timeout, so
// concurrent writers wait for each other instead of failing.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/sbm-project/sbm/server/store"
	"github.com/sbm-project/sbm/server/store/internal/sqlstore"
)

// FileName is the database file's name in the data directory.
const FileName = "sbm.db"

//go:embed migrations/*.sql
var migrations embed.FS

// Store is the SQLite engine.
type Store struct {
	*sqlstore.Store
}

var dialect = sqlstore.Dialect{
	Name:      "sqlite",
	OneWriter: true,
	IsUniqueViolation: func(err error) bool {
		var e *sqlite.Error
		if !errors.As(err, &e) {
			return false
		}
		c := e.Code()
		return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	},
}

// Open opens (creating it if needed) the database in data directory dir
// and applies the schema migrations.
func Open(ctx context.Context, dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	return OpenFile(ctx, filepath.Join(dir, FileName))
}

// OpenFile opens (creating it if needed) the database file path and
// applies the schema migrations.
func OpenFile(ctx context.Context, path string) (*Store, error) {
	q := url.Values{}
	q.Set("_txlock", "immediate")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	ms, err := store.Migrations(migrations, "migrations")
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	s, err := sqlstore.New(ctx, db, dialect, ms)
	if err != nil {
		db.Close()
		return nil, err
	}
	return &Store{s}, nil
}
