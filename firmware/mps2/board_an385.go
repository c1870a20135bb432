//go:build tinygo && mps2_an385

package main

// boardName names the board the firmware is built for.
const boardName = "mps2-an385 (Cortex-M3)"
