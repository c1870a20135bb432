package trust

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sbm-project/sbm/internal/atomicfile"
)

// ServiceRole is the role a certificate of the OEM service names: the
// service's own TLS server, an OEM operator using its management API, or a
// contract manufacturer's provisioning station.
//
// Service certificates are issued by the context's device CA, so every
// party of the service trusts one anchor (the device CA certificate, with
// the root above it). The role is a subjectAltName URI
// urn:sbm:service:ROLE; device certificates, which the same CA issues,
// carry no such URI and so have no service role: the service refuses them
// wherever it asks for a role.
type ServiceRole string

// The service roles.
const (
	RoleServer   ServiceRole = "server"
	RoleOperator ServiceRole = "operator"
	RoleStation  ServiceRole = "station"
)

// serviceRoleURI prefixes the subjectAltName URI naming a service role.
const serviceRoleURI = "urn:sbm:service:"

// Validities of service certificates: the server's is issued at each
// start, the others are kept in files.
const (
	ServerCertValidity     = 90 * 24 * time.Hour
	CredentialCertValidity = 2 * 365 * 24 * time.Hour
)

// ErrNoServiceRole is returned for a certificate that names no service
// role, or another one than required.
var ErrNoServiceRole = errors.New("certificate does not have the required service role")

// OperatorDir is the context directory holding the OEM operator's
// credential (operator.crt, operator.key) for the service's management
// API.
const OperatorDir = "service"

// ServiceCredential is a service certificate and its private key.
type ServiceCredential struct {
	Certificate *x509.Certificate
	// Chain is the issuing CA's certificate, sent after the leaf in TLS.
	Chain []*x509.Certificate
	Key   crypto.Signer
}

// TLSCertificate returns the credential for tls.Config.Certificates.
func (sc *ServiceCredential) TLSCertificate() tls.Certificate {
	tc := tls.Certificate{PrivateKey: sc.Key, Leaf: sc.Certificate, Certificate: [][]byte{sc.Certificate.Raw}}
	for _, c := range sc.Chain {
		tc.Certificate = append(tc.Certificate, c.Raw)
	}
	return tc
}

// Digest returns the SHA-256 of the certificate's DER encoding, by which
// orders name stations.
func (sc *ServiceCredential) Digest() [32]byte { return sha256.Sum256(sc.Certificate.Raw) }

