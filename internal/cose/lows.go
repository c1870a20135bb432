package cose

// Low-S ECDSA signatures (docs/spec/package.md §2). An ECDSA signature
// (r, s) and (r, n − s) both verify, so an ES256 COSE_Sign1 would have two
// valid encodings with different digests. The format allows only the one
// with s ≤ n/2: signers normalise, verifiers refuse the other.

// p256HalfOrder is ⌊n/2⌋ for the order n of the P-256 group, big-endian.
var p256HalfOrder = [32]byte{
	0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00,
	0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xde, 0x73, 0x7d, 0x56, 0xd3, 0x8b, 0xcf, 0x42,
	0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8,
}

// p256Order is the order n of the P-256 group, big-endian.
var p256Order = [32]byte{
	0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84,
	0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
}

// IsLowS reports whether the 64-byte ES256 signature r ‖ s has
// s ≤ ⌊n/2⌋, n being the order of P-256. It reports false for a signature
// of another length.
func IsLowS(sig []byte) bool {
	if len(sig) != SignatureSize {
		return false
	}
	return compare32(sig[32:], p256HalfOrder[:]) <= 0
}

// NormalizeLowS replaces s by n − s in the 64-byte ES256 signature r ‖ s
// if s > ⌊n/2⌋, so that the signature is the low-S one of the pair that
// verifies. The result verifies exactly when the input does. A signature of
// another length, or with s ≥ n (which verifies with no key), is left
// unchanged.
func NormalizeLowS(sig []byte) {
	if len(sig) != SignatureSize || IsLowS(sig) || compare32(sig[32:], p256Order[:]) >= 0 {
		return
	}
	s := sig[32:]
	var borrow uint16
	for i := 31; i >= 0; i-- {
		d := uint16(p256Order[i]) - uint16(s[i]) - borrow
		s[i] = byte(d)
		borrow = (d >> 8) & 1
	}
}

// compare32 compares two 32-byte big-endian numbers like bytes.Compare.
func compare32(a, b []byte) int {
	for i := 0; i < 32; i++ {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}
