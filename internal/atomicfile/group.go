package atomicfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// A Group creates many new files in one directory the way Create does —
// each appears whole or not at all, and an existing file is never
// replaced — but makes their contents durable with one sync of the file
// system per group instead of one fsync per file, which dominates the cost
// of small files on a disk. Add writes a file's data under a temporary
// name; Flush syncs everything added so far and then links each file to
// its name. A Group is safe for concurrent use.
type Group struct {
	dir     string
	perm    os.FileMode
	mu      sync.Mutex
	pending []pendingFile
}

type pendingFile struct {
	tmp, name string
	tag       any
}

// A FileError is a file of a Group that was not created.
type FileError struct {
	// Name is the file's name in the group's directory.
	Name string
	// Tag is the value given to Add.
	Tag any
	Err error
}

func (e *FileError) Error() string { return e.Err.Error() }
func (e *FileError) Unwrap() error { return e.Err }

// NewGroup returns a Group creating files with permissions perm in dir.
func NewGroup(dir string, perm os.FileMode) *Group {
	return &Group{dir: dir, perm: perm}
}

// Add writes data to a temporary file that Flush moves to name, a file
// name in the group's directory; tag is returned with a Flush error for
// it.
func (g *Group) Add(name string, data []byte, tag any) error {
	if name == "" || filepath.Base(name) != name {
		return fmt.Errorf("%q is not a file name", name)
	}
	f, err := os.CreateTemp(g.dir, "."+name+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	err = f.Chmod(g.perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	g.mu.Lock()
	g.pending = append(g.pending, pendingFile{tmp: tmp, name: name, tag: tag})
	g.mu.Unlock()
	return nil
}

// Pending returns the number of files added since the last Flush.
func (g *Group) Pending() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.pending)
}

// Flush makes the files added so far durable (one sync of the directory's
// file system where the system has it, else an fsync per file), links each
// to its name — refusing, with an "already exists" error, a name that
// exists — and syncs the directory. It returns the files it could not
// create; the others exist when it returns. Files added during a Flush wait
// for the next one.
func (g *Group) Flush() []*FileError {
	g.mu.Lock()
	batch := g.pending
	g.pending = nil
	g.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	var failed []*FileError
	fail := func(p pendingFile, err error) {
		os.Remove(p.tmp)
		failed = append(failed, &FileError{Name: p.name, Tag: p.tag, Err: err})
	}
	if err := syncFS(g.dir, batch); err != nil {
		for _, p := range batch {
			fail(p, err)
		}
		return failed
	}
	linked := 0
	for _, p := range batch {
		path := filepath.Join(g.dir, p.name)
		if err := os.Link(p.tmp, path); err != nil {
			if errors.Is(err, os.ErrExist) {
				err = fmt.Errorf("%s already exists", path)
			}
			fail(p, err)
			continue
		}
		os.Remove(p.tmp)
		linked++
	}
	if linked > 0 {
		if d, err := os.Open(g.dir); err == nil {
			d.Sync()
			d.Close()
		}
	}
	return failed
}

// fsyncEach syncs the temporary files of batch one by one.
func fsyncEach(batch []pendingFile) error {
	for _, p := range batch {
		f, err := os.OpenFile(p.tmp, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}
