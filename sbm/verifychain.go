package sbm

import (
	"github.com/sbm-project/sbm/internal/errs"
	"github.com/sbm-project/sbm/internal/x509lite"
	"github.com/sbm-project/sbm/wire"
)

// verifyChain checks DER certificates, leaf first, against the root key
// of suite at time now (epoch seconds) with the device-side X.509
// validator, requiring usage of the first one, and maps its errors to
// protocol codes.
func verifyChain(certs [][]byte, rootKey []byte, suite uint8, now uint64, usage x509lite.Usage) error {
	err := x509lite.VerifyChainFor(certs, rootKey, suite, now, usage)
	if err == nil {
		return nil
	}
	code := wire.CodeMalformed
	switch {
	case errs.Is(err, x509lite.ErrSignature), errs.Is(err, x509lite.ErrIssuerMismatch),
		errs.Is(err, x509lite.ErrNotCA):
		code = wire.CodeSignature
	case errs.Is(err, x509lite.ErrExpired), errs.Is(err, x509lite.ErrNotYetValid):
		code = wire.CodeExpired
	case errs.Is(err, x509lite.ErrUnsupportedAlgorithm):
		code = wire.CodeUnsupported
	case errs.Is(err, x509lite.ErrTooLarge):
		code = wire.CodeTooLarge
	case errs.Is(err, x509lite.ErrRootKey):
		code = wire.CodeNotProvisioned
	}
	return wire.Errorf(code, errText(err))
}
