package vmcu

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// The debug-port protocol (see docs/vmcu.md): every request and response is
// a frame of a 4-byte big-endian length followed by that many bytes. A
// request body is an opcode byte and its arguments (big-endian); a response
// body is a status byte (0 for success, else an error code) followed by the
// result, or by an error message.

// Debug-port opcodes.
const (
	dbgID          = 0x01 // → 16-byte device ID
	dbgBoard       = 0x02 // → board file (TOML)
	dbgRead        = 0x03 // addr u32, len u32 → data
	dbgWrite       = 0x04 // addr u32, data (RAM only)
	dbgProgram     = 0x05 // addr u32, data
	dbgErase       = 0x06 // addr u32 (sector start)
	dbgFuseRead    = 0x07 // word u32 → value u32
	dbgFuseProgram = 0x08 // word u32, value u32
	dbgReset       = 0x09
	dbgHalt        = 0x0A
	dbgResume      = 0x0B
	dbgStatus      = 0x0C // → flags u8: 1 running, 2 halted
)

// Limits of the debug port.
const (
	// DebugMaxTransfer is the largest read, write or program of one
	// request; the client splits larger transfers.
	DebugMaxTransfer = 64 << 10
	// RAMBase is the debug-port address of the first byte of RAM; flash
	// is at address 0.
	RAMBase  = 0x2000_0000
	maxFrame = 1 + 4 + DebugMaxTransfer
)

// Debug-port status codes.
const (
	stOK           = 0
	stLocked       = 1
	stBadRequest   = 2
	stOutOfRange   = 3
	stMisaligned   = 4
	stNotErased    = 5
	stWriteProtect = 6
	stFault        = 7
	stFlashFailure = 8
	stPowerLost    = 9
	stNotRunning   = 10
	stBadFuse      = 11
	stInternal     = 255
)

// Errors of the debug port and control socket.
var (
	// ErrDebugLocked is returned for every debug request once the
	// debug-lock fuse is blown.
	ErrDebugLocked = errors.New("debug port locked")
	// ErrBadRequest is returned for a malformed debug or control request.
	ErrBadRequest = errors.New("bad request")
	// ErrNotRunning is returned when an operation needs a running device
	// (reset, halt, or dialling its sockets) and it is not running.
	ErrNotRunning = errors.New("device is not running")
	// ErrPowerLost is returned when power was cut during a debug request.
	ErrPowerLost = errors.New("power lost")
)

// debugRequest is a decoded request.
type debugRequest struct {
	op   byte
	addr uint32 // address, or fuse word
	n    uint32 // read length, or fuse value
	data []byte // write / program payload
}

// decodeDebugRequest parses a request body. It never panics and never
// retains more than the body.
func decodeDebugRequest(b []byte) (debugRequest, error) {
	if len(b) == 0 {
		return debugRequest{}, fmt.Errorf("%w: empty request", ErrBadRequest)
	}
	r := debugRequest{op: b[0]}
	args := b[1:]
	want := func(n int) error {
		if len(args) != n {
			return fmt.Errorf("%w: opcode %#02x takes %d argument bytes, got %d", ErrBadRequest, r.op, n, len(args))
		}
		return nil
	}
	switch r.op {
	case dbgID, dbgBoard, dbgReset, dbgHalt, dbgResume, dbgStatus:
		return r, want(0)
	case dbgErase, dbgFuseRead:
		if err := want(4); err != nil {
			return r, err
		}
		r.addr = binary.BigEndian.Uint32(args)
	case dbgRead, dbgFuseProgram:
		if err := want(8); err != nil {
			return r, err
		}
		r.addr = binary.BigEndian.Uint32(args)
		r.n = binary.BigEndian.Uint32(args[4:])
		if r.op == dbgRead && (r.n == 0 || r.n > DebugMaxTransfer) {
			return r, fmt.Errorf("%w: read length %d: want 1 to %d", ErrBadRequest, r.n, DebugMaxTransfer)
		}
	case dbgWrite, dbgProgram:
		if len(args) < 5 || len(args) > 4+DebugMaxTransfer {
			return r, fmt.Errorf("%w: opcode %#02x takes an address and 1 to %d data bytes, got %d argument bytes", ErrBadRequest, r.op, DebugMaxTransfer, len(args))
		}
		r.addr = binary.BigEndian.Uint32(args)
		r.data = args[4:]
	default:
		return r, fmt.Errorf("%w: unknown opcode %#02x", ErrBadRequest, r.op)
	}
	return r, nil
}

