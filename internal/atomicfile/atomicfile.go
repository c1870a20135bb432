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

func write(path string, data []byte, perm os.FileMode, exclusive bool) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err = f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err = f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if exclusive {
		// Link fails if path exists: no window in which an existing file
		// could be replaced.
		if err = os.Link(tmp, path); err != nil {
			if os.IsExist(err) {
				return fmt.Errorf("%s already exists", path)
			}
			return err
		}
		os.Remove(tmp)
		return nil
	}
	return os.Rename(tmp, path)
}
