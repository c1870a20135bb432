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

// TestGroup checks that a Group's files appear only at Flush, whole, that
// an existing name is refused and kept, and that no temporary file is
// left behind.
func TestGroup(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "taken"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	g := NewGroup(dir, 0o640)
	for i, name := range []string{"a", "b", "taken"} {
		if err := g.Add(name, []byte("data "+name), i); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Add("../escape", nil, nil); err == nil {
		t.Error("Add accepted a path outside the directory")
	}
	if _, err := os.Stat(filepath.Join(dir, "a")); !os.IsNotExist(err) {
		t.Fatalf("file visible before Flush: %v", err)
	}
	if g.Pending() != 3 {
		t.Fatalf("Pending = %d, want 3", g.Pending())
	}
	failed := g.Flush()
	if len(failed) != 1 || failed[0].Name != "taken" || failed[0].Tag != 2 || failed[0].Error() != filepath.Join(dir, "taken")+" already exists" {
		t.Fatalf("Flush failures = %v", failed)
	}
	for _, name := range []string{"a", "b"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		fi, _ := os.Stat(filepath.Join(dir, name))
		if err != nil || string(b) != "data "+name || fi.Mode().Perm() != 0o640 {
			t.Errorf("%s: %q, %v", name, b, err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "taken")); string(b) != "old" {
		t.Errorf("existing file changed to %q", b)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 3 {
		t.Errorf("directory holds %d entries, want 3 (temporary files left?)", len(ents))
	}
	if g.Flush() != nil {
		t.Error("empty Flush reported failures")
	}
}
