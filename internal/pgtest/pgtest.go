// Package pgtest runs a throwaway PostgreSQL server for tests: initdb and
// pg_ctl from the Debian postgresql package (/usr/lib/postgresql/*/bin or
// PATH), a cluster in a temporary directory listening only on a unix
// socket in that directory, run as the postgres user when the tests run as
// root. One server serves a whole test package (see Main); each test gets
// its own database from NewDatabase.
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrUnavailable is returned by Start when no PostgreSQL installation is
// found.
var ErrUnavailable = errors.New("postgresql not installed (apt-get install postgresql)")

// Server is a running PostgreSQL server.
type Server struct {
	bin    string // directory of initdb, pg_ctl
	dir    string // temporary directory: data/, the socket, the log
	runAs  string // OS user running the server ("" for the current one)
	dbUser string // the cluster's superuser
	nextDB atomic.Int64
}

// binDir finds the directory holding initdb and pg_ctl.
func binDir() (string, error) {
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Slice(matches, func(i, j int) bool { return version(matches[i]) > version(matches[j]) })
	if len(matches) > 0 {
		return filepath.Dir(matches[0]), nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", ErrUnavailable
}

// version returns N of /usr/lib/postgresql/N/bin/initdb.
func version(initdb string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return n
}

// Start creates a cluster in a new temporary directory and starts its
// server. Stop stops it and removes the directory.
func Start(ctx context.Context) (*Server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pgtest")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	s := &Server{bin: bin, dir: dir}
	if os.Geteuid() == 0 {
		// initdb refuses to run as root.
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("pgtest: running as root and no postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("pgtest: %w", err)
		}
		s.runAs, s.dbUser = "postgres", "postgres"
	} else {
		u, err := user.Current()
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("pgtest: %w", err)
		}
		s.dbUser = u.Username
	}
	data := filepath.Join(dir, "data")
	if err := s.run(ctx, "initdb", "-D", data, "-U", s.dbUser, "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	opts := fmt.Sprintf("-c listen_addresses='' -k %s -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100", dir)
	if err := s.run(ctx, "pg_ctl", "start", "-w", "-t", "60", "-D", data, "-l", filepath.Join(dir, "log"), "-o", opts); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "log"))
		os.RemoveAll(dir)
		return nil, fmt.Errorf("%w\n%s", err, log)
	}
	return s, nil
}

// run runs one of the server's programs, as runAs if set.
func (s *Server) run(ctx context.Context, prog string, args ...string) error {
	path := filepath.Join(s.bin, prog)
	var cmd *exec.Cmd
	if s.runAs != "" {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", s.runAs, "--", path}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, path, args...)
	}
	cmd.Dir = s.dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("pgtest: %s: %w\n%s", prog, err, out.Bytes())
	}
	return nil
}

// URL returns the connection string of database name.
func (s *Server) URL(name string) string {
	return fmt.Sprintf("host=%s user=%s dbname=%s sslmode=disable", s.dir, s.dbUser, name)
}

// NewDatabase creates an empty database and returns its connection
// string.
func (s *Server) NewDatabase(ctx context.Context) (string, error) {
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	defer conn.Close(ctx)
	name := fmt.Sprintf("test%d_%d", os.Getpid(), s.nextDB.Add(1))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("pgtest: create database: %w", err)
	}
	return s.URL(name), nil
}

// Stop stops the server at once and removes its directory.
func (s *Server) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := s.run(ctx, "pg_ctl", "stop", "-m", "immediate", "-w", "-D", filepath.Join(s.dir, "data"))
	if rerr := os.RemoveAll(s.dir); err == nil {
		err = rerr
	}
	return err
}

// Main runs a test package's tests with one server for all of them, as
// TestMain(m) { os.Exit(pgtest.Main(m, &srv)) }. Without PostgreSQL
// installed, *srv stays nil and the tests that need it skip (see Database),
// unless the CI environment variable is set: then Main fails.
func Main(m *testing.M, srv **Server) int {
	s, err := Start(context.Background())
	switch {
	case errors.Is(err, ErrUnavailable) && os.Getenv("CI") == "":
		fmt.Fprintln(os.Stderr, "pgtest:", err, "- PostgreSQL tests skip")
	case err != nil:
		fmt.Fprintln(os.Stderr, "pgtest:", err)
		return 1
	default:
		*srv = s
		defer s.Stop()
	}
	return m.Run()
}

// Database returns the connection string of a new database on srv for
// test t, skipping t if srv is nil (no PostgreSQL installed and not in CI).
func Database(t testing.TB, srv *Server) string {
	t.Helper()
	if srv == nil {
		t.Skip("PostgreSQL not installed")
	}
	url, err := srv.NewDatabase(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return url
}
