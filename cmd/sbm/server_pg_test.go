package main

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/sbm-project/sbm/internal/pgtest"
)

// TestScriptsPostgres runs the scripts in testdata/pgscript with a
// throwaway PostgreSQL server: each script gets a new database in $DBURL.
// Without PostgreSQL installed it skips, except in CI.
func TestScriptsPostgres(t *testing.T) {
	srv, err := pgtest.Start(context.Background())
	if errors.Is(err, pgtest.ErrUnavailable) && os.Getenv("CI") == "" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/pgscript",
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			url, err := srv.NewDatabase(context.Background())
			if err != nil {
				return err
			}
			env.Setenv("DBURL", url)
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"freeport": cmdFreePort,
		},
	})
}
