// Package postgres is the store.Store engine for several service instances
// sharing one PostgreSQL database (github.com/jackc/pgx/v5).
//
// A reservation locks its order's counter row with SELECT … FOR UPDATE,
// and its UPDATE is conditional on used + spoiled < count, so attempts on
// one order from any number of instances are serialized by the database.
// Instances starting together take a transaction-scoped advisory lock
// before migrating.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	"github.com/sbm-project/sbm/server/store"
	"github.com/sbm-project/sbm/server/store/internal/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is the PostgreSQL engine.
type Store struct {
	*sqlstore.Store
}

// migrationLockKey is the advisory lock key ("sbm" in ASCII) held while
// migrating.
const migrationLockKey = 0x73626d

var dialect = sqlstore.Dialect{
	Name:          "postgres",
	Dollar:        true,
	ForUpdate:     "FOR UPDATE",
	MigrationLock: fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", migrationLockKey),
	IsUniqueViolation: func(err error) bool {
		var e *pgconn.PgError
		return errors.As(err, &e) && e.Code == "23505"
	},
}

// Open connects to the database at url (postgres://… or a key=value
// connection string) and applies the schema migrations.
func Open(ctx context.Context, url string) (*Store, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	ms, err := store.Migrations(migrations, "migrations")
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s, err := sqlstore.New(ctx, db, dialect, ms)
	if err != nil {
		db.Close()
		return nil, err
	}
	return &Store{s}, nil
}
