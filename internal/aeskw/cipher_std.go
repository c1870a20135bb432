//go:build !tinygo && !sbm_smallaes

package aeskw

import (
	"crypto/aes"
	"crypto/cipher"
)

// newCipher is crypto/aes on the host (internal/smallaes in the firmware).
func newCipher(key []byte) (cipher.Block, error) { return aes.NewCipher(key) }
