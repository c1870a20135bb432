package cose

// Conversion between the COSE ES256 signature encoding (r ‖ s, 32 bytes
// each) and the ASN.1 DER ECDSA-Sig-Value that crypto/ecdsa and
// crypto.Signer implementations use, written by hand so that the device
// side needs no ASN.1 package.

// maxDERSize is the largest DER encoding of a P-256 signature:
// 30 len (02 21 00 r) (02 21 00 s).
const maxDERSize = 2 + 2*(2+33)

// appendDER appends the DER encoding of the 64-byte raw signature sig.
func appendDER(dst, sig []byte) []byte {
	r, s := derInt(sig[:32]), derInt(sig[32:])
	rl, sl := len(r)+derPad(r), len(s)+derPad(s)
	dst = append(dst, 0x30, byte(4+rl+sl))
	dst = appendDERInt(dst, r)
	return appendDERInt(dst, s)
}

// derInt strips leading zero bytes, keeping at least one byte.
func derInt(b []byte) []byte {
	for len(b) > 1 && b[0] == 0 {
		b = b[1:]
	}
	return b
}

// derPad is 1 if a positive integer with big-endian bytes b needs a leading
// zero byte in DER.
func derPad(b []byte) int {
	if b[0]&0x80 != 0 {
		return 1
	}
	return 0
}

func appendDERInt(dst, b []byte) []byte {
	dst = append(dst, 0x02, byte(len(b)+derPad(b)))
	if derPad(b) == 1 {
		dst = append(dst, 0)
	}
	return append(dst, b...)
}

// rawFromDER converts a DER ECDSA-Sig-Value with P-256-sized integers into
// the 64-byte r ‖ s form. It reports false for anything else.
func rawFromDER(der []byte) (raw [SignatureSize]byte, ok bool) {
	if len(der) < 2 || der[0] != 0x30 || int(der[1]) != len(der)-2 || der[1] >= 0x80 {
		return raw, false
	}
	rest := der[2:]
	for i := 0; i < 2; i++ {
		if len(rest) < 2 || rest[0] != 0x02 || rest[1] == 0 || rest[1] >= 0x80 || int(rest[1]) > len(rest)-2 {
			return raw, false
		}
		v := rest[2 : 2+int(rest[1])]
		rest = rest[2+int(rest[1]):]
		if v[0]&0x80 != 0 { // negative
			return raw, false
		}
		if len(v) > 1 && v[0] == 0 {
			if v[1]&0x80 == 0 { // non-minimal
				return raw, false
			}
			v = v[1:]
		}
		if len(v) > 32 {
			return raw, false
		}
		copy(raw[32*i+32-len(v):32*i+32], v)
	}
	return raw, len(rest) == 0
}
