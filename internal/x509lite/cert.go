// Package x509lite is a minimal, bounded DER reader for X.509 certificates
// and a certificate-chain validator for the device side (the SBM's "validate
// a certificate chain" service).
//
// It understands what a device needs to check a chain issued by its OEM or a
// server it talks to: the TBSCertificate bytes, the signature algorithm
// (ecdsa-with-SHA256 or Ed25519 only), the signature, the issuer and subject
// Names as raw bytes (compared byte for byte), the validity period, the
// subject public key (P-256 uncompressed point or Ed25519), and the basic
// constraints (with the path length), key usage and extended key usage
// extensions. Everything else is skipped, except that an unknown critical
// extension is refused.
//
// x509lite is device-side code: standard library only (no encoding/asn1,
// no crypto/x509, no reflection, no fmt, no goroutines); it never copies a
// certificate and holds at most MaxChainLength parsed certificates.
package x509lite

// Limits.
const (
	// MaxCertificateSize is the largest certificate (DER) accepted.
	MaxCertificateSize = 4096
	// MaxChainLength is the most certificates in a chain.
	MaxChainLength = 4
)

// Algorithm is a signature or public-key algorithm.
type Algorithm uint8

// Supported algorithms.
const (
	// ECDSAP256 is ecdsa-with-SHA256 for signatures, id-ecPublicKey on
	// prime256v1 for keys.
	ECDSAP256 Algorithm = 1
	// Ed25519 is Ed25519 (RFC 8410) for signatures and keys.
	Ed25519 Algorithm = 2
)

// Key usage bits (RFC 5280 §4.2.1.3) as KeyUsage holds them: bit n of the
// BIT STRING is 1<<n.
const (
	KeyUsageDigitalSignature uint16 = 1 << 0
	KeyUsageKeyCertSign      uint16 = 1 << 5
	KeyUsageCRLSign          uint16 = 1 << 6
)

// Certificate is a parsed certificate. Its byte slices alias the DER given
// to Parse.
type Certificate struct {
	// Raw is the whole certificate, TBS the TBSCertificate it signs.
	Raw, TBS []byte
	// SignatureAlgorithm is how the issuer signed TBS; Signature is the
	// signature (DER ECDSA-Sig-Value for ECDSAP256, 64 bytes for Ed25519).
	SignatureAlgorithm Algorithm
	Signature          []byte
	// Issuer and Subject are the raw DER Names (tag included).
	Issuer, Subject []byte
	// NotBefore and NotAfter are the validity period in epoch seconds.
	NotBefore, NotAfter uint64
	// KeyAlgorithm and PublicKey are the subject's key: a 65-byte
	// uncompressed P-256 point or a 32-byte Ed25519 key.
	KeyAlgorithm Algorithm
	PublicKey    []byte
	// HasBasicConstraints and IsCA are the basic constraints extension.
	HasBasicConstraints, IsCA bool
	// HasPathLen and PathLen are the basic constraints' pathLenConstraint:
	// the most non-leaf CA certificates that may follow this one down a
	// chain.
	HasPathLen bool
	PathLen    uint16
	// HasKeyUsage and KeyUsage are the key usage extension.
	HasKeyUsage bool
	KeyUsage    uint16
	// HasExtKeyUsage and ExtKeyUsage are the extended key usage extension
	// (ExtKeyUsage* bits; purposes x509lite does not know set no bit).
	HasExtKeyUsage bool
	ExtKeyUsage    uint8
}

// Extended key usage purposes (RFC 5280 §4.2.1.12) as ExtKeyUsage holds
// them.
const (
	// ExtKeyUsageAny is anyExtendedKeyUsage (2.5.29.37.0).
	ExtKeyUsageAny uint8 = 1 << iota
	// ExtKeyUsageServerAuth is id-kp-serverAuth (1.3.6.1.5.5.7.3.1).
	ExtKeyUsageServerAuth
	// ExtKeyUsageClientAuth is id-kp-clientAuth (1.3.6.1.5.5.7.3.2).
	ExtKeyUsageClientAuth
)

// DER encodings of the object identifiers x509lite knows.
var (
	oidECDSASHA256 = []byte{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02} // 1.2.840.10045.4.3.2
	oidEd25519     = []byte{0x2b, 0x65, 0x70}                               // 1.3.101.112
	oidECPublicKey = []byte{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01}       // 1.2.840.10045.2.1
	oidP256        = []byte{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07} // 1.2.840.10045.3.1.7
	oidBasicConstr = []byte{0x55, 0x1d, 0x13}                               // 2.5.29.19
	oidKeyUsage    = []byte{0x55, 0x1d, 0x0f}                               // 2.5.29.15
	oidExtKeyUsage = []byte{0x55, 0x1d, 0x25}                               // 2.5.29.37
	oidEKUAny      = []byte{0x55, 0x1d, 0x25, 0x00}                         // 2.5.29.37.0
	oidServerAuth  = []byte{0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01} // 1.3.6.1.5.5.7.3.1
	oidClientAuth  = []byte{0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02} // 1.3.6.1.5.5.7.3.2
)

