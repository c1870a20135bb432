//go:build tinygo && (sbmfw_ed25519 || sbmfw_p256)

package main

// suiteChecks is not used by the one-suite variants.
func suiteChecks() bool { return true }
