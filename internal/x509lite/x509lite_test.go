package x509lite

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"testing"
	"time"

	"github.com/sbm-project/sbm/trust"
)

var suites = []trust.Suite{trust.SuiteP256, trust.SuiteEd25519}

// TestParseMatchesCryptoX509 parses the context's certificates and
// compares every field with crypto/x509.
func TestParseMatchesCryptoX509(t *testing.T) {
	for _, s := range suites {
		t.Run(string(s), func(t *testing.T) {
			p := newPKI(t, s)
			srvKey := p.newKey(t)
			srv := issue(t, tmpl("server.example", false), p.caCert, srvKey.Public(), p.caSigner)
			for _, want := range []*x509.Certificate{p.rootCert, p.caCert, p.device, srv} {
				var c Certificate
				if err := Parse(want.Raw, &c); err != nil {
					t.Fatalf("%s: %v", want.Subject, err)
				}
				if !bytes.Equal(c.Raw, want.Raw) || !bytes.Equal(c.TBS, want.RawTBSCertificate) ||
					!bytes.Equal(c.Issuer, want.RawIssuer) || !bytes.Equal(c.Subject, want.RawSubject) ||
					!bytes.Equal(c.Signature, want.Signature) {
					t.Errorf("%s: raw fields differ", want.Subject)
				}
				if c.NotBefore != uint64(want.NotBefore.Unix()) || c.NotAfter != uint64(want.NotAfter.Unix()) {
					t.Errorf("%s: validity %d..%d, want %v..%v", want.Subject, c.NotBefore, c.NotAfter, want.NotBefore, want.NotAfter)
				}
				if c.IsCA != want.IsCA || c.HasBasicConstraints != want.BasicConstraintsValid {
					t.Errorf("%s: CA %v/%v, want %v/%v", want.Subject, c.IsCA, c.HasBasicConstraints, want.IsCA, want.BasicConstraintsValid)
				}
				if c.HasKeyUsage != (want.KeyUsage != 0) || c.KeyUsage != uint16(want.KeyUsage) {
					t.Errorf("%s: key usage %#x, want %#x", want.Subject, c.KeyUsage, want.KeyUsage)
				}
				if hasPL := want.MaxPathLen > 0 || want.MaxPathLenZero; c.HasPathLen != hasPL || hasPL && int(c.PathLen) != want.MaxPathLen {
					t.Errorf("%s: path length %v/%d, want %d", want.Subject, c.HasPathLen, c.PathLen, want.MaxPathLen)
				}
				var eku uint8
				for _, u := range want.ExtKeyUsage {
					eku |= map[x509.ExtKeyUsage]uint8{x509.ExtKeyUsageAny: ExtKeyUsageAny,
						x509.ExtKeyUsageServerAuth: ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth: ExtKeyUsageClientAuth}[u]
				}
				if c.HasExtKeyUsage != (len(want.ExtKeyUsage) > 0) || c.ExtKeyUsage != eku {
					t.Errorf("%s: extended key usage %v/%#x, want %v", want.Subject, c.HasExtKeyUsage, c.ExtKeyUsage, want.ExtKeyUsage)
				}
				var key []byte
				switch k := want.PublicKey.(type) {
				case *ecdsa.PublicKey:
					key, _ = k.Bytes()
					if c.KeyAlgorithm != ECDSAP256 || c.SignatureAlgorithm != ECDSAP256 {
						t.Errorf("%s: algorithms %d %d", want.Subject, c.KeyAlgorithm, c.SignatureAlgorithm)
					}
				case ed25519.PublicKey:
					key = k
					if c.KeyAlgorithm != Ed25519 || c.SignatureAlgorithm != Ed25519 {
						t.Errorf("%s: algorithms %d %d", want.Subject, c.KeyAlgorithm, c.SignatureAlgorithm)
					}
				}
				if !bytes.Equal(c.PublicKey, key) {
					t.Errorf("%s: public key differs", want.Subject)
				}
			}
		})
	}
}

