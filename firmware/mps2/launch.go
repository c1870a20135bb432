//go:build tinygo && mps2_an385 && sbmfw_board

package main

/*
#include <stdint.h>

// The runtime-service table the SBM writes at chip.ServicesAddr before it
// jumps into the application (docs/silicon.md, "The native application";
// firmware/app/sbm_services.h is the application's side).
typedef struct {
	uint32_t magic;   // "SBMS" (0x534d4253 little-endian)
	uint32_t version; // 1
	uint32_t count;   // number of entries below
	int32_t (*boot_info)(uint8_t *buf, uint32_t len);
} sbm_services_t;

int32_t sbm_boot_info(uint8_t *buf, uint32_t len); // services.go

static void sbm_install_services(uint32_t addr) {
	sbm_services_t *t = (sbm_services_t *)addr;
	t->magic = 0x534d4253;
	t->version = 1;
	t->count = 1;
	t->boot_info = sbm_boot_info;
}
*/
import "C"

import (
	"crypto/sha256"
	"encoding/hex"
	"unsafe"

	"device/arm"

	"github.com/sbm-project/sbm/firmware/mps2/chip"
	"github.com/sbm-project/sbm/sbm"
)

// launched is the application the SBM verified and launched; the runtime
// services answer for it.
var launched *sbm.AppInfo

// launch is the SBM's Options.Launch: it checks that the verified image
// starts with a Cortex-M vector table that stays within the slot and the
// application's RAM, installs the runtime-service table, points VTOR at
// the slot and jumps to the reset handler with the application's stack.
func launch(app *sbm.AppInfo) {
	ticks := timerTicks() - bootTicks
	base := uint32(chip.FlashBase) + app.Region.Start
	vt := (*[2]uint32)(unsafe.Pointer(uintptr(base)))
	sp, pc := vt[0], vt[1]
	if app.Size < 8 || sp <= chip.AppRAMBase || sp > chip.AppRAMBase+chip.AppRAMSize || sp%8 != 0 ||
		pc&1 == 0 || pc&^1 < base+8 || pc&^1 >= base+app.Size {
		app.NotRunnable("not a Cortex-M image for this slot (vector table: sp " + hex32(sp) + ", reset " + hex32(pc) + ")")
		return
	}
	board := &theBoard
	if board.measure {
		// Boot verification against raw SHA-256 of the same bytes, in timer
		// ticks (instructions under qemu -icount shift=0: ticks × 40).
		t0 := timerTicks()
		sum := sha256.Sum256(flashMem[app.Region.Start : app.Region.Start+app.Size])
		raw := timerTicks() - t0
		println("sbm board: measure: boot to launch", ticks, "ticks; sha256 of the", app.Size, "byte application", raw,
			"ticks (", hex.EncodeToString(sum[:4]), "); ticks x", instrPerTick, "= instructions under -icount shift=0")
	}
	launched = app
	C.sbm_install_services(C.uint32_t(chip.ServicesAddr))
	println("sbm board: jumping to the application at", hex32(base), "(sp", hex32(sp)+", reset", hex32(pc)+")")
	arm.DisableInterrupts()
	arm.SCB.VTOR.Set(base)
	arm.AsmFull(`
		msr msp, {sp}
		msr control, {zero}
		isb
		bx {pc}
	`, map[string]interface{}{"sp": sp, "pc": pc, "zero": uint32(0)})
}

// hex32 formats v as 0x%08x.
func hex32(v uint32) string {
	const digits = "0123456789abcdef"
	var b [10]byte
	b[0], b[1] = '0', 'x'
	for i := 9; i >= 2; i-- {
		b[i] = digits[v&15]
		v >>= 4
	}
	return string(b[:])
}
