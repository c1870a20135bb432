package vmcu

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// deviceState is the part of a device's persistent state that changes
// rarely: it is written atomically (temporary file and rename).
type deviceState struct {
	// BadSectors lists the start addresses of sectors that fail every
	// program and erase.
	BadSectors []uint32 `json:"bad_sectors,omitempty"`
	// PowerCut is a power cut armed for the next run.
	PowerCut *PowerCut `json:"power_cut,omitempty"`
}

func readState(dir string, b *Board) (deviceState, error) {
	var st deviceState
	data, err := os.ReadFile(filepath.Join(dir, fileState))
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return st, fmt.Errorf("%s: %w", fileState, err)
	}
	for _, a := range st.BadSectors {
		if i, ok := b.Geometry.SectorAt(a); !ok || b.Geometry.Sectors[i].Start != a {
			return st, fmt.Errorf("%s: bad sector %#x is not a sector start", fileState, a)
		}
	}
	if st.PowerCut != nil && st.PowerCut.At == 0 {
		return st, fmt.Errorf("%s: power cut at operation 0", fileState)
	}
	return st, nil
}

// writeStateLocked persists d.state atomically. d.mu must be held.
func (d *Device) writeStateLocked() error {
	if d.dir == "" {
		return nil
	}
	data, err := json.MarshalIndent(d.state, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(d.dir, fileState), append(data, '\n'))
}

// writeFileAtomic writes data to a temporary file next to name and renames
// it over name, so readers see either the old or the new content.
func writeFileAtomic(name string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp-")
	if err != nil {
		return fmt.Errorf("writing %s: %w", filepath.Base(name), err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", filepath.Base(name), err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", filepath.Base(name), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", filepath.Base(name), err)
	}
	if err := os.Rename(f.Name(), name); err != nil {
		return fmt.Errorf("writing %s: %w", filepath.Base(name), err)
	}
	return nil
}

func (d *Device) isBadLocked(sectorStart uint32) bool {
	return slices.Contains(d.state.BadSectors, sectorStart)
}
