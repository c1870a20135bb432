package x509lite

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"testing"
	"time"
)

// TestVerifyChainRoles checks the role checks (basic constraints, key
// usage, path length, extended key usage, critical extensions) and
// compares each verdict with crypto/x509's where crypto/x509 checks the
// same thing.
func TestVerifyChainRoles(t *testing.T) {
	for _, s := range suites {
		t.Run(string(s), func(t *testing.T) {
			p := newPKI(t, s)
			k := p.newKey(t)
			k2 := p.newKey(t)
			leafKey := p.newKey(t)
			// A leaf (end-entity certificate) used as a CA.
			endEntity := issue(t, tmpl("end-entity", false), p.caCert, k.Public(), p.caSigner)
			underEndEntity := issue(t, tmpl("leaf", false), endEntity, leafKey.Public(), k)
			// A CA with a key usage but no keyCertSign, and one with no key
			// usage at all.
			noSign := tmpl("ca-no-certsign", true)
			noSign.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign
			noSignCA := issue(t, noSign, p.rootCert, k.Public(), p.rootSigner)
			underNoSign := issue(t, tmpl("leaf", false), noSignCA, leafKey.Public(), k)
			noKU := tmpl("ca-no-key-usage", true)
			noKU.KeyUsage = 0
			noKUCA := issue(t, noKU, p.rootCert, k.Public(), p.rootSigner)
			underNoKU := issue(t, tmpl("leaf", false), noKUCA, leafKey.Public(), k)
			// Path length: the device CA has pathLenConstraint 0, the root
			// 1. A sub-CA under the device CA; two CAs under the root.
			subCA := issue(t, tmpl("sub-ca", true), p.caCert, k.Public(), p.caSigner)
			underSubCA := issue(t, tmpl("leaf", false), subCA, leafKey.Public(), k)
			ca1 := issue(t, tmpl("ca1", true), p.rootCert, k.Public(), p.rootSigner)
			ca2 := issue(t, tmpl("ca2", true), ca1, k2.Public(), k)
			underCA2 := issue(t, tmpl("leaf", false), ca2, leafKey.Public(), k2)
			pl0 := tmpl("ca-pathlen-0", true)
			pl0.MaxPathLen, pl0.MaxPathLenZero = 0, true
			pathLen0 := issue(t, pl0, p.rootCert, k.Public(), p.rootSigner)
			underPathLen0 := issue(t, tmpl("leaf", false), pathLen0, leafKey.Public(), k)
			// Extended key usages.
			eku := func(cn string, usages ...x509.ExtKeyUsage) *x509.Certificate {
				tp := tmpl(cn, false)
				tp.ExtKeyUsage = usages
				return issue(t, tp, p.caCert, leafKey.Public(), p.caSigner)
			}
			codeSigning := eku("code-signing", x509.ExtKeyUsageCodeSigning)
			serverOnly := eku("server", x509.ExtKeyUsageServerAuth)
			clientAndCode := eku("client+code", x509.ExtKeyUsageCodeSigning, x509.ExtKeyUsageClientAuth)
			anyEKU := eku("any", x509.ExtKeyUsageAny)
			noEKU := eku("no-eku")
			// Key usages of a leaf.
			ku := func(cn string, u x509.KeyUsage) *x509.Certificate {
				tp := tmpl(cn, false)
				tp.KeyUsage = u
				return issue(t, tp, p.caCert, leafKey.Public(), p.caSigner)
			}
			keyAgreementOnly := ku("key-agreement", x509.KeyUsageKeyAgreement)
			leafCertSign := ku("leaf-certsign", x509.KeyUsageDigitalSignature|x509.KeyUsageCertSign)
			// Unknown critical extensions, on a leaf and on a CA.
			unknown := []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}, Critical: true, Value: []byte{5, 0}}}
			critLeafT := tmpl("critical-leaf", false)
			critLeafT.ExtraExtensions = unknown
			critLeaf := issue(t, critLeafT, p.caCert, leafKey.Public(), p.caSigner)
			critCAT := tmpl("critical-ca", true)
			critCAT.ExtraExtensions = unknown
			critCA := issue(t, critCAT, p.rootCert, k.Public(), p.rootSigner)
			underCritCA := issue(t, tmpl("leaf", false), critCA, leafKey.Public(), k)
			// The same extension, not critical: ignored.
			nonCritT := tmpl("non-critical", false)
			nonCritT.ExtraExtensions = []pkix.Extension{{Id: unknown[0].Id, Value: []byte{5, 0}}}
			nonCrit := issue(t, nonCritT, p.caCert, leafKey.Public(), p.caSigner)

			cases := []struct {
				name  string
				chain []*x509.Certificate // leaf first; the root certificate may end it
				usage Usage
				want  error // nil: accepted
				// x509 is crypto/x509's verdict (true: accepted) when it
				// differs from ours, with why; "" when it agrees.
				x509 string
			}{
				{"device certificate for client auth", []*x509.Certificate{p.device, p.caCert}, UsageClientAuth, nil, ""},
				{"device certificate, root certificate included", []*x509.Certificate{p.device, p.caCert, p.rootCert}, UsageClientAuth, nil, ""},
				{"device certificate, any usage", []*x509.Certificate{p.device, p.caCert}, UsageAny, nil, ""},
				{"device certificate for server auth", []*x509.Certificate{p.device, p.caCert}, UsageServerAuth, ErrLeafUsage, ""},
				{"leaf used as a CA", []*x509.Certificate{underEndEntity, endEntity, p.caCert}, UsageAny, ErrNotCA, ""},
				{"CA without keyCertSign", []*x509.Certificate{underNoSign, noSignCA}, UsageAny, ErrNotCA, ""},
				{"CA without key usage", []*x509.Certificate{underNoKU, noKUCA}, UsageAny, ErrNotCA, "crypto/x509 does not require a CA's key usage"},
				{"CA without keyCertSign as the leaf", []*x509.Certificate{noSignCA}, UsageAny, ErrNotCA, "crypto/x509 ignores a CA's key usage"},
				{"path length 0 exceeded", []*x509.Certificate{underSubCA, subCA, p.caCert}, UsageAny, ErrPathLength, ""},
				{"path length 0 exceeded, root certificate included", []*x509.Certificate{underSubCA, subCA, p.caCert, p.rootCert}, UsageAny, ErrPathLength, ""},
				{"root path length 1 exceeded", []*x509.Certificate{underCA2, ca2, ca1, p.rootCert}, UsageAny, ErrPathLength, ""},
				{"path length 0 respected", []*x509.Certificate{underPathLen0, pathLen0}, UsageAny, nil, ""},
				{"sub-CA of a path length 0 CA, as the leaf", []*x509.Certificate{subCA, p.caCert}, UsageAny, nil, ""},
				{"CA as the leaf for client auth", []*x509.Certificate{p.caCert}, UsageClientAuth, ErrLeafUsage, "crypto/x509 accepts a CA as the leaf"},
				{"CA as the leaf, any usage", []*x509.Certificate{p.caCert}, UsageAny, nil, ""},
				{"EKU without clientAuth", []*x509.Certificate{codeSigning, p.caCert}, UsageClientAuth, ErrLeafUsage, ""},
				{"EKU without clientAuth or serverAuth", []*x509.Certificate{codeSigning, p.caCert}, UsageAny, ErrLeafUsage, "crypto/x509's ExtKeyUsageAny accepts every purpose"},
				{"EKU serverAuth only, for client auth", []*x509.Certificate{serverOnly, p.caCert}, UsageClientAuth, ErrLeafUsage, ""},
				{"EKU serverAuth, for server auth", []*x509.Certificate{serverOnly, p.caCert}, UsageServerAuth, nil, ""},
				{"EKU serverAuth, any usage", []*x509.Certificate{serverOnly, p.caCert}, UsageAny, nil, ""},
				{"EKU with clientAuth among others", []*x509.Certificate{clientAndCode, p.caCert}, UsageClientAuth, nil, ""},
				{"EKU anyExtendedKeyUsage", []*x509.Certificate{anyEKU, p.caCert}, UsageClientAuth, nil, ""},
				{"no EKU", []*x509.Certificate{noEKU, p.caCert}, UsageClientAuth, nil, ""},
				{"leaf key usage without digitalSignature", []*x509.Certificate{keyAgreementOnly, p.caCert}, UsageAny, ErrLeafUsage, "crypto/x509 ignores a leaf's key usage"},
				{"leaf key usage with keyCertSign", []*x509.Certificate{leafCertSign, p.caCert}, UsageAny, ErrLeafUsage, "crypto/x509 ignores a leaf's key usage"},
				{"unknown critical extension on the leaf", []*x509.Certificate{critLeaf, p.caCert}, UsageAny, ErrCriticalExtension, ""},
				{"unknown critical extension on a CA", []*x509.Certificate{underCritCA, critCA}, UsageAny, ErrCriticalExtension, ""},
				{"unknown extension, not critical", []*x509.Certificate{nonCrit, p.caCert}, UsageAny, nil, ""},
			}
			for _, c := range cases {
				err := VerifyChainFor(ders(c.chain...), p.root, p.suite, validAt, c.usage)
				if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
					t.Errorf("%s: got %v, want %v", c.name, err, c.want)
				}
				if c.usage == UsageAny {
					if err2 := VerifyChain(ders(c.chain...), p.root, p.suite, validAt); err2 != err {
						t.Errorf("%s: VerifyChain %v, VerifyChainFor(UsageAny) %v", c.name, err2, err)
					}
				}
				xerr := verifyX509(p, c.chain, c.usage)
				if agree := (xerr == nil) == (err == nil); agree != (c.x509 == "") {
					t.Errorf("%s: crypto/x509 says %v, x509lite %v (documented difference: %q)", c.name, xerr, err, c.x509)
				}
			}
			// The role errors are ErrNotCA's kind (the SBM maps them alike).
			for _, e := range []error{ErrPathLength, ErrLeafUsage} {
				if !errors.Is(e, ErrNotCA) || errors.Is(ErrNotCA, e) {
					t.Errorf("%v: errors.Is with ErrNotCA wrong", e)
				}
			}
		})
	}
}

// verifyX509 verifies chain (leaf first, up to the root certificate or a
// certificate it signed) with crypto/x509 for usage.
func verifyX509(p *pki, chain []*x509.Certificate, usage Usage) error {
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(p.rootCert)
	for _, c := range chain[1:] {
		if !c.Equal(p.rootCert) {
			inter.AddCert(c)
		}
	}
	eku := []x509.ExtKeyUsage{x509.ExtKeyUsageAny}
	switch usage {
	case UsageClientAuth:
		eku = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	case UsageServerAuth:
		eku = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	if chain[0].Equal(p.rootCert) {
		return nil
	}
	_, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: eku, CurrentTime: time.Unix(int64(validAt), 0)})
	return err
}