// TestVerifyChainAccepts checks the chains a device meets: its own
// (device ← device CA ← root), with or without the root's certificate, and
// server certificates issued by the device CA or the root.
func TestVerifyChainAccepts(t *testing.T) {
	for _, s := range suites {
		t.Run(string(s), func(t *testing.T) {
			p := newPKI(t, s)
			k := p.newKey(t)
			srvCA := issue(t, tmpl("ca.example", false), p.caCert, k.Public(), p.caSigner)
			srvRoot := issue(t, tmpl("root.example", false), p.rootCert, k.Public(), p.rootSigner)
			for name, chain := range map[string][][]byte{
				"device+CA":        ders(p.device, p.caCert),
				"device+CA+root":   ders(p.device, p.caCert, p.rootCert),
				"CA":               ders(p.caCert),
				"root":             ders(p.rootCert),
				"server by CA":     ders(srvCA, p.caCert),
				"server by root":   ders(srvRoot),
				"server+root cert": ders(srvRoot, p.rootCert),
			} {
				for _, now := range []uint64{0, validAt} {
					if err := VerifyChain(chain, p.root, p.suite, now); err != nil {
						t.Errorf("%s (now %d): %v", name, now, err)
					}
				}
			}
		})
	}
}

// TestVerifyChainRejects checks every rejection and its sentinel error.
func TestVerifyChainRejects(t *testing.T) {
	for _, s := range suites {
		t.Run(string(s), func(t *testing.T) {
			p := newPKI(t, s)
			other := newPKI(t, s)
			k := p.newKey(t)
			leafKey := p.newKey(t)

			// A non-CA certificate that signs a leaf.
			notCA := issue(t, tmpl("not-a-ca", false), p.caCert, k.Public(), p.caSigner)
			underNotCA := issue(t, tmpl("leaf", false), notCA, leafKey.Public(), k)
			// A CA certificate whose key usage lacks keyCertSign.
			noSign := tmpl("ca-no-certsign", true)
			noSign.KeyUsage = x509.KeyUsageDigitalSignature
			noSignCA := issue(t, noSign, p.rootCert, k.Public(), p.rootSigner)
			underNoSign := issue(t, tmpl("leaf", false), noSignCA, leafKey.Public(), k)
			// An intermediate CA with basic constraints absent.
			noBC := tmpl("ca-no-bc", false)
			noBC.KeyUsage = x509.KeyUsageCertSign
			noBCCA := issue(t, noBC, p.rootCert, k.Public(), p.rootSigner)
			underNoBC := issue(t, tmpl("leaf", false), noBCCA, leafKey.Public(), k)
			// Validity.
			exp := tmpl("expired", false)
			exp.NotBefore, exp.NotAfter = fixedNow.Add(-48*time.Hour), fixedNow.Add(-24*time.Hour)
			expired := issue(t, exp, p.caCert, k.Public(), p.caSigner)
			fut := tmpl("future", false)
			fut.NotBefore, fut.NotAfter = fixedNow.Add(1000*24*time.Hour), fixedNow.Add(2000*24*time.Hour)
			future := issue(t, fut, p.caCert, k.Public(), p.caSigner)
			// An unknown critical extension.
			crit := tmpl("critical", false)
			crit.ExtraExtensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}, Critical: true, Value: []byte{5, 0}}}
			critical := issue(t, crit, p.caCert, k.Public(), p.caSigner)
			// A broken signature.
			broken := bytes.Clone(p.device.Raw)
			broken[len(broken)-3] ^= 0x10
			// Tampered TBS (a byte of the subject key).
			var dc Certificate
			if err := Parse(p.device.Raw, &dc); err != nil {
				t.Fatal(err)
			}
			tampered := bytes.Clone(p.device.Raw)
			tampered[len(dc.Raw)-len(dc.Signature)-40] ^= 1

			cases := []struct {
				name  string
				chain [][]byte
				root  []byte
				suite uint8
				now   uint64
				want  error
			}{
				{"wrong root", ders(p.device, p.caCert), other.root, p.suite, 0, ErrSignature},
				{"other context's root certificate", ders(p.device, p.caCert, other.rootCert), p.root, p.suite, 0, ErrIssuerMismatch},
				{"broken signature", [][]byte{broken, p.caCert.Raw}, p.root, p.suite, 0, ErrSignature},
				{"tampered certificate", [][]byte{tampered, p.caCert.Raw}, p.root, p.suite, 0, ErrSignature},
				{"non-CA intermediate", ders(underNotCA, notCA, p.caCert), p.root, p.suite, 0, ErrNotCA},
				{"CA without keyCertSign", ders(underNoSign, noSignCA), p.root, p.suite, 0, ErrNotCA},
				{"intermediate without basic constraints", ders(underNoBC, noBCCA), p.root, p.suite, 0, ErrNotCA},
				{"expired", ders(expired, p.caCert), p.root, p.suite, validAt, ErrExpired},
				{"not yet valid", ders(future, p.caCert), p.root, p.suite, validAt, ErrNotYetValid},
				{"issuer mismatch", ders(p.device, p.rootCert), p.root, p.suite, 0, ErrIssuerMismatch},
				{"device without its CA", ders(p.device), p.root, p.suite, 0, ErrSignature},
				{"critical extension", ders(critical, p.caCert), p.root, p.suite, 0, ErrCriticalExtension},
				{"truncated", [][]byte{p.device.Raw[:len(p.device.Raw)-1], p.caCert.Raw}, p.root, p.suite, 0, ErrMalformed},
				{"trailing bytes", [][]byte{append(bytes.Clone(p.device.Raw), 0), p.caCert.Raw}, p.root, p.suite, 0, ErrMalformed},
				{"empty", nil, p.root, p.suite, 0, ErrChainLength},
				{"too long", ders(p.device, p.caCert, p.caCert, p.caCert, p.rootCert), p.root, p.suite, 0, ErrChainLength},
				{"root key of wrong size", ders(p.device, p.caCert), p.root[:20], p.suite, 0, ErrRootKey},
				{"unknown suite", ders(p.device, p.caCert), p.root, 3, 0, ErrRootKey},
				{"oversized", [][]byte{make([]byte, MaxCertificateSize+1)}, p.root, p.suite, 0, ErrTooLarge},
			}
			for _, c := range cases {
				if err := VerifyChain(c.chain, c.root, c.suite, c.now); !errors.Is(err, c.want) {
					t.Errorf("%s: got %v, want %v", c.name, err, c.want)
				}
			}
			// The expired and future certificates are fine without a clock.
			if err := VerifyChain(ders(expired, p.caCert), p.root, p.suite, 0); err != nil {
				t.Errorf("expired without a clock: %v", err)
			}
			// Every proper prefix of a certificate is malformed.
			var c Certificate
			for n := range len(p.device.Raw) {
				if err := Parse(p.device.Raw[:n], &c); !errors.Is(err, ErrMalformed) {
					t.Fatalf("prefix of %d bytes: %v", n, err)
				}
			}
		})
	}
}

