// Package hal defines the small hardware interfaces the Secure Boot Manager
// uses: flash, fuses (one-time-programmable memory), UART, random numbers,
// the PUF, identity and the system controller (clock, reset, recovery pin).
//
// hal is device-side code: it imports only the standard library, uses no
// reflection, no goroutines and no fmt, and allocates only bounded memory, so
// that it compiles for a real microcontroller with TinyGo. The virtual
// microcontroller in package vmcu implements these interfaces on a host.
//
// # Addresses and privilege
//
// Flash addresses are byte offsets from the start of the flash array
// (0 .. Geometry.Size-1). A Flash value carries a privilege level: the SBM
// receives a view at [PrivSBM]; the application is given a view at [PrivApp].
// Once the protection fuses are blown (see [LockSBMWriteProtect] and
// [LockSecureHidden]), an application access to the SBM region or to secure
// storage fails with [ErrFault], and the SBM region refuses program and erase
// at every privilege with [ErrWriteProtected].
//
// # Stopping
//
// On the virtual MCU a power cut or reset stops the firmware inside whichever
// hal call it is making: that call does not return. Firmware therefore never
// observes a half-done operation through a return value, exactly as on
// hardware; it must not recover panics it did not raise.
package hal

import (
	"io"
	"time"
)

// Hardware is everything the boot firmware receives at power-on.
type Hardware struct {
	// Flash is the flash array at SBM privilege.
	Flash Flash
	// AppFlash is the same flash at application privilege; the SBM hands it
	// (or a narrower wrapper) to the application runtime.
	AppFlash Flash
	// Fuses is the one-time-programmable memory (see the fuse map constants).
	Fuses Fuses
	// UART is the communication interface.
	UART UART
	// RNG is a cryptographically secure random source.
	RNG io.Reader
	// PUF is the physically unclonable function.
	PUF PUF
	// RAM is the device RAM shared with the debug port, cleared at power-on
	// and kept across resets; firmware may use it as a mailbox.
	RAM Memory
	// System is the system controller: clock, reset, recovery pin.
	System System
	// Log is the boot log (a console separate from the UART).
	Log io.Writer
	// ID is the unique device ID programmed in silicon.
	ID [IDSize]byte
}

// IDSize is the size in bytes of the unique device ID.
const IDSize = 16

// System is the system controller.
type System interface {
	// Now returns the time elapsed since power-on, from a monotonic clock.
	Now() time.Duration
	// Sleep waits for d.
	Sleep(d time.Duration)
	// Reset resets the device; the boot firmware starts again from the
	// beginning. Reset does not return.
	Reset()
	// RecoveryPin reports whether the recovery pin was held when the device
	// came out of its last reset or power-on.
	RecoveryPin() bool
}

// UART is a serial port.
type UART interface {
	// Read reads at least one and at most len(p) received bytes. It waits up
	// to timeout for the first byte and returns ErrTimeout if none arrived;
	// a timeout of 0 polls.
	Read(p []byte, timeout time.Duration) (int, error)
	// Write transmits p. It returns when all of p has been handed to the
	// transmitter, which may pace it at the line rate.
	Write(p []byte) (int, error)
}

// Memory is byte-addressed random-access memory.
type Memory interface {
	// Size returns the size of the memory in bytes.
	Size() uint32
	// Read copies len(p) bytes starting at addr into p.
	Read(addr uint32, p []byte) error
	// Write copies p into the memory starting at addr.
	Write(addr uint32, p []byte) error
}
