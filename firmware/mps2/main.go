//go:build tinygo

// Command mps2 is the SBM firmware for QEMU's MPS2 boards, mps2-an385 (Arm
// Cortex-M3) and mps2-an505 (Cortex-M33; build tag mps2_an385 or
// mps2_an505, set by the target), built with TinyGo by scripts/firmware.sh
// (docs/silicon.md).
//
// This is phase 1 of issue 13: it links the SBM core and runs it on an
// in-RAM stand-in for the board's hardware (ramhal.go), printing to the
// semihosting console. The board's real hal (CMSDK UART, flash emulation,
// reset through the SCB) is the next phase.
//
// The build tags sbmfw_ed25519 and sbmfw_p256 select a variant that links
// only one suite's signature primitives instead of the whole SBM, to
// measure the cost of each suite's cryptography.
package main

import (
	"crypto/sha256"
	"encoding/hex"
)

// testBuffer is the built-in buffer whose SHA-256 the firmware prints.
var testBuffer = []byte("abc")

func main() {
	println("sbm firmware:", boardName+", variant", variant)
	sum := sha256.Sum256(testBuffer)
	println("sha256(\"abc\") =", hex.EncodeToString(sum[:]))
	if !run() {
		println("sbm firmware: FAIL")
		return
	}
	println("sbm core linked")
}

// check prints the outcome of one self-check and reports whether it passed.
func check(name string, ok bool) bool {
	if ok {
		println("ok  ", name)
	} else {
		println("FAIL", name)
	}
	return ok
}
