package trust

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sbm-project/sbm/internal/atomicfile"
)

// ErrNoRelease is returned by LoadRelease when the context holds no escrow
// record for a manifest digest.
var ErrNoRelease = errors.New("no release record for this package in the context")

const releasesDir = "releases"

// SaveRelease stores the escrow UPK of a package, named by its manifest
// digest, so that UPKs for devices can be issued later. The escrow UPK is
// encrypted to the context's escrow key: the file is not secret by itself.
func (c *Context) SaveRelease(manifestDigest [32]byte, escrowUPK []byte) error {
	dir := filepath.Join(c.dir, releasesDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(c.releasePath(manifestDigest), escrowUPK, 0o600)
}

// LoadRelease returns the escrow UPK stored for a manifest digest.
func (c *Context) LoadRelease(manifestDigest [32]byte) ([]byte, error) {
	b, err := os.ReadFile(c.releasePath(manifestDigest))
	if os.IsNotExist(err) {
		return nil, fmt.Errorf("%w (manifest digest %x)", ErrNoRelease, manifestDigest[:8])
	}
	return b, err
}

func (c *Context) releasePath(d [32]byte) string {
	return filepath.Join(c.dir, releasesDir, hex.EncodeToString(d[:])+".upk")
}
