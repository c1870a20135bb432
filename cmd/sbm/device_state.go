package main

import (
	"bytes"
	"encoding/hex"
	"encoding/pem"
	"fmt"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/sbm"
	"github.com/sbm-project/sbm/sim"
	"github.com/sbm-project/sbm/vmcu"
	"github.com/sbm-project/sbm/wire"
)

// deviceInfo is what `sbm device info` reports: the hardware's public state
// and the SBM's. Its JSON form is jsonDeviceInfo.
type deviceInfo struct {
	*vmcu.Info
	// Lifecycle is blank, provisioned or locked.
	Lifecycle string
	// SBMMeasurement is SHA-256 of the whole SBM region, in hex.
	SBMMeasurement string
	// SBMVersion is the version of the SBM in the region when it is the
	// one this tool installs, "" otherwise; SBMErased reports a region
	// whose start is erased: no SBM is installed.
	SBMVersion string
	SBMErased  bool
	// Certificate is the device certificate in PEM, once provisioned.
	Certificate     string
	Application     *appInfo
	SecurityCounter uint32
	// LastError says why the last boot or install failed, nil if it did
	// not.
	LastError *outcome
	// LastUpdate is the result of the last update the application
	// requested: installed, or refused with the reason.
	LastUpdate      *outcome
	UpdateRequested bool
	InstallPending  bool
}

// outcome is a result code with its reason, for the text and JSON output
// of device info.
type outcome struct {
	Code   uint8
	Result string
	Detail string
}

// appInfo is the installed application of the signature table.
type appInfo struct {
	Version string
	Size    uint32
	// Measurement is SHA-256 of the application image, in hex.
	Measurement     string
	ManifestDigest  string
	SecurityCounter uint32
	// Signer is the key ID of the image-signing key, "" if not recorded.
	Signer string
}

func lifecycleName(l uint8) string {
	switch l {
	case wire.LifecycleBlank:
		return "blank"
	case wire.LifecycleProvisioned:
		return "provisioned"
	case wire.LifecycleLocked:
		return "locked"
	}
	return fmt.Sprintf("lifecycle %d", l)
}

// readDeviceInfo gathers the public state of the device in dir.
func readDeviceInfo(dir string) (*deviceInfo, error) {
	in, err := vmcu.Inspect(dir)
	if err != nil {
		return nil, err
	}
	out := &deviceInfo{Info: in}
	f, err := vmcu.FlashSnapshot(dir)
	if err != nil {
		return nil, err
	}
	if m, err := sbm.Measurement(f); err == nil {
		out.SBMMeasurement = hex.EncodeToString(m[:])
	}
	if r, ok := f.Geometry().Region(hal.RegionSBM); ok {
		want := sbm.Descriptor()
		b := make([]byte, min(r.Size, 4096))
		if len(b) >= len(want) && f.Read(r.Start, b) == nil {
			if bytes.Equal(b[:len(want)], want) {
				out.SBMVersion = sbm.Version
			}
			out.SBMErased = bytes.Count(b, []byte{f.Geometry().Erased}) == len(b)
		}
	}
	st, err := sim.ReadState(dir)
	if err != nil {
		return nil, err
	}
	out.Lifecycle = lifecycleName(st.Lifecycle)
	out.SecurityCounter = st.SecurityCounter
	out.InstallPending = st.InstallPending
	if st.Certificate != nil {
		out.Certificate = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: st.Certificate}))
	}
	if a := st.App; a != nil {
		out.Application = &appInfo{Version: a.Version, Size: a.Size, Measurement: hex.EncodeToString(a.Digest[:]),
			ManifestDigest: hex.EncodeToString(a.ManifestDigest[:]), SecurityCounter: a.SecurityCounter}
		if a.Signer != ([32]byte{}) {
			out.Application.Signer = hex.EncodeToString(a.Signer[:])
		}
	}
	out.UpdateRequested = st.UpdateRequested
	if st.HasLastUpdate {
		out.LastUpdate = &outcome{Code: uint8(st.LastUpdate), Result: "installed", Detail: st.LastUpdateDetail}
		if st.LastUpdate != wire.CodeOK {
			out.LastUpdate.Result = "refused: " + st.LastUpdate.String()
		}
	}
	if st.LastError != wire.CodeOK {
		out.LastError = &outcome{Code: uint8(st.LastError), Result: st.LastError.String(), Detail: st.LastErrorDetail}
	}
	return out, nil
}
