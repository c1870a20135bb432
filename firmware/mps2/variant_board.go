//go:build tinygo && mps2_an385 && sbmfw_board

package main

const variant = "board"

// run boots the SBM on the board's own hal (board.go): the CMSDK UART,
// the flash, fuses and RAM of the chip file, reset through the SCB. It
// does not return: the SBM runs the application or serves the UART.
func run() bool {
	bootBoard()
	return false
}
