//go:build tinygo && sbmfw_p256

package main

const variant = "p256"

// run exercises only the P-256 suite's primitives (with SHA-256).
func run() bool { return p256Check() }
