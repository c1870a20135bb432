package sbm

import (
	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/wire"
)

// deviceInfo returns the INFO answer.
func (m *machine) deviceInfo() wire.DeviceInfo {
	info := wire.DeviceInfo{
		ID: m.hw.ID[:], Lifecycle: m.lifecycle(), SBMVersion: m.version,
		SecurityCounter: m.st.counter, LastError: m.st.lastError, LastErrorDetail: m.st.lastErrorText(),
	}
	if m.st.app.present {
		info.AppVersion = m.st.app.versionString()
	}
	if r, ok := m.hw.Flash.Geometry().Region(hal.RegionStaging); ok {
		info.StagingSize = r.Size
	}
	return info
}
