package postgres

import (
	"context"
	"os"
	"testing"

	"github.com/sbm-project/sbm/internal/pgtest"
	"github.com/sbm-project/sbm/server/store"
	"github.com/sbm-project/sbm/server/store/storetest"
)

var pg *pgtest.Server

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m, &pg)) }

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t testing.TB) func() (store.Store, error) {
		url := pgtest.Database(t, pg)
		return func() (store.Store, error) { return Open(context.Background(), url) }
	})
}

// TestConcurrentMigrations starts instances on an empty database at once:
// the advisory lock lets one migrate and the others see its schema.
func TestConcurrentMigrations(t *testing.T) {
	url := pgtest.Database(t, pg)
	ctx := context.Background()
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			s, err := Open(ctx, url)
			if err == nil {
				var v int
				v, err = s.SchemaVersion(ctx)
				if err == nil && v != 5 {
					t.Errorf("schema version %d", v)
				}
				s.Close()
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func TestBadURL(t *testing.T) {
	if _, err := Open(context.Background(), "host=/nonexistent/dir dbname=x connect_timeout=1"); err == nil {
		t.Fatal("connected to nothing")
	}
}

// BenchmarkReserveCommit: go test -run XXX -bench ReserveCommit ./server/store/...
func BenchmarkReserveCommit(b *testing.B) {
	storetest.Bench(b, func(t testing.TB) func() (store.Store, error) {
		url := pgtest.Database(t, pg)
		return func() (store.Store, error) { return Open(context.Background(), url) }
	})
}
