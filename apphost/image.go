package apphost

import (
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/sbm"
)

// ErrMeasurement is returned when the application bytes in flash no longer
// hash to the measurement the SBM verified.
var ErrMeasurement = errors.New("application bytes do not match the verified measurement")

// appBytes returns the application image: the flash bytes themselves when
// f implements hal.Mapper (no copy), else one buffer read through f. mapped
// reports which.
func appBytes(f hal.Flash, app *sbm.AppInfo) (code []byte, mapped bool, err error) {
	if app.Size == 0 || app.Size > app.Region.Size {
		return nil, false, fmt.Errorf("application size %d does not fit the %s slot (%d bytes)", app.Size, app.Region.Kind, app.Region.Size)
	}
	if m, ok := f.(hal.Mapper); ok {
		code, err := m.Map(app.Region.Start, app.Size)
		if err != nil {
			return nil, false, fmt.Errorf("mapping the application: %w", err)
		}
		return code, true, nil
	}
	code = make([]byte, app.Size)
	if err := f.Read(app.Region.Start, code); err != nil {
		return nil, false, fmt.Errorf("reading the application: %w", err)
	}
	return code, false, nil
}

// checkMeasurement re-hashes code and compares it with the measurement the
// SBM verified (the time-of-check/time-of-use guard).
func checkMeasurement(code []byte, app *sbm.AppInfo) error {
	if sha256.Sum256(code) != app.Digest {
		return ErrMeasurement
	}
	return nil
}
