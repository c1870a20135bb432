//go:build linux && (amd64 || arm64)

package atomicfile

import (
	"os"
	"syscall"
)

// syncFS makes the files of batch, all in dir, durable: syncfs(2) on dir's
// file system (one call for the whole batch), or an fsync per file if the
// kernel refuses it.
func syncFS(dir string, batch []pendingFile) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if _, _, errno := syscall.Syscall(sysSyncfs, d.Fd(), 0, 0); errno == 0 {
		return nil
	}
	return fsyncEach(batch)
}
