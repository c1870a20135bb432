//go:build !tinygo && !sbm_smallaes

package secpkg

import (
	"crypto/aes"
	"crypto/cipher"
)

// newGCM is crypto/aes and crypto/cipher's GCM on the host
// (internal/smallaes in the firmware).
func newGCM(key []byte) (opener, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return stdGCM{g}, nil
}

// stdGCM is a cipher.AEAD as an opener.
type stdGCM struct{ aead cipher.AEAD }

func (g stdGCM) Open(dst []byte, nonce *[12]byte, ciphertext, additionalData []byte) ([]byte, error) {
	return g.aead.Open(dst, nonce[:], ciphertext, additionalData)
}
