package x509lite

import "github.com/sbm-project/sbm/internal/errs"

// Errors returned by Parse and VerifyChain. They are sentinels: compare
// with errors.Is.
var (
	// ErrMalformed: the DER is truncated, has trailing bytes, a bad length,
	// an unexpected tag or an invalid field value.
	ErrMalformed = errs.New("x509lite: malformed certificate")
	// ErrTooLarge: a certificate is larger than MaxCertificateSize.
	ErrTooLarge = errs.New("x509lite: certificate too large")
	// ErrUnsupportedAlgorithm: a signature or key algorithm other than
	// ecdsa-with-SHA256 / P-256 and Ed25519, or a signature whose algorithm
	// does not match the signer's key.
	ErrUnsupportedAlgorithm = errs.New("x509lite: unsupported algorithm")
	// ErrCriticalExtension: an unknown extension is marked critical, or an
	// extension appears twice.
	ErrCriticalExtension = errs.New("x509lite: unhandled critical extension")
	// ErrSignature: a certificate's signature does not verify with its
	// issuer's key (or the root key).
	ErrSignature = errs.New("x509lite: signature does not verify")
	// ErrIssuerMismatch: a certificate's issuer is not the next
	// certificate's subject.
	ErrIssuerMismatch = errs.New("x509lite: issuer does not match the next certificate's subject")
	// ErrNotCA: a certificate that signs another one is not a CA (basic
	// constraints cA false or absent, key usage absent or without
	// keyCertSign).
	ErrNotCA = errs.New("x509lite: issuing certificate is not a CA")
	// ErrPathLength: a CA certificate has more CA certificates below it in
	// the chain than its path length constraint allows. It also matches
	// ErrNotCA (errors.Is): the CA may not issue this chain.
	ErrPathLength error = &roleError{"x509lite: path length constraint exceeded"}
	// ErrLeafUsage: the leaf is not fit for the usage asked: a CA where an
	// end-entity certificate is required, a key usage without
	// digitalSignature or with keyCertSign, an extended key usage without
	// the purpose. It also matches ErrNotCA (errors.Is), so a caller that
	// treats ErrNotCA as a certificate in the wrong role handles it.
	ErrLeafUsage error = &roleError{"x509lite: leaf certificate not valid for this usage"}
	// ErrExpired: now is after a certificate's notAfter.
	ErrExpired = errs.New("x509lite: certificate expired")
	// ErrNotYetValid: now is before a certificate's notBefore.
	ErrNotYetValid = errs.New("x509lite: certificate not yet valid")
	// ErrChainLength: the chain is empty or longer than MaxChainLength.
	ErrChainLength = errs.New("x509lite: chain empty or too long")
	// ErrRootKey: the root key or suite is not valid (suite 1 needs a
	// 65-byte uncompressed P-256 point, suite 2 a 32-byte Ed25519 key).
	ErrRootKey = errs.New("x509lite: invalid root key or suite")
)

// roleError is an error about a certificate's role that also matches
// ErrNotCA.
type roleError struct{ s string }

func (e *roleError) Error() string { return e.s }

// Is reports whether target is ErrNotCA.
func (e *roleError) Is(target error) bool { return errs.Same(target, ErrNotCA) }
