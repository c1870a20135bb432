//go:build tinygo && mps2_an505

package main

// boardName names the board the firmware is built for.
const boardName = "mps2-an505 (Cortex-M33)"
