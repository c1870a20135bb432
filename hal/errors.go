package hal

import "github.com/sbm-project/sbm/internal/errs"

// Errors returned by hal implementations. Implementations wrap them with
// detail; callers test them with errors.Is.
var (
	// ErrFault is an access-control violation: the caller's privilege does
	// not allow the access.
	ErrFault = errs.New("access fault")
	// ErrWriteProtected is returned for a program or erase of a region that
	// is write-protected by a fuse, at any privilege.
	ErrWriteProtected = errs.New("region is write-protected")
	// ErrOutOfRange is returned for an address or length outside the
	// device.
	ErrOutOfRange = errs.New("address out of range")
	// ErrMisaligned is returned for a program not aligned to the write
	// granularity or an erase not at the start of a sector.
	ErrMisaligned = errs.New("misaligned access")
	// ErrNotErased is returned for a program of a location that is not in
	// the erased state. Flash cannot be overwritten without an erase.
	ErrNotErased = errs.New("location not erased")
	// ErrFlashFailure is returned when the flash fails to program or erase
	// (a worn-out or bad sector).
	ErrFlashFailure = errs.New("flash operation failed")
	// ErrTimeout is returned by UART.Read when no byte arrived in time.
	ErrTimeout = errs.New("timeout")
	// ErrPUFHelper is returned when the PUF key cannot be recovered: the
	// helper data is corrupt or belongs to another device, or the response
	// was too noisy.
	ErrPUFHelper = errs.New("puf helper data does not match this device")
	// ErrBadFuse is returned for a fuse index or field outside the fuse map.
	ErrBadFuse = errs.New("no such fuse")
)
