// Package attest encodes, decodes and verifies the SBM's attestation token
// (docs/spec/attestation.md): a COSE_Sign1 (tag 18) signed with the device
// identity key over a CBOR claims set in the spirit of the Entity
// Attestation Token (RFC 9711) and the PSA attestation token (RFC 9783):
// the verifier's nonce, the device's UEID, its lifecycle, a per-boot seed,
// and the measurements of the SBM and of the application as a
// software-components array.
//
// attest is device-side code: standard library and the module's device
// packages only, bounded memory, no reflection, no fmt. The decoder is the
// project's bounded CBOR decoder; byte slices in decoded claims alias the
// token.
package attest

import "github.com/sbm-project/sbm/internal/errs"

// Token parameters.
const (
	// ContentType is the content type in the token's protected header.
	ContentType = "application/vnd.sbm.eat+cbor"
	// Profile is the eat_profile claim: this document's profile.
	Profile = "tag:sbm-project.github.io,2026:eat/v1"
	// MinNonceSize and MaxNonceSize bound the nonce (RFC 9711 §4.1).
	MinNonceSize = 8
	MaxNonceSize = 64
	// MaxDeviceIDSize is the largest device ID in the UEID.
	MaxDeviceIDSize = 32
	// MaxVersionSize is the largest component version string.
	MaxVersionSize = 64
	// MinBootSeedSize and MaxBootSeedSize bound the boot seed (RFC 9711 §4.3.4).
	MinBootSeedSize = 8
	MaxBootSeedSize = 32
	// MaxClaimsSize is the largest encoded claims set.
	MaxClaimsSize = 768
	// MaxTokenSize is the largest token Verify and Decode accept.
	MaxTokenSize = 1024
)

// Claim keys (RFC 9711 and RFC 9783 registrations).
const (
	KeyNonce              = 10   // eat_nonce: bstr
	KeyUEID               = 256  // ueid: bstr, 0x01 ‖ device ID
	KeyProfile            = 265  // eat_profile: tstr (URI)
	KeyBootSeed           = 268  // bootseed: bstr
	KeyLifecycle          = 2395 // psa-lifecycle: uint
	KeySoftwareComponents = 2399 // psa-software-components: array of maps
)

// Software-component map keys (RFC 9783 §4.4.1); -1 is this profile's
// security counter.
const (
	CompMeasurementType  = 1
	CompMeasurementValue = 2
	CompVersion          = 4
	CompSignerID         = 5
	CompMeasurementDesc  = 6
	CompSecurityCounter  = -1
)

// UEIDTypeRAND is the UEID type byte of a random (non-IEEE, non-IMEI)
// device ID (RFC 9711 §4.2.1).
const UEIDTypeRAND = 0x01

// Lifecycle states of the device (the wire.Lifecycle* values) and the PSA
// lifecycle values the token carries for them.
const (
	LifecycleBlank       = 0 // PSA 0x1000 assembly and test
	LifecycleProvisioned = 1 // PSA 0x2000 PSA RoT provisioning
	LifecycleLocked      = 2 // PSA 0x3000 secured
)

var psaLifecycle = [3]uint64{0x1000, 0x2000, 0x3000}

// Measurement types of the two software components.
const (
	TypeSBM = "SBM"
	TypeApp = "APP"
	// MeasurementDesc is the measurement description: the hash algorithm.
	MeasurementDesc = "sha-256"
)

// Errors. Every error of this package wraps one of them.
var (
	// ErrMalformed means the token or its claims do not decode in this
	// profile.
	ErrMalformed = errs.New("attest: malformed token")
	// ErrClaims means claims to encode are out of range.
	ErrClaims = errs.New("attest: invalid claims")
	// ErrHeader means the protected header names another algorithm,
	// content type or key.
	ErrHeader = errs.New("attest: token header does not match the key")
	// ErrSignature means the signature does not verify.
	ErrSignature = errs.New("attest: signature verification failed")
)

// Component is one measured software component.
type Component struct {
	// Type is the measurement type: TypeSBM or TypeApp.
	Type string
	// Measurement is SHA-256 of the component's code.
	Measurement [32]byte
	// Version is the component's version ("" if unknown).
	Version string
	// SignerID is the key ID (SHA-256 of the raw public key) of the key
	// that signed the component, if HasSigner.
	SignerID  [32]byte
	HasSigner bool
	// SecurityCounter is the component's anti-rollback counter, if
	// HasCounter.
	SecurityCounter uint32
	HasCounter      bool
}

// Claims are the claims of a token.
type Claims struct {
	// Nonce is the verifier's challenge, MinNonceSize..MaxNonceSize bytes.
	Nonce []byte
	// DeviceID is the device's unique ID, 1..MaxDeviceIDSize bytes; the
	// token carries it as the UEID 0x01 ‖ DeviceID.
	DeviceID []byte
	// Lifecycle is the device lifecycle (Lifecycle*).
	Lifecycle uint8
	// BootSeed is a random value fixed for one boot (empty: absent).
	BootSeed []byte
	// SBM is the SBM's component (Type TypeSBM).
	SBM Component
	// App is the running application's component (Type TypeApp), if
	// HasApp.
	App    Component
	HasApp bool
}
