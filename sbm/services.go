package sbm

// Services are the SBM's runtime services for the running application
// (docs/spec/services.md). The application runtime (package apphost)
// exposes them to the application as host functions; the application never
// gets a reference to SBM memory. Every method validates its arguments —
// lengths, offsets, sizes — and returns an error instead of trusting them,
// so a misbehaving application cannot crash or corrupt the SBM. Methods that
// fill a caller's buffer append to dst and return the extended slice.
type Services interface {
	// BootInfo returns the device and boot information.
	BootInfo() BootInfo
	// CertificateChain appends the device certificate chain, DER
	// certificates leaf first, each prefixed by its 2-byte big-endian
	// length.
	CertificateChain(dst []byte) ([]byte, error)
	// VerifyChain checks a certificate chain (same encoding) against the
	// provisioned trust anchors: its last certificate must be signed by the
	// root key, each other by the next. now is epoch seconds, or 0 to use
	// the device's time floor.
	VerifyChain(chain []byte, now uint64) error
	// Sign signs a 32-byte SHA-256 digest with the device identity key and
	// appends the signature (ES256: 64-byte r‖s; Ed25519: over the digest).
	Sign(dst, digest []byte) ([]byte, error)
	// TLSSign signs the TLS 1.3 client CertificateVerify content for the
	// transcript hash th (32 or 48 bytes) with the device identity key and
	// appends the 64-byte signature: the SBM builds the content itself,
	// 64 × 0x20 ‖ "TLS 1.3, client CertificateVerify" ‖ 0x00 ‖ th (RFC
	// 8446 §4.4.3), and signs it with ecdsa_secp256r1_sha256 (ECDSA over
	// SHA-256 of the content, r‖s) or Ed25519 (over the content).
	TLSSign(dst, th []byte) ([]byte, error)
	// Report appends an install report (docs/spec/report.md): a
	// COSE_Sign1 signed with the device identity key over facts the SBM
	// takes from its state, with the caller's nonce (empty, or 8 to 64
	// bytes).
	Report(dst, nonce []byte) ([]byte, error)
	// Attest appends an attestation token for nonce (8 to 64 bytes):
	// a COSE_Sign1 over CBOR claims (docs/spec/attestation.md) signed with
	// the device identity key.
	Attest(dst, nonce []byte) ([]byte, error)
	// StagingSize returns the capacity of the staging slot in bytes.
	StagingSize() uint32
	// StagingErase erases the staging slot.
	StagingErase() error
	// StagingWrite writes p at offset off of the staging slot; the bytes
	// must be erased (write each byte once after StagingErase). Writes need
	// not be aligned: the SBM buffers partial words.
	StagingWrite(off uint32, p []byte) error
	// StagingRead reads len(p) bytes at offset off of the staging slot.
	StagingRead(off uint32, p []byte) error
	// RequestUpdate records a request to install the package in the
	// staging slot and resets the device; it returns only on error. At the
	// next boot the SBM authenticates the whole staged package before it
	// touches the running application.
	RequestUpdate() error
	// RequestRecovery resets the device into the SBM's recovery mode (the
	// connection protocol on the UART); it does not return.
	RequestRecovery()
}

// BootInfo is what the boot-info service reports.
type BootInfo struct {
	DeviceID        [16]byte
	SBMVersion      string
	AppVersion      string
	Lifecycle       uint8 // wire.Lifecycle*
	SecurityCounter uint32
	// LastUpdate is the result of the last update request: 0 none or
	// success, else a wire.Code; LastUpdateDetail explains it.
	LastUpdate       uint8
	LastUpdateDetail string
	// UpdatedThisBoot reports whether this boot installed a new
	// application.
	UpdatedThisBoot bool
}