// encode returns the request body.
func (r debugRequest) encode() []byte {
	b := []byte{r.op}
	switch r.op {
	case dbgErase, dbgFuseRead:
		b = binary.BigEndian.AppendUint32(b, r.addr)
	case dbgRead, dbgFuseProgram:
		b = binary.BigEndian.AppendUint32(b, r.addr)
		b = binary.BigEndian.AppendUint32(b, r.n)
	case dbgWrite, dbgProgram:
		b = binary.BigEndian.AppendUint32(b, r.addr)
		b = append(b, r.data...)
	}
	return b
}

// readFrame reads one frame of at most maxFrame bytes.
func readFrame(r io.Reader) ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(h[:])
	if n == 0 || n > maxFrame {
		return nil, fmt.Errorf("%w: frame length %d: want 1 to %d", ErrBadRequest, n, maxFrame)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

// appendFrame appends the frame of body to dst.
func appendFrame(dst, body []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(body)))
	return append(dst, body...)
}

// statusOf maps an error to its status code.
func statusOf(err error) byte {
	var pl *PowerLoss
	switch {
	case err == nil:
		return stOK
	case errors.Is(err, ErrDebugLocked):
		return stLocked
	case errors.Is(err, ErrBadRequest):
		return stBadRequest
	case errors.Is(err, errOutOfRange):
		return stOutOfRange
	case errors.Is(err, errMisaligned):
		return stMisaligned
	case errors.Is(err, errNotErased):
		return stNotErased
	case errors.Is(err, errWriteProtected):
		return stWriteProtect
	case errors.Is(err, errFault):
		return stFault
	case errors.Is(err, errFlashFailure):
		return stFlashFailure
	case errors.As(err, &pl), errors.Is(err, ErrPowerLost):
		return stPowerLost
	case errors.Is(err, ErrNotRunning):
		return stNotRunning
	case errors.Is(err, errBadFuse):
		return stBadFuse
	}
	return stInternal
}

// sentinelOf maps a status code back to its sentinel error.
func sentinelOf(st byte) error {
	switch st {
	case stLocked:
		return ErrDebugLocked
	case stBadRequest:
		return ErrBadRequest
	case stOutOfRange:
		return errOutOfRange
	case stMisaligned:
		return errMisaligned
	case stNotErased:
		return errNotErased
	case stWriteProtect:
		return errWriteProtected
	case stFault:
		return errFault
	case stFlashFailure:
		return errFlashFailure
	case stPowerLost:
		return ErrPowerLost
	case stNotRunning:
		return ErrNotRunning
	case stBadFuse:
		return errBadFuse
	}
	return nil
}

// DebugError is an error reported by the debug port. It unwraps to the
// sentinel error of its status (ErrDebugLocked, hal.ErrNotErased, ...).
type DebugError struct {
	Status  byte
	Message string
}

// Error returns the message sent by the device.
func (e *DebugError) Error() string { return e.Message }

// Unwrap returns the sentinel error of the status, if any.
func (e *DebugError) Unwrap() error { return sentinelOf(e.Status) }

// decodeResponse splits a response body into its payload or error.
func decodeResponse(b []byte) ([]byte, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("debug port: empty response")
	}
	if b[0] != stOK {
		msg := string(b[1:])
		if len(msg) > 512 {
			msg = msg[:512]
		}
		return nil, &DebugError{Status: b[0], Message: msg}
	}
	return b[1:], nil
}
