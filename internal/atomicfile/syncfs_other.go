//go:build !linux || !(amd64 || arm64)

package atomicfile

// syncFS makes the files of batch durable with an fsync per file.
func syncFS(dir string, batch []pendingFile) error { return fsyncEach(batch) }
