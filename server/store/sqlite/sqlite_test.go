package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/sbm-project/sbm/server/store"
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
		if err != nil || v != 1 {
			t.Fatalf("schema version %d, %v; want 1", v, err)
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
