package wire

// Target is what the connection protocol drives on the device: the SBM
// implements it. Session (the device side of the protocol) calls it from a
// single goroutine, in protocol order. Every method returns an *Error (or
// nil) so that the code reaches the host.
//
// A package travels as its container (docs/spec/package.md §8): the
// programmer sends the manifest record, exactly one UPK record and the
// payload record, in that order, as one byte stream of Begin's size. The
// target stores the stream in the staging slot as it arrives, and validates
// the manifest and the UPK as soon as their records are complete — before
// it accepts any payload byte. Finish authenticates the whole staged package
// and installs it; only then does the running application change.
type Target interface {
	// Info appends the CBOR encoding of the device information (see
	// DeviceInfo and docs/spec/protocol.md) to dst.
	Info(dst []byte) []byte
	// Certificate returns the device certificate (DER), or nil before
	// provisioning.
	Certificate() []byte
	// Begin starts receiving a package of size bytes, discarding any
	// earlier unfinished transfer. It fails with CodeTooLarge if the
	// package cannot fit the staging slot.
	Begin(size uint32) error
	// Write stores p at offset off of the package. Offsets arrive in order
	// and without gaps (Session enforces it); Write may be called again with
	// the same offset after a resumed link only if Received says so.
	Write(off uint32, p []byte) error
	// Received returns how many bytes of the current package have been
	// stored, for resuming a transfer after a dropped link.
	Received() uint32
	// Finish verifies the complete package and installs it.
	Finish() error
	// Abort discards the current transfer.
	Abort()
}

// DeviceInfo is the device information the protocol reports (INFO).
type DeviceInfo struct {
	ID         []byte // unique device ID
	Lifecycle  uint8  // see Lifecycle* constants
	SBMVersion string
	// AppVersion is the installed application's version, "" if none.
	AppVersion string
	// SecurityCounter is the stored anti-rollback counter.
	SecurityCounter uint32
	// LastError is the code of the last failed boot or install, or 0.
	LastError Code
	// LastErrorDetail explains LastError in a few words.
	LastErrorDetail string
	// StagingSize is the capacity of the staging slot in bytes.
	StagingSize uint32
}

// Lifecycle states of a device.
const (
	LifecycleBlank       uint8 = 0 // no SBM state: not provisioned
	LifecycleProvisioned uint8 = 1 // keys and anchors, debug port open
	LifecycleLocked      uint8 = 2 // provisioned and locked (production)
)
