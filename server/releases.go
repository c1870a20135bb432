package server

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/sbm-project/sbm/image"
	"github.com/sbm-project/sbm/server/store"
)

// MaxPackageSize bounds a published package (POST /v1/releases).
const MaxPackageSize = image.MaxPayloadSize + 1<<20

// ErrCounterBelow refuses a release whose security counter is below the
// newest published one's (without ?force=1).
var ErrCounterBelow = errors.New("security counter below the newest published release")

// ReleaseStatus describes a published release.
type ReleaseStatus struct {
	// ManifestDigest is SHA-256 of the manifest (hex): the release's ID
	// in orders and UPKs.
	ManifestDigest  string    `json:"manifest_digest"`
	Version         string    `json:"version"`
	SecurityCounter uint32    `json:"security_counter"`
	Published       time.Time `json:"published"`
}

// ReleaseList is the body of GET /v1/releases.
type ReleaseList struct {
	Releases []ReleaseStatus `json:"releases"`
}

func releaseStatus(r *store.Release) ReleaseStatus {
	return ReleaseStatus{ManifestDigest: hex.EncodeToString(r.ManifestDigest[:]), Version: r.Version,
		SecurityCounter: r.SecurityCounter, Published: r.Created}
}

// handlePublish verifies a package against the context (signatures, key
// certificates, product, every UPK record) and stores it.
func (s *Server) handlePublish(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxPackageSize))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("package: %w", err))
		return
	}
	p, err := image.Parse(b)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	v, err := image.Verify(s.ctx, p, nil)
	if err != nil {
		s.log.WarnContext(r.Context(), "release refused", "err", err)
		writeError(w, http.StatusUnprocessableEntity, fmt.Errorf("package refused: %w", err))
		return
	}
	rel := &store.Release{ManifestDigest: sha256.Sum256(p.Manifest), Version: v.Manifest.Version,
		SecurityCounter: v.Manifest.SecurityCounter, Package: b, Created: s.now()}
	if r.URL.Query().Get("force") != "1" {
		list, err := s.store.Releases(r.Context())
		if err != nil {
			s.storeError(w, r, err)
			return
		}
		for _, old := range list {
			if old.SecurityCounter > rel.SecurityCounter && old.ManifestDigest != rel.ManifestDigest {
				writeError(w, http.StatusConflict, fmt.Errorf("%w: %d < %d of %s (force to publish anyway)", ErrCounterBelow,
					rel.SecurityCounter, old.SecurityCounter, old.Version))
				return
			}
		}
	}
	if err := s.store.PutRelease(r.Context(), rel); err != nil {
		if errors.Is(err, store.ErrReleaseExists) {
			writeError(w, http.StatusConflict, err)
			return
		}
		s.storeError(w, r, err)
		return
	}
	s.log.InfoContext(r.Context(), "release published", "version", rel.Version, "manifest_digest", hex.EncodeToString(rel.ManifestDigest[:]))
	writeJSON(w, http.StatusCreated, releaseStatus(rel))
}

func (s *Server) handleReleases(w http.ResponseWriter, r *http.Request) {
	list, err := s.store.Releases(r.Context())
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	out := ReleaseList{Releases: []ReleaseStatus{}}
	for _, rel := range list {
		out.Releases = append(out.Releases, releaseStatus(rel))
	}
	writeJSON(w, http.StatusOK, out)
}
