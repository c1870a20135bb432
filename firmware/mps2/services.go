//go:build tinygo && mps2_an385 && sbmfw_board

package main

import "C"

import (
	"encoding/binary"
	"unsafe"
)

// BootInfoSize is the size of the boot-information record sbm_boot_info
// writes (firmware/app/sbm_services.h, struct sbm_boot_info):
//
//	0   device ID, 16 bytes
//	16  security counter, uint32 little-endian
//	20  lifecycle, last update result, updated this boot (0/1), 0
//	24  SBM version, 16 bytes NUL-padded
//	40  application version, 32 bytes NUL-padded
const BootInfoSize = 72

// sbmBootInfo is the boot-info runtime service (sbm.Services.BootInfo),
// called by the native application through the service table. It writes
// the record into buf and returns its size, or -1 if len is too small,
// -2 if no application was launched. It runs on the application's stack
// and allocates nothing.
//
//export sbm_boot_info
func sbmBootInfo(buf *byte, n uint32) int32 {
	if n < BootInfoSize || buf == nil {
		return -1
	}
	app := launched
	if app == nil || app.Services == nil {
		return -2
	}
	bi := app.Services.BootInfo()
	b := unsafe.Slice(buf, BootInfoSize)
	for i := range b {
		b[i] = 0
	}
	copy(b[0:16], bi.DeviceID[:])
	binary.LittleEndian.PutUint32(b[16:], bi.SecurityCounter)
	b[20] = bi.Lifecycle
	b[21] = bi.LastUpdate
	if bi.UpdatedThisBoot {
		b[22] = 1
	}
	copy(b[24:39], bi.SBMVersion)
	copy(b[40:71], bi.AppVersion)
	return BootInfoSize
}