// Parse parses one DER certificate, which must be exactly der (no
// trailing bytes) and at most MaxCertificateSize bytes.
func Parse(der []byte, c *Certificate) error {
	*c = Certificate{}
	if len(der) > MaxCertificateSize {
		return ErrTooLarge
	}
	top := reader{b: der}
	raw, body := top.next(tagSequence)
	if top.err != nil {
		return top.err
	}
	if !top.empty() {
		return ErrMalformed
	}
	c.Raw = raw
	r := reader{b: body}
	c.TBS, _ = r.next(tagSequence)
	sigAlg, _ := r.next(tagSequence)
	c.Signature = r.bitString()
	if r.err != nil {
		return r.err
	}
	if !r.empty() {
		return ErrMalformed
	}
	alg, err := signatureAlgorithm(sigAlg)
	if err != nil {
		return err
	}
	c.SignatureAlgorithm = alg
	if alg == Ed25519 && len(c.Signature) != 64 {
		return ErrMalformed
	}
	return c.parseTBS(sigAlg)
}

// parseTBS parses the TBSCertificate; sigAlg is the outer
// AlgorithmIdentifier, which the inner one must equal.
func (c *Certificate) parseTBS(sigAlg []byte) error {
	tbs := reader{b: tbsContent(c.TBS)}
	if tbs.peek() == tagVersion {
		v := tbs.sub(tagVersion)
		ver := v.content(tagInteger)
		tbs.done(&v)
		if tbs.err == nil && (len(ver) != 1 || ver[0] > 2) {
			return ErrMalformed
		}
	}
	serial := tbs.content(tagInteger)
	if tbs.err == nil && (len(serial) == 0 || len(serial) > 21) {
		return ErrMalformed
	}
	inner, _ := tbs.next(tagSequence)
	if tbs.err == nil && !equal(inner, sigAlg) {
		return ErrMalformed
	}
	c.Issuer, _ = tbs.next(tagSequence)
	validity := tbs.sub(tagSequence)
	c.NotBefore = validity.time()
	c.NotAfter = validity.time()
	tbs.done(&validity)
	c.Subject, _ = tbs.next(tagSequence)
	spki := tbs.sub(tagSequence)
	if err := c.parseKey(&spki); err != nil {
		return err
	}
	tbs.done(&spki)
	if tbs.peek() == tagIssuerUID {
		tbs.next(tagIssuerUID)
	}
	if tbs.peek() == tagSubjectUID {
		tbs.next(tagSubjectUID)
	}
	if tbs.peek() == tagExtensions {
		ext := tbs.sub(tagExtensions)
		list := ext.sub(tagSequence)
		tbs.done(&ext) // [3] holds exactly the Extensions SEQUENCE
		if tbs.err != nil {
			return tbs.err
		}
		if err := c.parseExtensions(&list); err != nil {
			return err
		}
	}
	if tbs.err != nil {
		return tbs.err
	}
	if !tbs.empty() {
		return ErrMalformed
	}
	return nil
}

// tbsContent returns the contents of the TBSCertificate element tbs.
func tbsContent(tbs []byte) []byte {
	r := reader{b: tbs}
	return r.content(tagSequence)
}

// signatureAlgorithm decodes a signature AlgorithmIdentifier (full
// encoding). Parameters must be absent for both algorithms.
func signatureAlgorithm(full []byte) (Algorithm, error) {
	r := reader{b: full}
	a := r.sub(tagSequence)
	oid := a.content(tagOID)
	if a.err != nil || !a.empty() {
		return 0, ErrUnsupportedAlgorithm
	}
	switch {
	case equal(oid, oidECDSASHA256):
		return ECDSAP256, nil
	case equal(oid, oidEd25519):
		return Ed25519, nil
	}
	return 0, ErrUnsupportedAlgorithm
}

