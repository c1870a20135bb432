package sbm

import "io"

// derToRaw converts an ECDSA-Sig-Value DER SEQUENCE { r INTEGER, s INTEGER }
// of P-256 into the 64-byte r ‖ s form.
func derToRaw(der []byte, out *[64]byte) bool {
	if len(der) < 8 || der[0] != 0x30 || int(der[1]) != len(der)-2 || der[1] >= 0x80 {
		return false
	}
	b := der[2:]
	for i := range 2 {
		if len(b) < 2 || b[0] != 0x02 || int(b[1]) > len(b)-2 || b[1] == 0 {
			return false
		}
		v := b[2 : 2+int(b[1])]
		b = b[2+int(b[1]):]
		for len(v) > 0 && v[0] == 0 {
			v = v[1:]
		}
		if len(v) > 32 {
			return false
		}
		copy(out[32*i+32-len(v):32*(i+1)], v)
	}
	return len(b) == 0
}

// readFull fills p from r.
func readFull(r io.Reader, p []byte) error {
	_, err := io.ReadFull(r, p)
	return err
}
