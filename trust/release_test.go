package trust

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestReleases(t *testing.T) {
	c, err := Init(filepath.Join(t.TempDir(), "ctx"), nil)
	if err != nil {
		t.Fatal(err)
	}
	md := sha256.Sum256([]byte("manifest"))
	m := sha256.Sum256([]byte("app v1"))
	rel := &Release{ManifestDigest: hex.EncodeToString(md[:]), Version: "1.0.0", SecurityCounter: 1,
		PayloadSHA256: hex.EncodeToString(m[:]), PayloadSize: 6, Created: time.Unix(1000, 0).UTC()}
	if err := c.SaveRelease(rel, []byte("escrow")); err != nil {
		t.Fatal(err)
	}
	if b, err := c.LoadRelease(md); err != nil || string(b) != "escrow" {
		t.Fatalf("LoadRelease: %q %v", b, err)
	}
	if _, err := c.LoadRelease(sha256.Sum256(nil)); !errors.Is(err, ErrNoRelease) {
		t.Fatalf("unknown release: %v", err)
	}
	got, err := c.FindRelease(m)
	if err != nil || got == nil || got.Version != "1.0.0" {
		t.Fatalf("FindRelease = %+v, %v", got, err)
	}
	if got, _ := c.FindRelease(sha256.Sum256([]byte("other"))); got != nil {
		t.Fatal("found an unknown measurement")
	}
	if err := c.SaveRelease(&Release{ManifestDigest: "zz"}, nil); err == nil {
		t.Fatal("bad digest accepted")
	}
}
