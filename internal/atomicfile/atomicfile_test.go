package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFileReplaces(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := WriteFile(p, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("two"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	fi, _ := os.Stat(p)
	if string(b) != "two" || fi.Mode().Perm() != 0o644 {
		t.Fatalf("got %q mode %v", b, fi.Mode().Perm())
	}
}

func TestCreateRefusesExisting(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := Create(p, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Create(p, []byte("two"), 0o600); err == nil {
		t.Fatal("Create replaced an existing file")
	}
	b, _ := os.ReadFile(p)
	if string(b) != "one" {
		t.Fatalf("existing file changed to %q", b)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("temporary files left behind: %v", ents)
	}
}

func TestWriteFileNoPartialOnError(t *testing.T) {
	if err := WriteFile(filepath.Join(t.TempDir(), "missing", "f"), []byte("x"), 0o600); err == nil {
		t.Fatal("write into a missing directory succeeded")
	}
}

// TestFile checks the streaming writer: nothing at the destination before
// Commit, no temporary file after Abort, and NewExclusive's refusal.
func TestFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	f, err := New(p, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("part"))
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatalf("destination visible before Commit: %v", err)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	f.Abort() // no effect after Commit
	if b, _ := os.ReadFile(p); string(b) != "part" {
		t.Fatalf("got %q", b)
	}
	g, err := New(p, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	g.Write([]byte("discarded"))
	g.Abort()
	if b, _ := os.ReadFile(p); string(b) != "part" {
		t.Fatalf("Abort changed the destination to %q", b)
	}
	x, err := NewExclusive(p, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	x.Write([]byte("other"))
	if err := x.Commit(); err == nil || err.Error() != p+" already exists" {
		t.Fatalf("exclusive Commit over an existing file: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("temporary files left behind: %v", ents)
	}
}