// TestUnsupportedAlgorithms: RSA signatures and P-384 keys are refused,
// and a chain of one suite does not verify against the other suite's root.
func TestUnsupportedAlgorithms(t *testing.T) {
	p := newPKI(t, trust.SuiteP256)
	e := newPKI(t, trust.SuiteEd25519)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	selfRSA := issue(t, tmpl("rsa", true), tmpl("rsa", true), rsaKey.Public(), rsaKey)
	k384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384 := issue(t, tmpl("p384", false), p.caCert, k384.Public(), p.caSigner)
	var c Certificate
	if err := Parse(selfRSA.Raw, &c); !errors.Is(err, ErrUnsupportedAlgorithm) {
		t.Errorf("RSA: %v", err)
	}
	if err := Parse(p384.Raw, &c); !errors.Is(err, ErrUnsupportedAlgorithm) {
		t.Errorf("P-384 key: %v", err)
	}
	if err := VerifyChain(ders(p.device, p.caCert), e.root, SuiteEd25519, 0); !errors.Is(err, ErrUnsupportedAlgorithm) {
		t.Errorf("p256 chain, ed25519 root: %v", err)
	}
	// A leaf signed with a key of the other algorithm than its issuer's.
	parent := *e.caCert
	parent.PublicKey = p.caSigner.Public()
	mixed := issue(t, tmpl("mixed", false), &parent, e.newKey(t).Public(), p.caSigner)
	if err := VerifyChain(ders(mixed, e.caCert), e.root, SuiteEd25519, 0); !errors.Is(err, ErrUnsupportedAlgorithm) {
		t.Errorf("ES256 signature under an Ed25519 CA: %v", err)
	}
}

