package vmcu

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/sbm-project/sbm/hal"
)

// Placeholder returns the boot firmware the simulator runs until a Secure
// Boot Manager exists: it reads the SBM region, finds nothing it can boot,
// says so on the boot log and the UART ("sbm: no boot firmware installed",
// or a note that the region is programmed but not runnable) and waits,
// repeating the message whenever bytes arrive on the UART.
func Placeholder() Firmware { return FirmwareFunc(placeholder) }

func placeholder(ctx context.Context, hw *hal.Hardware) {
	msg := "sbm: no boot firmware installed\r\n"
	g := hw.Flash.Geometry()
	if r, ok := g.Region(hal.RegionSBM); ok {
		h := sha256.New()
		buf := make([]byte, 4096)
		programmed := false
		for a := r.Start; a < r.End(); a += uint32(len(buf)) {
			n := min(uint32(len(buf)), r.End()-a)
			if err := hw.Flash.Read(a, buf[:n]); err != nil {
				msg = "sbm: cannot read the boot firmware region: " + err.Error() + "\r\n"
				break
			}
			h.Write(buf[:n])
			for _, b := range buf[:n] {
				if b != g.Erased {
					programmed = true
					break
				}
			}
		}
		if programmed {
			msg = "sbm: boot firmware region is programmed (sha256 " + hex.EncodeToString(h.Sum(nil))[:16] +
				"...) but the simulator has no firmware to run it\r\n"
		}
	}
	if hw.System.RecoveryPin() {
		msg = "sbm: recovery pin held\r\n" + msg
	}
	hw.Log.Write([]byte(msg))
	hw.UART.Write([]byte(msg))
	buf := make([]byte, 256)
	for ctx.Err() == nil {
		n, _ := hw.UART.Read(buf, time.Second)
		if n > 0 {
			hw.UART.Write([]byte(msg))
		}
	}
}
