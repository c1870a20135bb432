//go:build tinygo || sbm_smallaes

package secpkg

import "github.com/sbm-project/sbm/internal/smallaes"

// newGCM is the AES-GCM of the firmware build: internal/smallaes, without
// crypto/aes's round tables (tag sbm_smallaes selects it on the host).
func newGCM(key []byte) (opener, error) {
	g, err := smallaes.NewGCM(key)
	if err != nil {
		return nil, err
	}
	return g, nil
}
