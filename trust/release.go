package trust

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/sbm-project/sbm/internal/atomicfile"
)

// ErrNoRelease is returned by LoadRelease when the context holds no escrow
// record for a manifest digest.
var ErrNoRelease = errors.New("no release record for this package in the context")

const releasesDir = "releases"

// Release is the public record of a package made with the context: the
// releases are what attestation and production tooling compare device
// measurements against.
type Release struct {
	// ManifestDigest is SHA-256 of the manifest COSE_Sign1 (hex).
	ManifestDigest string `json:"manifest_digest"`
	Version        string `json:"version"`
	// SecurityCounter is the manifest's anti-rollback counter.
	SecurityCounter uint32 `json:"security_counter"`
	// PayloadSHA256 is the application measurement (hex).
	PayloadSHA256 string    `json:"payload_sha256"`
	PayloadSize   uint32    `json:"payload_size"`
	Created       time.Time `json:"created"`
}

// SaveRelease stores a package's release record and its escrow UPK, named
// by the manifest digest, so that UPKs for devices can be issued later and
// device measurements recognised. The escrow UPK is encrypted to the
// context's escrow key: the file is not secret by itself.
func (c *Context) SaveRelease(rel *Release, escrowUPK []byte) error {
	d, err := hex.DecodeString(rel.ManifestDigest)
	if err != nil || len(d) != 32 {
		return fmt.Errorf("release record: invalid manifest digest %q", rel.ManifestDigest)
	}
	if err := os.MkdirAll(filepath.Join(c.dir, releasesDir), 0o700); err != nil {
		return err
	}
	js, err := json.MarshalIndent(rel, "", "  ")
	if err != nil {
		return err
	}
	base := c.releaseBase([32]byte(d))
	if err := atomicfile.WriteFile(base+".upk", escrowUPK, 0o600); err != nil {
		return err
	}
	return atomicfile.WriteFile(base+".json", append(js, '\n'), 0o644)
}

// LoadRelease returns the escrow UPK stored for a manifest digest.
func (c *Context) LoadRelease(manifestDigest [32]byte) ([]byte, error) {
	b, err := os.ReadFile(c.releaseBase(manifestDigest) + ".upk")
	if os.IsNotExist(err) {
		return nil, fmt.Errorf("%w (manifest digest %x)", ErrNoRelease, manifestDigest[:8])
	}
	return b, err
}

// Releases lists the context's release records, oldest first.
func (c *Context) Releases() ([]*Release, error) {
	ents, err := os.ReadDir(filepath.Join(c.dir, releasesDir))
	if os.IsNotExist(err) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var out []*Release
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(c.dir, releasesDir, e.Name()))
		if err != nil {
			return nil, err
		}
		var r Release
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("release record %s: %w", e.Name(), err)
		}
		out = append(out, &r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}

// FindRelease returns the release whose application measurement (payload
// SHA-256) is measurement, or nil.
func (c *Context) FindRelease(measurement [32]byte) (*Release, error) {
	rels, err := c.Releases()
	if err != nil {
		return nil, err
	}
	want := hex.EncodeToString(measurement[:])
	for _, r := range rels {
		if r.PayloadSHA256 == want {
			return r, nil
		}
	}
	return nil, nil
}

func (c *Context) releaseBase(d [32]byte) string {
	return filepath.Join(c.dir, releasesDir, hex.EncodeToString(d[:]))
}
