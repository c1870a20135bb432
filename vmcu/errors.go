package vmcu

import "github.com/sbm-project/sbm/hal"

// Short names for the hal errors the simulator returns.
var (
	errOutOfRange     = hal.ErrOutOfRange
	errMisaligned     = hal.ErrMisaligned
	errNotErased      = hal.ErrNotErased
	errWriteProtected = hal.ErrWriteProtected
	errFault          = hal.ErrFault
	errFlashFailure   = hal.ErrFlashFailure
	errBadFuse        = hal.ErrBadFuse
)
