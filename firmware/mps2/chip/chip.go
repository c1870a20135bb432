// Package chip is the layout of the emulated MPS2 chip that the SBM
// firmware (firmware/mps2, TinyGo) and the host tools (firmware/qemu) share:
// the board's flash geometry and memory map, and the chip file that holds
// everything the emulated silicon keeps across power cycles (docs/silicon.md,
// "The board's hal").
//
// The chip file is, in this order (all integers little-endian):
//
//	0      256 bytes   silicon: magic "SBMCHIP1", unique ID (16 bytes),
//	                   PUF secret (32 bytes), RNG seed (32 bytes), zero padding
//	256    256 bytes   fuses: hal.FuseWords words of 32 bits
//	512    FlashSize   the flash array (erased 0xFF)
//	...    RAMSize     the RAM shared with the debug port (hal.RAM): kept
//	                   across resets, zeroed by the host at power-on
//
// The firmware reads it at every boot through semihosting and writes every
// flash program and erase, fuse program and RAM write straight back to it
// (write-through), so the file is the chip's non-volatile state.
//
// chip is device-side code (standard library and hal only).
package chip

import "github.com/sbm-project/sbm/hal"

// Layout of the chip file.
const (
	// Magic starts the silicon header.
	Magic = "SBMCHIP1"
	// IDOffset is the offset of the unique device ID.
	IDOffset = 8
	// PUFOffset is the offset of the 32-byte PUF secret.
	PUFOffset = IDOffset + hal.IDSize
	// RNGOffset is the offset of the 32-byte RNG seed.
	RNGOffset = PUFOffset + 32
	// HeaderSize is the size of the silicon header.
	HeaderSize = 256
	// FuseOffset is the offset of the fuses.
	FuseOffset = HeaderSize
	// FuseSize is the size of the fuses in bytes.
	FuseSize = hal.FuseWords * 4
	// FlashOffset is the offset of the flash array.
	FlashOffset = FuseOffset + FuseSize
	// FlashSize is the size of the flash array: 2 MiB.
	FlashSize = 2 << 20
	// RAMOffset is the offset of the debug-port RAM.
	RAMOffset = FlashOffset + FlashSize
	// RAMSize is the size of hal.RAM: the provisioning mailbox at 0
	// (sbm/mailbox, up to 8 KiB) and the SBM's retained record at the end.
	RAMSize = 16 << 10
	// FileSize is the size of a chip file.
	FileSize = RAMOffset + RAMSize
)

// Flash geometry.
const (
	// SectorSize is the erase unit.
	SectorSize = 4 << 10
	// WriteSize is the program granularity.
	WriteSize = 8
	// Erased is the value of an erased byte.
	Erased = 0xFF
)

// Addresses on the board (mps2-an385).
const (
	// FlashBase is where the flash array is mapped: the upper half of the
	// 4 MiB code SSRAM, so the application executes in place from its
	// slot. The SBM's own code is below it, at 0.
	FlashBase = 0x00200000
	// DebugRAMBase is the address of hal.RAM on the debug port (as on the
	// virtual MCU, vmcu.RAMBase).
	DebugRAMBase = 0x20000000
	// AppRAMBase and AppRAMSize are the RAM left to the application: the
	// top 1 MiB of the 4 MiB SSRAM2/3 minus the service page.
	AppRAMBase = 0x20300000
	AppRAMSize = 0xFF000
	// ServicesAddr is the service page: the SBM writes its runtime-service
	// table there before it jumps into the application (docs/silicon.md,
	// "The native application").
	ServicesAddr = 0x203FF000
)

// Regions of the memory map (offsets in the flash array).
var regions = [...]hal.Region{
	{Kind: hal.RegionSBM, Start: 0x000000, Size: 64 << 10},
	{Kind: hal.RegionSecure, Start: 0x010000, Size: 64 << 10},
	{Kind: hal.RegionPrimary, Start: 0x020000, Size: 896 << 10},
	{Kind: hal.RegionStaging, Start: 0x100000, Size: 960 << 10},
	{Kind: hal.RegionAppData, Start: 0x1F0000, Size: 64 << 10},
}

// Geometry returns the flash geometry and memory map (a new value each
// call).
func Geometry() hal.Geometry {
	g := hal.Geometry{Size: FlashSize, WriteSize: WriteSize, Erased: Erased}
	g.Sectors = make([]hal.Sector, FlashSize/SectorSize)
	for i := range g.Sectors {
		g.Sectors[i] = hal.Sector{Start: uint32(i) * SectorSize, Size: SectorSize}
	}
	g.Regions = append([]hal.Region(nil), regions[:]...)
	return g
}
