package cbor

import (
	"encoding/binary"
	"unicode/utf8"
)

// Major is a CBOR major type (the top three bits of an item's first byte).
type Major uint8

// The eight CBOR major types.
const (
	MajorUint   Major = 0
	MajorNegInt Major = 1
	MajorBytes  Major = 2
	MajorText   Major = 3
	MajorArray  Major = 4
	MajorMap    Major = 5
	MajorTag    Major = 6
	MajorSimple Major = 7 // false, true, null (floats and others are rejected)
)

// MaxDepth is the deepest nesting of arrays, maps and tags that Skip and
// RawItem accept.
const MaxDepth = 16

// Simple values accepted by the decoder.
const (
	simpleFalse = 20
	simpleTrue  = 21
	simpleNull  = 22
)

// A Decoder reads CBOR items one at a time from a byte slice. The zero value
// decodes an empty input. Methods that fail leave the position unchanged.
type Decoder struct {
	buf []byte
	off int
}

// NewDecoder returns a Decoder positioned at the start of b.
func NewDecoder(b []byte) Decoder { return Decoder{buf: b} }

// Offset returns the number of bytes consumed so far.
func (d *Decoder) Offset() int { return d.off }

// Remaining returns the number of unread bytes.
func (d *Decoder) Remaining() int { return len(d.buf) - d.off }

// Done reports whether all input has been consumed.
func (d *Decoder) Done() bool { return d.off >= len(d.buf) }

// Since returns the input bytes from offset start to the current position.
// It returns nil if start is out of range.
func (d *Decoder) Since(start int) []byte {
	if start < 0 || start > d.off {
		return nil
	}
	return d.buf[start:d.off]
}

// Finish returns ErrTrailing if unread bytes remain.
func (d *Decoder) Finish() error {
	if !d.Done() {
		return ErrTrailing
	}
	return nil
}

// head decodes the initial byte and argument of the item at d.off without
// consuming it. It returns the major type, the argument (the value, length,
// count, tag number or simple value) and the size of the head in bytes.
// It rejects reserved and indefinite additional information, non-preferred
// arguments, floats and unsupported simple values.
func (d *Decoder) head() (m Major, arg uint64, n int, err error) {
	b := d.buf[d.off:]
	if len(b) == 0 {
		return 0, 0, 0, ErrTruncated
	}
	m = Major(b[0] >> 5)
	ai := b[0] & 0x1f
	switch {
	case ai < 24:
		arg, n = uint64(ai), 1
	case ai == 24:
		if len(b) < 2 {
			return 0, 0, 0, ErrTruncated
		}
		arg, n = uint64(b[1]), 2
		if m == MajorSimple {
			if arg < 32 {
				return 0, 0, 0, ErrMalformed // RFC 8949 §3.3: not well-formed
			}
			return 0, 0, 0, ErrUnsupported
		}
		if arg < 24 {
			return 0, 0, 0, ErrNotPreferred
		}
	case ai == 25:
		if m == MajorSimple {
			return 0, 0, 0, ErrUnsupported // half float
		}
		if len(b) < 3 {
			return 0, 0, 0, ErrTruncated
		}
		arg, n = uint64(binary.BigEndian.Uint16(b[1:])), 3
		if arg <= 0xff {
			return 0, 0, 0, ErrNotPreferred
		}
	case ai == 26:
		if m == MajorSimple {
			return 0, 0, 0, ErrUnsupported // single float
		}
		if len(b) < 5 {
			return 0, 0, 0, ErrTruncated
		}
		arg, n = uint64(binary.BigEndian.Uint32(b[1:])), 5
		if arg <= 0xffff {
			return 0, 0, 0, ErrNotPreferred
		}
	case ai == 27:
		if m == MajorSimple {
			return 0, 0, 0, ErrUnsupported // double float
		}
		if len(b) < 9 {
			return 0, 0, 0, ErrTruncated
		}
		arg, n = binary.BigEndian.Uint64(b[1:]), 9
		if arg <= 0xffffffff {
			return 0, 0, 0, ErrNotPreferred
		}
	case ai == 31:
		if m == MajorUint || m == MajorNegInt || m == MajorTag {
			return 0, 0, 0, ErrMalformed
		}
		return 0, 0, 0, ErrIndefinite
	default: // 28, 29, 30
		return 0, 0, 0, ErrMalformed
	}
	if m == MajorSimple && (arg < simpleFalse || arg > simpleNull) {
		return 0, 0, 0, ErrUnsupported // unassigned simple values, undefined
	}
	return m, arg, n, nil
}

// PeekType returns the major type of the next item without consuming it.
// It returns an error if the item's head is not acceptable.
func (d *Decoder) PeekType() (Major, error) {
	m, _, _, err := d.head()
	return m, err
}

// expect consumes the head of an item of major type want.
func (d *Decoder) expect(want Major) (uint64, error) {
	m, arg, n, err := d.head()
	if err != nil {
		return 0, err
	}
	if m != want {
		return 0, ErrType
	}
	d.off += n
	return arg, nil
}

// Uint reads an unsigned integer (major type 0).
func (d *Decoder) Uint() (uint64, error) {
	return d.expect(MajorUint)
}