// Save writes DIR/NAME.crt (the certificate and its CA, PEM) and
// DIR/NAME.key (PKCS#8 PEM, mode 0600, encrypted with passphrase unless it
// is empty). Neither file may exist yet.
func (sc *ServiceCredential) Save(dir, name string, passphrase []byte) error {
	key, err := MarshalPrivateKey(sc.Key, passphrase)
	if err != nil {
		return fmt.Errorf("service credential: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("service credential: %w", err)
	}
	keyPath := filepath.Join(dir, name+".key")
	if err := atomicfile.Create(keyPath, key, 0o600); err != nil {
		return fmt.Errorf("service credential: %w", err)
	}
	if err := atomicfile.Create(filepath.Join(dir, name+".crt"), certPEM(append([]*x509.Certificate{sc.Certificate}, sc.Chain...)...), 0o644); err != nil {
		os.Remove(keyPath)
		return fmt.Errorf("service credential: %w", err)
	}
	return nil
}

// LoadServiceCredential reads DIR/NAME.crt and DIR/NAME.key as written by
// Save.
func LoadServiceCredential(dir, name string, passphrase []byte) (*ServiceCredential, error) {
	data, err := os.ReadFile(filepath.Join(dir, name+".crt"))
	if err != nil {
		return nil, fmt.Errorf("service credential: %w", err)
	}
	certs, err := ParseCertificatesPEM(data)
	if err != nil || len(certs) == 0 {
		return nil, fmt.Errorf("service credential %s: no certificate (%v)", filepath.Join(dir, name+".crt"), err)
	}
	key, err := LoadSigner(filepath.Join(dir, name+".key"), passphrase)
	if err != nil {
		return nil, fmt.Errorf("service credential: %w", err)
	}
	if !publicKeysEqual(key.Public(), certs[0].PublicKey) {
		return nil, fmt.Errorf("service credential %s: the key does not match the certificate", filepath.Join(dir, name))
	}
	return &ServiceCredential{Certificate: certs[0], Chain: certs[1:], Key: key}, nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

// IssueServiceCertificate makes a new key of the context's suite and
// certifies it with the device CA for role. name is the subject's common
// name (a station's name); hosts (DNS names or IP addresses) are added to a
// server certificate.
func (c *Context) IssueServiceCertificate(role ServiceRole, name string, hosts []string, validity time.Duration) (*ServiceCredential, error) {
	var usage x509.ExtKeyUsage
	switch role {
	case RoleServer:
		usage = x509.ExtKeyUsageServerAuth
	case RoleOperator, RoleStation:
		usage = x509.ExtKeyUsageClientAuth
	default:
		return nil, fmt.Errorf("unknown service role %q", role)
	}
	if name == "" || strings.ContainsAny(name, "/\\\x00") {
		return nil, fmt.Errorf("service certificate: bad name %q", name)
	}
	ca, err := c.Signer(DeviceCAKey)
	if err != nil {
		return nil, err
	}
	key, err := c.Suite().GenerateSigningKey()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject: pkix.Name{CommonName: name, Organization: c.DeviceCACertificate().Subject.Organization,
			OrganizationalUnit: []string{"sbm service " + string(role)}},
		NotBefore:          now.Add(-time.Hour),
		NotAfter:           now.Add(validity),
		KeyUsage:           x509.KeyUsageDigitalSignature,
		ExtKeyUsage:        []x509.ExtKeyUsage{usage},
		URIs:               []*url.URL{{Scheme: "urn", Opaque: "sbm:service:" + string(role)}},
		SignatureAlgorithm: sigAlgFor(ca.Public()),
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.DeviceCACertificate(), key.Public(), ca)
	if err != nil {
		return nil, fmt.Errorf("issue %s certificate: %w", role, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("issue %s certificate: %w", role, err)
	}
	return &ServiceCredential{Certificate: cert, Chain: []*x509.Certificate{c.DeviceCACertificate()}, Key: key}, nil
}

// ServiceRoleOf returns the service role a certificate names, or "".
func ServiceRoleOf(cert *x509.Certificate) ServiceRole {
	var role ServiceRole
	for _, u := range cert.URIs {
		if s := u.String(); strings.HasPrefix(s, serviceRoleURI) {
			if role != "" {
				return "" // two roles: none
			}
			role = ServiceRole(strings.TrimPrefix(s, serviceRoleURI))
		}
	}
	return role
}

// ServiceCAPool returns the pool that service certificates verify against:
// the context's device CA certificate.
func (c *Context) ServiceCAPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.DeviceCACertificate())
	return p
}

// VerifyServiceCertificate checks that chain[0] was issued by the
// context's device CA (chain[1:] may hold the CA's certificate, as TLS peers
// send it) for use as a TLS client or server, and that it names role.
func (c *Context) VerifyServiceCertificate(chain []*x509.Certificate, role ServiceRole, now time.Time) error {
	if len(chain) == 0 {
		return errors.New("no certificate")
	}
	usage := x509.ExtKeyUsageClientAuth
	if role == RoleServer {
		usage = x509.ExtKeyUsageServerAuth
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{Roots: c.ServiceCAPool(), CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		return fmt.Errorf("certificate %q: %w", chain[0].Subject.CommonName, err)
	}
	if got := ServiceRoleOf(chain[0]); got != role {
		if got == "" {
			return fmt.Errorf("certificate %q: %w %s (it names none)", chain[0].Subject.CommonName, ErrNoServiceRole, role)
		}
		return fmt.Errorf("certificate %q: %w %s (it is a %s certificate)", chain[0].Subject.CommonName, ErrNoServiceRole, role, got)
	}
	return nil
}

// OperatorCredential returns the OEM operator's credential for the
// service's management API, kept in the context under OperatorDir and
// issued on first use (its key encrypted like the context's keys). A
// credential the current device CA no longer verifies (after a device-CA
// rotation) is replaced.
func (c *Context) OperatorCredential() (*ServiceCredential, error) {
	dir := c.Path(OperatorDir)
	pass, err := c.getPassphrase()
	if err != nil {
		return nil, err
	}
	sc, err := LoadServiceCredential(dir, "operator", pass)
	if err == nil {
		if c.VerifyServiceCertificate([]*x509.Certificate{sc.Certificate}, RoleOperator, time.Now()) == nil {
			return sc, nil
		}
		os.Remove(filepath.Join(dir, "operator.crt"))
		os.Remove(filepath.Join(dir, "operator.key"))
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	sc, err = c.IssueServiceCertificate(RoleOperator, "OEM operator", nil, CredentialCertValidity)
	if err != nil {
		return nil, err
	}
	if err := sc.Save(dir, "operator", pass); err != nil {
		return nil, err
	}
	return sc, nil
}
