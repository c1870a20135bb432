// Package atomicfile writes files so that a reader never sees a partial
// one: data goes to a temporary file in the same directory, is synced, and
// is renamed over the destination.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// WriteFile atomically replaces path with data, with permissions perm.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return write(path, data, perm, false)
}

// Create atomically creates path with data, with permissions perm; it fails
// if path already exists and never replaces an existing file.
func Create(path string, data []byte, perm os.FileMode) error {
	return write(path, data, perm, true)
}

func write(path string, data []byte, perm os.FileMode, exclusive bool) error {
	f, err := newFile(path, perm, exclusive)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := f.Write(data); err != nil {
		return err
	}
	return f.Commit()
}

// A File is an output file written in pieces (for output too large to hold
// in memory): writes go to a temporary file in the destination's
// directory, and nothing appears at the destination until Commit. Abort
// (or a failed Commit) removes the temporary file. The embedded *os.File
// supports Write, WriteAt and Seek.
type File struct {
	*os.File
	path      string
	exclusive bool
	done      bool
}

// New starts an atomic replacement of path with permissions perm.
func New(path string, perm os.FileMode) (*File, error) { return newFile(path, perm, false) }

// NewExclusive starts an atomic creation of path with permissions perm:
// Commit fails if path exists by then, and never replaces it.
func NewExclusive(path string, perm os.FileMode) (*File, error) {
	return newFile(path, perm, true)
}

func newFile(path string, perm os.FileMode, exclusive bool) (*File, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return &File{File: f, path: path, exclusive: exclusive}, nil
}

// Commit syncs the temporary file and moves it to the destination. After
// Commit, whatever its result, the File is closed and Abort does nothing.
func (f *File) Commit() (err error) {
	if f.done {
		return fmt.Errorf("%s: already committed or aborted", f.path)
	}
	f.done = true
	tmp := f.Name()
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if err = f.Sync(); err != nil {
		f.File.Close()
		return err
	}
	if err = f.File.Close(); err != nil {
		return err
	}
	if f.exclusive {
		// Link fails if path exists: no window in which an existing file
		// could be replaced.
		if err = os.Link(tmp, f.path); err != nil {
			if os.IsExist(err) {
				return fmt.Errorf("%s already exists", f.path)
			}
			return err
		}
		os.Remove(tmp)
		return nil
	}
	return os.Rename(tmp, f.path)
}

// Abort discards the temporary file, leaving the destination as it was.
// It does nothing after Commit or a previous Abort, so it can be deferred.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	f.File.Close()
	os.Remove(f.Name())
}
