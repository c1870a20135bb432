//go:build tinygo && sbmfw_ed25519

package main

const variant = "ed25519"

// run exercises only the Ed25519 suite's primitives (with SHA-256).
func run() bool { return ed25519Check() }
