// Package firmware turns an input file (raw binary, WebAssembly module, ELF
// executable or Intel HEX file) into the flat payload that is packaged, plus
// the address it is loaded at when the input carries one.
package firmware

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
)

// Format of an input file.
type Format string

// Input formats. FormatAuto asks Load to pick the format with Detect.
const (
	FormatAuto   Format = ""
	FormatBinary Format = "bin"
	FormatWasm   Format = "wasm"
	FormatELF    Format = "elf"
	FormatIHex   Format = "ihex"
)

// Errors returned by Load, wrapped with detail; test them with errors.Is.
var (
	// ErrEmpty is returned for an input that holds no data.
	ErrEmpty = errors.New("empty input")
	// ErrTooLarge is returned when the flat image would exceed the size
	// bound given to Load or the 64 MiB cap on ELF and Intel HEX spans.
	ErrTooLarge = errors.New("image too large")
	// ErrMalformed is returned for an input that is not a valid file of
	// its format.
	ErrMalformed = errors.New("malformed input")
)

// MaxImageSize is the largest flat image — the payload of a package — the
// host tools handle: image create, image verify, image inspect and upk
// issue all refuse a larger one with the error of CheckImageSize. It also
// caps the flat image of the addressed formats (ELF, Intel HEX), whatever
// the caller's bound, so that a sparse input cannot force a huge
// allocation. This is the one definition of the limit.
const MaxImageSize = 64 << 20

// CheckImageSize returns an error wrapping ErrTooLarge if an image (a
// package payload) of n bytes exceeds MaxImageSize: the one message every
// command gives for an input over the limit.
func CheckImageSize(n uint64) error {
	if n > MaxImageSize {
		return fmt.Errorf("%w: %d bytes, over the %d-byte (64 MiB) limit", ErrTooLarge, n, MaxImageSize)
	}
	return nil
}

// ParseFormat parses the value of a --format flag: auto, bin, wasm, elf or
// ihex.
func ParseFormat(s string) (Format, error) {
	switch s {
	case "auto":
		return FormatAuto, nil
	case string(FormatBinary), string(FormatWasm), string(FormatELF), string(FormatIHex):
		return Format(s), nil
	}
	return "", fmt.Errorf("unknown format %q (want auto, bin, wasm, elf or ihex)", s)
}

// Image is a flat memory image: Data is loaded at LoadAddress
// (HasLoadAddress is false for raw/wasm inputs).
type Image struct {
	// Data is the flat image. Gaps between the pieces of an ELF or Intel
	// HEX input are filled with 0xFF, the erased state of flash.
	Data []byte
	// LoadAddress is the address of Data[0]. Data never extends past
	// 4 GiB: LoadAddress+len(Data) <= 1<<32.
	LoadAddress uint32
	// HasLoadAddress reports whether the input carried an address (ELF and
	// Intel HEX do; raw binaries and WebAssembly modules do not).
	HasLoadAddress bool
	// Format is the format the input was parsed as, never FormatAuto.
	Format Format
}

