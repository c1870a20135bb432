package sdk

import (
	"encoding/binary"
	"encoding/hex"
)

// Lifecycle states of a device.
const (
	LifecycleBlank       = 0 // not provisioned
	LifecycleProvisioned = 1 // keys and anchors, debug port open
	LifecycleLocked      = 2 // provisioned and locked (production)
)

// Info is the device and boot information (service boot_info).
type Info struct {
	// DeviceID is the unique device ID.
	DeviceID [16]byte
	// SBMVersion and AppVersion are the versions of the running SBM and
	// application.
	SBMVersion, AppVersion string
	// Lifecycle is the device's lifecycle (Lifecycle* constants).
	Lifecycle uint8
	// SecurityCounter is the device's security (anti-rollback) counter.
	SecurityCounter uint32
	// AppDigest is the application measurement: SHA-256 of the image the
	// SBM verified (the bytes running).
	AppDigest [32]byte
	// ManifestDigest identifies the manifest the application was
	// installed from.
	ManifestDigest [32]byte
	// LastUpdate is the result of the last update request: CodeOK for
	// none or success, else why it was refused; LastUpdateDetail
	// explains it.
	LastUpdate       Code
	LastUpdateDetail string
	// UpdatedThisBoot reports whether this boot installed a new
	// application.
	UpdatedThisBoot bool
	// ServicesAvailable reports whether the SBM offers its services; if
	// not, only the fields the runtime knows are set (no last update).
	ServicesAvailable bool
}

// LifecycleName returns "blank", "provisioned", "locked" or "unknown".
func (b *Info) LifecycleName() string {
	switch b.Lifecycle {
	case LifecycleBlank:
		return "blank"
	case LifecycleProvisioned:
		return "provisioned"
	case LifecycleLocked:
		return "locked"
	}
	return "unknown"
}

// DeviceIDString returns the device ID as 32 lowercase hex digits.
func (b *Info) DeviceIDString() string { return hex.EncodeToString(b.DeviceID[:]) }

const bootInfoFixed = 88

// ParseInfo decodes a boot-info record (docs/spec/services.md).
func ParseInfo(p []byte) (Info, error) {
	var b Info
	bad := &Error{Op: "boot_info", Code: CodeMalformed}
	if len(p) < bootInfoFixed || p[0] != 1 {
		return b, bad
	}
	b.ServicesAvailable = p[1]&2 != 0
	b.UpdatedThisBoot = p[1]&1 != 0
	b.Lifecycle = p[2]
	b.LastUpdate = Code(p[3])
	b.SecurityCounter = binary.LittleEndian.Uint32(p[4:])
	copy(b.DeviceID[:], p[8:24])
	copy(b.AppDigest[:], p[24:56])
	copy(b.ManifestDigest[:], p[56:88])
	rest := p[bootInfoFixed:]
	var strs [3]string
	for i := range strs {
		if len(rest) < 1 {
			return b, bad
		}
		n := 1 + int(rest[0])
		if len(rest) < n {
			return b, bad
		}
		strs[i] = string(rest[1:n])
		rest = rest[n:]
	}
	b.SBMVersion, b.AppVersion, b.LastUpdateDetail = strs[0], strs[1], strs[2]
	return b, nil
}
