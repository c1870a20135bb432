// Package newgo is a fixture for TestToolchainCatchesViolations: it uses
// standard-library API added in Go 1.25 and a Go 1.26 language feature,
// none of which the firmware toolchain (Go 1.24) has.
package newgo

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"sync"
)

// Parse uses ecdsa.ParseUncompressedPublicKey (Go 1.25).
func Parse(b []byte) (*ecdsa.PublicKey, error) {
	return ecdsa.ParseUncompressedPublicKey(elliptic.P256(), b)
}

// Encode uses ecdsa.PublicKey.Bytes (Go 1.25).
func Encode(k *ecdsa.PublicKey) ([]byte, error) { return k.Bytes() }

// Run uses sync.WaitGroup.Go (Go 1.25).
func Run(wg *sync.WaitGroup, f func()) { wg.Go(f) }

// Answer uses new with an expression (Go 1.26).
func Answer() *int { return new(42) }

// Big overflows the 32-bit int of the Cortex-M.
var Big int = 1 << 40
