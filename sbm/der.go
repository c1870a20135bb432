package sbm

// A tiny DER (X.690) builder: just what a PKCS#10 request needs. Every
// function appends one complete TLV to dst; constructed values are built
// from their already-encoded contents. derNext is the matching bounded
// reader, for the few certificate fields x509lite does not expose.

// DER tags.
const (
	derBoolean         = 0x01
	derInteger         = 0x02
	derBitString       = 0x03
	derOctetString     = 0x04
	derOID             = 0x06
	derUTF8String      = 0x0c
	derPrintableString = 0x13
	derSequence        = 0x30
	derSet             = 0x31
	derContext0        = 0xa0 // [0] constructed
	derContext3        = 0xa3 // [3] constructed: a certificate's extensions
	derURI             = 0x86 // [6] IMPLICIT IA5String: GeneralName uniformResourceIdentifier
)

// derTLV appends tag, the definite length of content and content.
func derTLV(dst []byte, tag byte, content ...[]byte) []byte {
	n := 0
	for _, c := range content {
		n += len(c)
	}
	dst = append(dst, tag)
	switch {
	case n < 0x80:
		dst = append(dst, byte(n))
	case n < 0x100:
		dst = append(dst, 0x81, byte(n))
	default:
		dst = append(dst, 0x82, byte(n>>8), byte(n))
	}
	for _, c := range content {
		dst = append(dst, c...)
	}
	return dst
}

// derNext splits the first element off b and returns its tag, its contents
// and the bytes after it. ok is false unless b starts with a single-byte
// tag and a minimal definite length of at most two length bytes whose
// contents fit in b. The returned slices alias b.
func derNext(b []byte) (tag byte, content, rest []byte, ok bool) {
	if len(b) < 2 {
		return 0, nil, nil, false
	}
	tag, n, hdr := b[0], int(b[1]), 2
	switch {
	case n == 0x81:
		if len(b) < 3 || b[2] < 0x80 {
			return 0, nil, nil, false
		}
		n, hdr = int(b[2]), 3
	case n == 0x82:
		if len(b) < 4 || b[2] == 0 {
			return 0, nil, nil, false
		}
		n, hdr = int(b[2])<<8|int(b[3]), 4
	case n >= 0x80:
		return 0, nil, nil, false
	}
	if n > len(b)-hdr {
		return 0, nil, nil, false
	}
	return tag, b[hdr : hdr+n], b[hdr+n:], true
}

// derSmallInt appends an INTEGER 0..127.
func derSmallInt(dst []byte, v byte) []byte { return derTLV(dst, derInteger, []byte{v}) }

// derBits appends a BIT STRING with no unused bits.
func derBits(dst []byte, p []byte) []byte { return derTLV(dst, derBitString, []byte{0}, p) }

// Encoded object identifiers (contents octets).
var (
	oidCommonName       = []byte{0x55, 0x04, 0x03}                                     // 2.5.4.3
	oidECPublicKey      = []byte{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01}             // 1.2.840.10045.2.1
	oidP256             = []byte{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}       // 1.2.840.10045.3.1.7
	oidECDSAWithSHA     = []byte{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02}       // 1.2.840.10045.4.3.2
	oidEd25519          = []byte{0x2b, 0x65, 0x70}                                     // 1.3.101.112
	oidSubjectAlt       = []byte{0x55, 0x1d, 0x11}                                     // 2.5.29.17
	oidExtensionRequest = []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x0e} // 1.2.840.113549.1.9.14 (PKCS#9)
)
