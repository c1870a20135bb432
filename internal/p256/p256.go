// Package p256 is the SBM's P-256 suite (ES256 signatures, ECDH key
// agreement) behind one small API, so that a build of the device-side
// packages can leave it out.
//
// By default it wraps crypto/ecdsa, crypto/ecdh and crypto/elliptic. Built
// with the tag sbm_ed25519only (the Ed25519-only SBM firmware,
// docs/silicon.md) it holds none of them: [Compiled] is false, the parsers
// and key constructors fail with [ErrUnsupported], verification fails and
// [ECDH] is nil, so that P-256, math/big and the curve's tables are not
// linked. Callers treat a P-256 input then as an unsupported suite.
package p256

import "github.com/sbm-project/sbm/internal/errs"

// ErrUnsupported is returned when the package is compiled without P-256
// (build tag sbm_ed25519only).
var ErrUnsupported = errs.New("p256: P-256 is not compiled into this build (sbm_ed25519only)")

// PublicKeySize is the size of a SEC 1 uncompressed point, 04 ‖ X ‖ Y.
const PublicKeySize = 65
