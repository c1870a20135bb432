package sbm

import (
	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/wire"
)

// State is the public part of the SBM's secure-storage state, as ReadState
// returns it for host tools (sbm device info). It never contains a key.
type State struct {
	// Seq is the commit sequence number of the record read (0 if none).
	Seq uint32
	// Lifecycle is wire.LifecycleBlank or wire.LifecycleProvisioned; a
	// provisioned device whose debug lock is blown is
	// wire.LifecycleLocked (see LifecycleWithLocks).
	Lifecycle uint8
	// Suite is the cryptographic suite (1 p256, 2 ed25519), 0 if blank.
	Suite uint8
	// VendorID and ClassID are the provisioned IDs.
	VendorID, ClassID [16]byte
	// Certificate is the device certificate (DER), nil if none.
	Certificate []byte
	// App is the signature-table entry of the primary slot, nil if none.
	App *AppEntry
	// SecurityCounter is the stored anti-rollback counter.
	SecurityCounter uint32
	// TimeFloor is the device's trusted lower bound on the time (epoch
	// seconds).
	TimeFloor uint64
	// ReplayIDs is the number of remembered UPK IDs.
	ReplayIDs int
	// LastError and LastErrorDetail say why the last boot or install
	// failed (0 if it did not).
	LastError       wire.Code
	LastErrorDetail string
	// InstallPending reports an authenticated package waiting in staging
	// for an interrupted install to resume.
	InstallPending bool
	// UpdateRequested reports that the application asked for the staged
	// package to be installed at the next boot.
	UpdateRequested bool
	// HasLastUpdate reports that an update was installed or rejected;
	// LastUpdate is then 0 (installed) or the wire.Code of the rejection,
	// explained by LastUpdateDetail.
	HasLastUpdate    bool
	LastUpdate       wire.Code
	LastUpdateDetail string
	// CAChain is the device CA chain stored at provisioning (length-prefixed
	// DER certificates), nil if none.
	CAChain []byte
}

// AppEntry is a signature-table entry.
type AppEntry struct {
	Version         string
	Size            uint32
	Digest          [32]byte // SHA-256 of the image
	ManifestDigest  [32]byte
	SecurityCounter uint32
	// Signer is the key ID of the image-signing key of its manifest (zero
	// for entries written before the SBM recorded it).
	Signer [32]byte
}

// LifecycleWithLocks returns the lifecycle given the lock fuse word.
func (s *State) LifecycleWithLocks(locks uint32) uint8 {
	if s.Lifecycle == wire.LifecycleProvisioned && locks&hal.LockDebug != 0 {
		return wire.LifecycleLocked
	}
	return s.Lifecycle
}

// ReadState reads the newest valid secure-storage record through f (which
// must be allowed to read the secure region: SBM privilege or the debug
// port of an unlocked device) and returns its public part. With the
// device's PUF p, records are authenticated exactly as the SBM does (a
// forged or foreign record is skipped); with a nil p they are only checked
// for integrity, which a host tool may use to show what is there. A blank
// or unreadable storage gives the blank state; an error is returned only
// when the flash has no usable secure region.
func ReadState(f hal.Flash, p hal.PUF) (*State, error) {
	var s storage
	if err := s.open(f, p); err != nil {
		return nil, err
	}
	var st state
	s.load(&st)
	out := &State{
		Seq: st.seq, Lifecycle: wire.LifecycleBlank, VendorID: st.vendorID, ClassID: st.classID,
		SecurityCounter: st.counter, TimeFloor: st.timeFloor, ReplayIDs: int(st.replayLen),
		LastError: st.lastError, LastErrorDetail: st.lastErrorText(), InstallPending: st.pending.present,
		UpdateRequested: st.updateRequested, HasLastUpdate: st.hasLastUpdate,
		LastUpdate: st.lastUpdate, LastUpdateDetail: st.lastUpdateText(),
	}
	if st.caChainLen > 0 {
		out.CAChain = append([]byte(nil), st.caChainBytes()...)
	}
	if st.provisioned {
		out.Lifecycle = wire.LifecycleProvisioned
		out.Suite = uint8(st.suite)
	}
	if st.certLen > 0 {
		out.Certificate = append([]byte(nil), st.certificate()...)
	}
	if a := &st.app; a.present {
		out.App = &AppEntry{Version: a.versionString(), Size: a.size, Digest: a.digest,
			ManifestDigest: a.manifestDigest, SecurityCounter: a.counter, Signer: a.signer}
	}
	return out, nil
}
