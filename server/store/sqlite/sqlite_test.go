package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sbm-project/sbm/server/store"
	"github.com/sbm-project/sbm/server/store/internal/sqlstore"
	"github.com/sbm-project/sbm/server/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t testing.TB) func() (store.Store, error) {
		dir := t.TempDir()
		return func() (store.Store, error) { return Open(context.Background(), dir) }
	})
}

func TestSchemaVersion(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "x.db")
	for range 2 {
		s, err := OpenFile(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		v, err := s.SchemaVersion(ctx)
		s.Close()
		if err != nil || v != 5 {
			t.Fatalf("schema version %d, %v; want 5", v, err)
		}
	}
}

// BenchmarkReserveCommit: go test -run XXX -bench ReserveCommit ./server/store/...
func BenchmarkReserveCommit(b *testing.B) {
	storetest.Bench(b, func(t testing.TB) func() (store.Store, error) {
		dir := t.TempDir()
		return func() (store.Store, error) { return Open(context.Background(), dir) }
	})
}

// TestUpgrade applies the first migration only, stores data, then opens
// the database with every migration: the data is kept and the new columns
// have their defaults.
func TestUpgrade(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "x.db")
	ms, err := store.Migrations(migrations, "migrations")
	if err != nil || len(ms) < 2 {
		t.Fatalf("migrations %v, %v", ms, err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	old, err := sqlstore.New(ctx, db, dialect, ms[:1])
	if err != nil {
		t.Fatal(err)
	}
	if err := old.CreateOrder(ctx, &store.Order{ID: "o1", Signed: []byte{1}, VendorID: "v", ClassID: "c", Count: 2, NotAfter: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO order_quota (order_id, line, count) VALUES ('o1', 'a', 2)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO reservations (device_id, order_id, state, created) VALUES ('d1', 'o1', 'reserved', 0)`); err != nil {
		t.Fatal(err)
	}
	old.Close()

	s, err := OpenFile(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, _ := s.SchemaVersion(ctx); v != len(ms) {
		t.Fatalf("schema version %d after the upgrade, want %d", v, len(ms))
	}
	qs, err := s.Quotas(ctx, "o1")
	if err != nil || len(qs) != 1 || qs[0].Used != 0 || qs[0].Count != 2 {
		t.Fatalf("quotas after the upgrade: %v, %v", qs, err)
	}
	if r, err := s.Reservation(ctx, "d1"); err != nil || r.Line != "" || r.State != store.Reserved {
		t.Fatalf("reservation after the upgrade: %+v, %v", r, err)
	}
	// A database newer than the program is refused.
	if _, err := s.DB().ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied) VALUES (99, 'future', 0)`); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenFile(ctx, path); err == nil || !strings.Contains(err.Error(), "newer than this program") {
		t.Fatalf("newer schema: %v", err)
	}
}