// parseKey parses the contents of a SubjectPublicKeyInfo.
func (c *Certificate) parseKey(spki *reader) error {
	alg := spki.sub(tagSequence)
	oid := alg.content(tagOID)
	key := spki.bitString()
	if spki.err != nil || alg.err != nil {
		return ErrMalformed
	}
	switch {
	case equal(oid, oidECPublicKey):
		curve := alg.content(tagOID)
		if alg.err != nil || !alg.empty() || !equal(curve, oidP256) {
			return ErrUnsupportedAlgorithm
		}
		if len(key) != 65 || key[0] != 4 {
			return ErrUnsupportedAlgorithm
		}
		c.KeyAlgorithm = ECDSAP256
	case equal(oid, oidEd25519):
		if !alg.empty() {
			return ErrUnsupportedAlgorithm
		}
		if len(key) != 32 {
			return ErrMalformed
		}
		c.KeyAlgorithm = Ed25519
	default:
		return ErrUnsupportedAlgorithm
	}
	c.PublicKey = key
	return nil
}

// parseExtensions parses the contents of the Extensions SEQUENCE.
func (c *Certificate) parseExtensions(list *reader) error {
	for !list.empty() {
		e := list.sub(tagSequence)
		oid := e.content(tagOID)
		critical := false
		if e.peek() == tagBoolean {
			b := e.content(tagBoolean)
			if e.err == nil && (len(b) != 1 || b[0] != 0xff) {
				// DER: DEFAULT FALSE is omitted, TRUE is 0xff.
				return ErrMalformed
			}
			critical = true
		}
		value := e.content(tagOctetString)
		list.done(&e)
		if list.err != nil {
			return list.err
		}
		switch {
		case equal(oid, oidBasicConstr):
			if c.HasBasicConstraints {
				return ErrCriticalExtension
			}
			c.HasBasicConstraints = true
			if err := c.parseBasicConstraints(value); err != nil {
				return err
			}
		case equal(oid, oidKeyUsage):
			if c.HasKeyUsage {
				return ErrCriticalExtension
			}
			c.HasKeyUsage = true
			if err := c.parseKeyUsage(value); err != nil {
				return err
			}
		case equal(oid, oidExtKeyUsage):
			if c.HasExtKeyUsage {
				return ErrCriticalExtension
			}
			c.HasExtKeyUsage = true
			if err := c.parseExtKeyUsage(value); err != nil {
				return err
			}
		case critical:
			return ErrCriticalExtension
		}
	}
	return list.err
}

// parseBasicConstraints parses BasicConstraints ::= SEQUENCE { cA BOOLEAN
// DEFAULT FALSE, pathLenConstraint INTEGER OPTIONAL }.
func (c *Certificate) parseBasicConstraints(value []byte) error {
	r := reader{b: value}
	s := r.sub(tagSequence)
	if s.peek() == tagBoolean {
		b := s.content(tagBoolean)
		if s.err == nil && (len(b) != 1 || b[0] != 0xff) {
			return ErrMalformed
		}
		c.IsCA = true
	}
	if s.peek() == tagInteger {
		n := s.content(tagInteger)
		if s.err == nil && (len(n) == 0 || len(n) > 2 || n[0]&0x80 != 0) {
			return ErrMalformed
		}
		if s.err == nil {
			c.HasPathLen = true
			for _, b := range n {
				c.PathLen = c.PathLen<<8 | uint16(b)
			}
		}
	}
	r.done(&s)
	if r.err != nil || !r.empty() {
		return ErrMalformed
	}
	return nil
}

// parseExtKeyUsage parses ExtKeyUsageSyntax ::= SEQUENCE SIZE (1..MAX) OF
// KeyPurposeId (OBJECT IDENTIFIER).
func (c *Certificate) parseExtKeyUsage(value []byte) error {
	r := reader{b: value}
	s := r.sub(tagSequence)
	if r.err == nil && s.empty() {
		return ErrMalformed
	}
	for r.err == nil && s.err == nil && !s.empty() {
		oid := s.content(tagOID)
		switch {
		case equal(oid, oidEKUAny):
			c.ExtKeyUsage |= ExtKeyUsageAny
		case equal(oid, oidServerAuth):
			c.ExtKeyUsage |= ExtKeyUsageServerAuth
		case equal(oid, oidClientAuth):
			c.ExtKeyUsage |= ExtKeyUsageClientAuth
		}
	}
	r.done(&s)
	if r.err != nil || !r.empty() {
		return ErrMalformed
	}
	return nil
}

// parseKeyUsage parses KeyUsage ::= BIT STRING (at most 9 bits used).
func (c *Certificate) parseKeyUsage(value []byte) error {
	r := reader{b: value}
	b := r.content(tagBitString)
	if r.err != nil || !r.empty() || len(b) < 2 || len(b) > 3 || b[0] > 7 {
		return ErrMalformed
	}
	var u uint16
	for i := 0; i < 9 && i < (len(b)-1)*8; i++ {
		if b[1+i/8]&(0x80>>(i%8)) != 0 {
			u |= 1 << i
		}
	}
	c.KeyUsage = u
	return nil
}