// Uint32 reads an unsigned integer that must be below 2^32.
func (d *Decoder) Uint32() (uint32, error) {
	m, arg, n, err := d.head()
	if err != nil {
		return 0, err
	}
	if m != MajorUint {
		return 0, ErrType
	}
	if arg > 0xffffffff {
		return 0, ErrRange
	}
	d.off += n
	return uint32(arg), nil
}

// NegInt reads a negative integer (major type 1) and returns its argument
// n, which encodes the value -1-n.
func (d *Decoder) NegInt() (uint64, error) {
	return d.expect(MajorNegInt)
}

// Int reads an integer of major type 0 or 1 that fits in an int64.
func (d *Decoder) Int() (int64, error) {
	m, arg, n, err := d.head()
	if err != nil {
		return 0, err
	}
	if m != MajorUint && m != MajorNegInt {
		return 0, ErrType
	}
	if arg > 1<<63-1 {
		return 0, ErrRange
	}
	d.off += n
	if m == MajorNegInt {
		return -1 - int64(arg), nil
	}
	return int64(arg), nil
}

// str consumes a byte or text string head and returns its content.
func (d *Decoder) str(want Major) ([]byte, error) {
	m, arg, n, err := d.head()
	if err != nil {
		return nil, err
	}
	if m != want {
		return nil, ErrType
	}
	if arg > uint64(len(d.buf)-d.off-n) {
		return nil, ErrTruncated
	}
	start := d.off + n
	end := start + int(arg)
	if want == MajorText && !utf8.Valid(d.buf[start:end]) {
		return nil, ErrMalformed
	}
	d.off = end
	return d.buf[start:end:end], nil
}

// Bytes reads a byte string and returns its content as a sub-slice of the
// input (with capacity equal to its length).
func (d *Decoder) Bytes() ([]byte, error) { return d.str(MajorBytes) }

// Text reads a text string, checks it is valid UTF-8, and returns its
// content as a sub-slice of the input.
func (d *Decoder) Text() ([]byte, error) { return d.str(MajorText) }

// container consumes an array or map head. Each element needs at least one
// byte (two for a map entry), so a count larger than the remaining input is
// reported as truncation.
func (d *Decoder) container(want Major, max int) (int, error) {
	m, arg, n, err := d.head()
	if err != nil {
		return 0, err
	}
	if m != want {
		return 0, ErrType
	}
	if max < 0 || arg > uint64(max) {
		return 0, ErrTooLarge
	}
	per := uint64(1)
	if want == MajorMap {
		per = 2
	}
	if arg > uint64(len(d.buf)-d.off-n)/per {
		return 0, ErrTruncated
	}
	d.off += n
	return int(arg), nil
}

// ArrayHeader reads the head of an array of at most max elements and
// returns the element count. The elements follow.
func (d *Decoder) ArrayHeader(max int) (int, error) { return d.container(MajorArray, max) }

// MapHeader reads the head of a map of at most max entries and returns the
// entry count. The keys and values follow, alternating.
func (d *Decoder) MapHeader(max int) (int, error) { return d.container(MajorMap, max) }

// Tag reads a tag head and returns the tag number. The tagged item follows.
func (d *Decoder) Tag() (uint64, error) { return d.expect(MajorTag) }

// Bool reads false or true.
func (d *Decoder) Bool() (bool, error) {
	m, arg, n, err := d.head()
	if err != nil {
		return false, err
	}
	if m != MajorSimple || arg == simpleNull {
		return false, ErrType
	}
	d.off += n
	return arg == simpleTrue, nil
}

// Null reads null.
func (d *Decoder) Null() error {
	m, arg, n, err := d.head()
	if err != nil {
		return err
	}
	if m != MajorSimple || arg != simpleNull {
		return ErrType
	}
	d.off += n
	return nil
}

// Skip consumes one complete item, including nested items, checking that it
// is acceptable. Nesting deeper than MaxDepth is rejected.
func (d *Decoder) Skip() error {
	start := d.off
	if err := d.skip(0); err != nil {
		d.off = start
		return err
	}
	return nil
}

// RawItem consumes one complete item like Skip and returns its encoding as
// a sub-slice of the input.
func (d *Decoder) RawItem() ([]byte, error) {
	start := d.off
	if err := d.Skip(); err != nil {
		return nil, err
	}
	return d.buf[start:d.off:d.off], nil
}

func (d *Decoder) skip(depth int) error {
	m, arg, n, err := d.head()
	if err != nil {
		return err
	}
	switch m {
	case MajorBytes, MajorText:
		_, err := d.str(m)
		return err
	case MajorArray, MajorMap, MajorTag:
		if depth >= MaxDepth {
			return ErrDepth
		}
		items := arg
		if m == MajorMap {
			if arg > uint64(len(d.buf)) {
				return ErrTruncated
			}
			items = 2 * arg
		} else if m == MajorTag {
			items = 1
		}
		if items > uint64(len(d.buf)-d.off-n) {
			return ErrTruncated
		}
		d.off += n
		for i := uint64(0); i < items; i++ {
			if err := d.skip(depth + 1); err != nil {
				return err
			}
		}
		return nil
	default: // integers and simple values
		d.off += n
		return nil
	}
}