// Load parses b as format f (FormatAuto = Detect) and returns the flat
// image. maxSize bounds the result (0 = no bound) — an input whose flat
// image exceeds it is rejected with ErrTooLarge before allocating it.
//
// Binary and WebAssembly inputs are returned as they are (Data aliases b);
// a WebAssembly module must start with the magic and version 1.
//
// ELF and Intel HEX inputs are assembled into a new buffer spanning their
// lowest to highest address, which is also capped at 64 MiB whatever maxSize
// is. For ELF, that is the file contents of the PT_LOAD segments placed at
// their physical addresses (p_paddr, the LMA a flash programmer writes, not
// the VMA); the zero-filled p_memsz tail (.bss) is not part of the image.
// For Intel HEX, it is the data records (types 00, 02 and 04 as in the
// Intel specification; start address records 03 and 05 are ignored).
// Overlapping data is rejected.
//
// An empty input is rejected with ErrEmpty, an invalid one with
// ErrMalformed; a negative maxSize is an error.
func Load(b []byte, f Format, maxSize int) (*Image, error) {
	if maxSize < 0 {
		return nil, fmt.Errorf("invalid size bound %d", maxSize)
	}
	if len(b) == 0 {
		return nil, ErrEmpty
	}
	if f == FormatAuto {
		f = Detect(b)
	}
	switch f {
	case FormatBinary:
		if err := checkSize(uint64(len(b)), maxSize, false); err != nil {
			return nil, fmt.Errorf("bin: %w", err)
		}
		return &Image{Data: b, Format: FormatBinary}, nil
	case FormatWasm:
		if err := checkWasmHeader(b); err != nil {
			return nil, err
		}
		if err := checkSize(uint64(len(b)), maxSize, false); err != nil {
			return nil, fmt.Errorf("wasm: %w", err)
		}
		return &Image{Data: b, Format: FormatWasm}, nil
	case FormatELF:
		return loadELF(b, maxSize)
	case FormatIHex:
		return loadIHex(b, maxSize)
	}
	return nil, fmt.Errorf("unknown format %q", string(f))
}

// checkSize reports ErrTooLarge if an image of n bytes exceeds maxSize (when
// non-zero) or, for the addressed formats, MaxImageSize.
func checkSize(n uint64, maxSize int, capped bool) error {
	if maxSize > 0 && n > uint64(maxSize) {
		return fmt.Errorf("%w: %d bytes, limit is %d", ErrTooLarge, n, maxSize)
	}
	if capped {
		return CheckImageSize(n)
	}
	return nil
}

// malformedError is an error with its own message that matches ErrMalformed.
type malformedError struct{ msg string }

func (e *malformedError) Error() string { return e.msg }
func (e *malformedError) Unwrap() error { return ErrMalformed }

// malformed returns an error formatted like fmt.Errorf that matches
// ErrMalformed.
func malformed(format string, args ...any) error {
	return &malformedError{fmt.Sprintf(format, args...)}
}

// piece is a run of bytes at an absolute address. src names the place in
// the input it came from (for errors) and seq orders pieces by that place.
type piece struct {
	addr uint64
	data []byte
	src  string
	seq  int
}

// flatten lays pieces out in a new buffer from the lowest to the highest
// address, filling gaps with 0xFF. It rejects overlapping pieces and
// checks the span against maxSize and MaxImageSize before allocating. pieces must
// be non-empty, hold no empty data, and end at or below 4 GiB; flatten sorts
// them by address.
func flatten(pieces []piece, maxSize int) ([]byte, error) {
	slices.SortStableFunc(pieces, func(a, b piece) int {
		return cmp.Or(cmp.Compare(a.addr, b.addr), cmp.Compare(a.seq, b.seq))
	})
	last := 0 // index of the piece that reaches highest so far
	for i := 1; i < len(pieces); i++ {
		p, q := pieces[last], pieces[i]
		if q.addr < p.addr+uint64(len(p.data)) {
			if p.seq > q.seq {
				p, q = q, p // blame the later one
			}
			return nil, malformed("%s: data at 0x%08x-0x%08x overlaps %s (0x%08x-0x%08x)",
				q.src, q.addr, q.addr+uint64(len(q.data))-1,
				p.src, p.addr, p.addr+uint64(len(p.data))-1)
		}
		if q.addr+uint64(len(q.data)) > p.addr+uint64(len(p.data)) {
			last = i
		}
	}
	lo := pieces[0].addr
	hi := pieces[last].addr + uint64(len(pieces[last].data))
	if err := checkSize(hi-lo, maxSize, true); err != nil {
		return nil, err
	}
	out := make([]byte, hi-lo)
	for i := range out {
		out[i] = 0xFF
	}
	for _, p := range pieces {
		copy(out[p.addr-lo:], p.data)
	}
	return out, nil
}
