//go:build tinygo || sbm_smallaes

package aeskw

import (
	"crypto/cipher"

	"github.com/sbm-project/sbm/internal/smallaes"
)

// newCipher is the AES of the firmware build: internal/smallaes, without
// crypto/aes's round tables (tag sbm_smallaes selects it on the host).
func newCipher(key []byte) (cipher.Block, error) {
	b, err := smallaes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return b, nil
}
