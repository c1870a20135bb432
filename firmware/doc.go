// Package firmware holds the SBM built as microcontroller firmware with
// TinyGo: one directory per board family with its main package (mps2:
// QEMU's mps2-an385, Cortex-M3, and mps2-an505, Cortex-M33), built by
// scripts/firmware.sh (docs/silicon.md).
//
// The board packages are built only by TinyGo (build constraint tinygo);
// the test here builds and boots them when the firmware toolchain is
// cached and SBM_FIRMWARE_TEST=1 is set.
package firmware
