package sbm

import "github.com/sbm-project/sbm/wire"

// verifyChain checks DER certificates, leaf first, against the root key
// of suite at time now (epoch seconds). Until the device-side X.509
// validator (internal/x509lite) is in the tree it reports that the service
// is not available.
func verifyChain(certs [][]byte, rootKey []byte, suite uint8, now uint64) error {
	return wire.Errorf(wire.CodeUnsupported, "certificate chain validation not available in this sbm build")
}
