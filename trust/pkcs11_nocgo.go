//go:build !cgo

package trust

// openToken fails: PKCS#11 modules are C libraries, loaded through cgo.
func openToken(*PKCS11URI, func() ([]byte, error)) (tokenStore, error) {
	return nil, ErrNoCgo
}
