package x509lite

import (
	"bytes"
	"testing"

	"github.com/sbm-project/sbm/trust"
)

// FuzzParseCertificate feeds arbitrary bytes to Parse, VerifyChain and
// VerifyChainFor (as the leaf and as the issuer):
// they never panic, and what Parse accepts aliases the input and is
// within it.
func FuzzParseCertificate(f *testing.F) {
	for _, s := range suites {
		p := newPKI(f, s)
		f.Add(p.device.Raw)
		f.Add(p.caCert.Raw)
		f.Add(p.rootCert.Raw)
	}
	f.Add([]byte{0x30, 0x00})
	f.Add([]byte{0x30, 0x81, 0x80})
	p := newPKI(f, trust.SuiteP256)
	f.Fuzz(func(t *testing.T, der []byte) {
		var c Certificate
		if err := Parse(der, &c); err == nil {
			if !bytes.Equal(c.Raw, der) || !bytes.Contains(der, c.TBS) || !bytes.Contains(c.TBS, c.Subject) ||
				!bytes.Contains(c.TBS, c.PublicKey) || len(c.PublicKey) == 0 {
				t.Fatal("parsed fields outside the input")
			}
		}
		VerifyChain([][]byte{der}, p.root, p.suite, validAt)
		VerifyChain([][]byte{der, p.caCert.Raw}, p.root, p.suite, 0)
		VerifyChainFor([][]byte{der, p.caCert.Raw}, p.root, p.suite, 0, UsageClientAuth)
		VerifyChainFor([][]byte{p.device.Raw, der}, p.root, p.suite, 0, UsageServerAuth)
	})
}
