package main

import (
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"

	"github.com/sbm-project/sbm/sbm"
	"github.com/sbm-project/sbm/sim"
	"github.com/sbm-project/sbm/vmcu"
	"github.com/sbm-project/sbm/wire"
)

// deviceInfo is what `sbm device info` reports: the hardware's public state
// and the SBM's.
type deviceInfo struct {
	*vmcu.Info
	// Lifecycle is blank, provisioned or locked.
	Lifecycle string `json:"lifecycle"`
	// SBMMeasurement is SHA-256 of the SBM region.
	SBMMeasurement string `json:"sbm_measurement"`
	// Certificate is the device certificate in PEM, once provisioned.
	Certificate     string     `json:"certificate,omitempty"`
	Application     *appInfo   `json:"application,omitempty"`
	SecurityCounter uint32     `json:"security_counter"`
	LastError       *lastError `json:"last_error,omitempty"`
	// LastUpdate is the result of the last update the application
	// requested: installed, or refused with the reason.
	LastUpdate      *lastError `json:"last_update,omitempty"`
	UpdateRequested bool       `json:"update_requested,omitempty"`
	InstallPending  bool       `json:"install_pending,omitempty"`
}

type appInfo struct {
	Version         string `json:"version"`
	Size            uint32 `json:"size"`
	SHA256          string `json:"sha256"`
	ManifestDigest  string `json:"manifest_digest"`
	SecurityCounter uint32 `json:"security_counter"`
}

type lastError struct {
	Code   uint8  `json:"code"`
	Reason string `json:"reason"`
	Detail string `json:"detail,omitempty"`
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
		out.Application = &appInfo{Version: a.Version, Size: a.Size, SHA256: hex.EncodeToString(a.Digest[:]),
			ManifestDigest: hex.EncodeToString(a.ManifestDigest[:]), SecurityCounter: a.SecurityCounter}
	}
	out.UpdateRequested = st.UpdateRequested
	if st.HasLastUpdate {
		out.LastUpdate = &lastError{Code: uint8(st.LastUpdate), Reason: "installed", Detail: st.LastUpdateDetail}
		if st.LastUpdate != wire.CodeOK {
			out.LastUpdate.Reason = "refused: " + st.LastUpdate.String()
		}
	}
	if st.LastError != wire.CodeOK {
		out.LastError = &lastError{Code: uint8(st.LastError), Reason: st.LastError.String(), Detail: st.LastErrorDetail}
	}
	return out, nil
}

// printSBMInfo prints the SBM part of the device information.
func printSBMInfo(w io.Writer, in *deviceInfo) {
	fmt.Fprintf(w, "lifecycle:      %s\n", in.Lifecycle)
	fmt.Fprintf(w, "SBM:            sha256 %s\n", in.SBMMeasurement)
	if in.Certificate != "" {
		fmt.Fprintf(w, "certificate:    installed (sbm device info --json shows it)\n")
	}
	if a := in.Application; a != nil {
		fmt.Fprintf(w, "application:    %s, %d bytes, sha256 %s, security counter %d\n", a.Version, a.Size, a.SHA256, a.SecurityCounter)
	} else {
		fmt.Fprintf(w, "application:    none\n")
	}
	fmt.Fprintf(w, "security counter: %d\n", in.SecurityCounter)
	if in.InstallPending {
		fmt.Fprintf(w, "install pending: a staged package will be installed at the next boot\n")
	}
	if u := in.LastUpdate; u != nil {
		fmt.Fprintf(w, "last update:    %s (%s)\n", u.Reason, u.Detail)
	}
	if in.UpdateRequested {
		fmt.Fprintf(w, "update requested: the staged package will be checked at the next boot\n")
	}
	if e := in.LastError; e != nil {
		fmt.Fprintf(w, "last error:     %s (%s)\n", e.Reason, e.Detail)
	}
}
