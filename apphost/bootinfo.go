package apphost

import (
	"encoding/binary"

	"github.com/sbm-project/sbm/sbm"
)

// Boot-info record layout (docs/spec/services.md, "boot_info").
const (
	bootInfoFormat = 1
	// bootInfoFixed is the size of the fixed part of the record.
	bootInfoFixed = 88
	// MaxBootInfoSize is the largest boot-info record.
	MaxBootInfoSize = bootInfoFixed + 3*256
)

// Boot-info flags.
const (
	// FlagUpdatedThisBoot: this boot installed a new application.
	FlagUpdatedThisBoot = 1 << 0
	// FlagServices: the SBM's services are available; without it the
	// record holds only what the runtime knows (no last-update result).
	FlagServices = 1 << 1
)

// appendBootInfo encodes the boot-info record: the services' BootInfo when
// available, else what the SBM handed to the launcher.
func appendBootInfo(dst []byte, app *sbm.AppInfo, id [16]byte, svc sbm.Services) []byte {
	bi := sbm.BootInfo{
		DeviceID: id, SBMVersion: app.SBMVersion, AppVersion: app.Version,
		Lifecycle: app.Lifecycle, SecurityCounter: app.SecurityCounter,
	}
	var flags byte
	if svc != nil {
		bi = svc.BootInfo()
		flags |= FlagServices
		if bi.UpdatedThisBoot {
			flags |= FlagUpdatedThisBoot
		}
	}
	dst = append(dst, bootInfoFormat, flags, bi.Lifecycle, bi.LastUpdate)
	dst = binary.LittleEndian.AppendUint32(dst, bi.SecurityCounter)
	dst = append(dst, bi.DeviceID[:]...)
	dst = append(dst, app.Digest[:]...)
	dst = append(dst, app.ManifestDigest[:]...)
	for _, s := range []string{bi.SBMVersion, bi.AppVersion, bi.LastUpdateDetail} {
		if len(s) > 255 {
			s = s[:255]
		}
		dst = append(dst, byte(len(s)))
		dst = append(dst, s...)
	}
	return dst
}
