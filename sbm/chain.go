package sbm

import "encoding/binary"

// Certificate chains passed to and from the services (Services.CertificateChain,
// VerifyChain) and stored at provisioning (the device CA chain) are DER
// certificates, each prefixed by its 2-byte big-endian length.
const (
	// MaxChainCerts is the largest number of certificates in a chain.
	MaxChainCerts = 4
	// MaxChainCertSize is the largest certificate in a chain given to
	// VerifyChain (a server's chain may hold larger certificates than the
	// device stores).
	MaxChainCertSize = 2048
	// MaxChainSize is the largest encoded chain VerifyChain accepts.
	MaxChainSize = MaxChainCerts * (2 + MaxChainCertSize)
)

// chainCerts splits an encoded chain into its certificates (sub-slices of
// b) in out and returns how many there are. It refuses an empty chain, an
// empty or oversized certificate, more than len(out) certificates and
// trailing bytes.
func chainCerts(b []byte, out [][]byte) (int, bool) {
	n := 0
	for len(b) > 0 {
		if len(b) < 2 || n == len(out) {
			return 0, false
		}
		l := int(binary.BigEndian.Uint16(b))
		if l == 0 || l > MaxChainCertSize || len(b) < 2+l {
			return 0, false
		}
		out[n] = b[2 : 2+l]
		n++
		b = b[2+l:]
	}
	return n, n > 0
}