// TestTime checks the UTCTime and GeneralizedTime conversion against the
// time package, and the malformed forms.
func TestTime(t *testing.T) {
	for _, tc := range []struct {
		tag  byte
		s    string
		want time.Time
	}{
		{tagUTCTime, "700101000000Z", time.Unix(0, 0)},
		{tagUTCTime, "491231235959Z", time.Date(2049, 12, 31, 23, 59, 59, 0, time.UTC)},
		{tagUTCTime, "240229120000Z", time.Date(2024, 2, 29, 12, 0, 0, 0, time.UTC)},
		{tagGeneralizedTime, "20500101000000Z", time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC)},
		{tagGeneralizedTime, "99991231235959Z", time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)},
		{tagGeneralizedTime, "21000301000000Z", time.Date(2100, 3, 1, 0, 0, 0, 0, time.UTC)},
		{tagUTCTime, "500101000000Z", time.Unix(0, 0)}, // 1950: before the epoch reads as 0
	} {
		r := reader{b: append([]byte{tc.tag, byte(len(tc.s))}, tc.s...)}
		if got := r.time(); r.err != nil || got != uint64(tc.want.Unix()) {
			t.Errorf("%s: %d %v, want %d", tc.s, got, r.err, tc.want.Unix())
		}
	}
	for _, s := range []string{"230229000000Z", "251301000000Z", "250100000000Z", "250101240000Z", "250101006000Z",
		"250101000060Z", "2501010000Z", "250101000000+", "25010100000aZ", "2501010000000Z"} {
		r := reader{b: append([]byte{tagUTCTime, byte(len(s))}, s...)}
		if r.time(); !errors.Is(r.err, ErrMalformed) {
			t.Errorf("%s accepted", s)
		}
	}
	// Every day from 1970 to 2200 agrees with the time package.
	for d := time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC); d.Year() < 2200; d = d.AddDate(0, 0, 1) {
		if got := daysSinceEpoch(uint64(d.Year()), uint64(d.Month()), uint64(d.Day())); got*86400 != uint64(d.Unix()) {
			t.Fatalf("%v: %d days", d, got)
		}
	}
}

// TestDERLengths checks the length rules of the reader.
func TestDERLengths(t *testing.T) {
	long := make([]byte, 200)
	for _, tc := range []struct {
		in []byte
		ok bool
	}{
		{[]byte{0x04, 0x00}, true},
		{append([]byte{0x04, 0x81, 200}, long...), true},
		{append([]byte{0x04, 0x81, 0x05}, long[:5]...), false},  // long form below 128
		{append([]byte{0x04, 0x82, 0x00, 200}, long...), false}, // leading zero
		{append([]byte{0x04, 0x80}, long...), false},            // indefinite
		{[]byte{0x04, 0x84, 1, 0, 0, 0}, false},                 // too many length bytes
		{append([]byte{0x04, 0x81, 201}, long...), false},       // longer than the input
		{[]byte{0x1f, 0x01, 0x00}, false},                       // high tag number form
		{append([]byte{0x04, 0x82, 0x01, 0x00}, make([]byte, 256)...), true},
	} {
		r := reader{b: tc.in}
		r.content(tagOctetString)
		if (r.err == nil) != tc.ok {
			t.Errorf("% x…: err %v, want ok %v", tc.in[:min(4, len(tc.in))], r.err, tc.ok)
		}
	}
}
