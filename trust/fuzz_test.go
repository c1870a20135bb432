package trust

import (
	"crypto/x509"
	"net/url"
	"testing"
)

// FuzzParsePrivateKey feeds arbitrary bytes to the key-file parser, with
// and without a passphrase: it must never panic.
func FuzzParsePrivateKey(f *testing.F) {
	k, _ := SuiteP256.GenerateSigningKey()
	plain, _ := MarshalPrivateKey(k, nil)
	f.Add(plain)
	f.Add([]byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ParsePrivateKey(b, nil)
		ParsePrivateKey(b, []byte("pw"))
		ParsePublicKeyPEM(b)
	})
}

// FuzzParseDeviceIdentity feeds arbitrary certificates' URIs to the device
// identity parser.
func FuzzParseDeviceIdentity(f *testing.F) {
	f.Add("urn:sbm:device:00ff", "urn:sbm:ka:x25519:AAAA")
	f.Add("urn:sbm:device:zz", "urn:sbm:ka:p256:")
	f.Fuzz(func(t *testing.T, a, b string) {
		cert := &x509.Certificate{}
		for _, s := range []string{a, b} {
			if u, err := url.Parse(s); err == nil {
				cert.URIs = append(cert.URIs, u)
			}
		}
		d, err := ParseDeviceIdentity(cert)
		if err == nil && (len(d.ID) == 0 || d.KeyAgreement == nil) {
			t.Fatal("accepted an identity without an ID or key")
		}
	})
}
