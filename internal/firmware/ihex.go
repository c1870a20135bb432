package firmware

import (
	"bytes"
	"fmt"
	"strconv"
)

// Intel HEX record types.
const (
	ihexData            = 0x00
	ihexEOF             = 0x01
	ihexExtSegmentAddr  = 0x02
	ihexStartSegment    = 0x03
	ihexExtLinearAddr   = 0x04
	ihexStartLinearAddr = 0x05
)

// ihexRecordNames names the record types in errors.
var ihexRecordNames = [...]string{
	ihexData:            "data",
	ihexEOF:             "end-of-file",
	ihexExtSegmentAddr:  "extended segment address",
	ihexStartSegment:    "start segment address",
	ihexExtLinearAddr:   "extended linear address",
	ihexStartLinearAddr: "start linear address",
}

// ihexDataLen is the data length each non-data record type must have.
var ihexDataLen = [...]int{
	ihexEOF:             0,
	ihexExtSegmentAddr:  2,
	ihexStartSegment:    4,
	ihexExtLinearAddr:   2,
	ihexStartLinearAddr: 4,
}

// loadIHex parses an Intel HEX file (I8HEX, I16HEX and I32HEX records).
// Start address records are checked and ignored.
func loadIHex(b []byte, maxSize int) (*Image, error) {
	var (
		pieces  []piece
		base    uint32 // from the last 02 or 04 record
		segment bool   // base came from an 02 record: offsets wrap at 64 KiB
		eofLine int
		buf     [1 + 255 + 4]byte // the longest record
	)
	for n := 1; len(b) > 0; n++ {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		line = trimLine(line)
		if len(line) == 0 {
			continue
		}
		if eofLine != 0 {
			return nil, malformed("ihex: line %d: data after end-of-file record (line %d)", n, eofLine)
		}
		rec, err := decodeRecord(line, buf[:])
		if err != nil {
			return nil, malformed("ihex: line %d: %v", n, err)
		}
		count, typ := int(rec[0]), rec[3]
		offset := uint32(rec[1])<<8 | uint32(rec[2])
		data := rec[4 : 4+count]
		if typ != ihexData {
			if int(typ) >= len(ihexDataLen) {
				return nil, malformed("ihex: line %d: unknown record type 0x%02x", n, typ)
			}
			if want := ihexDataLen[typ]; count != want {
				return nil, malformed("ihex: line %d: %s record has %d data bytes, want %d",
					n, ihexRecordNames[typ], count, want)
			}
		}
		switch typ {
		case ihexData:
			if count == 0 {
				continue
			}
			src := "line " + strconv.Itoa(n)
			data = bytes.Clone(data)
			if segment {
				// I16HEX: the offset wraps within the 64 KiB segment.
				first := min(count, 0x10000-int(offset))
				pieces = append(pieces, piece{uint64(base) + uint64(offset), data[:first], src, n})
				if first < count {
					pieces = append(pieces, piece{uint64(base), data[first:], src, n})
				}
				continue
			}
			addr := uint64(base) + uint64(offset)
			if addr+uint64(count) > 1<<32 {
				return nil, malformed("ihex: line %d: data at 0x%08x-0x%x extends past 4 GiB",
					n, addr, addr+uint64(count)-1)
			}
			pieces = append(pieces, piece{addr, data, src, n})
		case ihexEOF:
			eofLine = n
		case ihexExtSegmentAddr:
			base = (uint32(data[0])<<8 | uint32(data[1])) << 4
			segment = true
		case ihexExtLinearAddr:
			base = (uint32(data[0])<<8 | uint32(data[1])) << 16
			segment = false
		}
	}
	if eofLine == 0 {
		return nil, malformed("ihex: truncated: no end-of-file record")
	}
	if len(pieces) == 0 {
		return nil, fmt.Errorf("ihex: no data records: %w", ErrEmpty)
	}
	data, err := flatten(pieces, maxSize)
	if err != nil {
		return nil, fmt.Errorf("ihex: %w", err)
	}
	return &Image{
		Data:           data,
		LoadAddress:    uint32(pieces[0].addr), // flatten sorted pieces
		HasLoadAddress: true,
		Format:         FormatIHex,
	}, nil
}

// decodeRecord decodes the hex digits of one record line (":LLAAAATT…CC")
// into buf and checks its length and checksum. It returns the bytes of the
// record without the checksum: count, address (2 bytes), type and data.
func decodeRecord(line, buf []byte) ([]byte, error) {
	if line[0] != ':' {
		return nil, fmt.Errorf("missing start code ':' (record starts with %q)", line[0])
	}
	digits := line[1:]
	for i, c := range digits {
		if _, ok := unhex(c); !ok {
			if c < ' ' || c > '~' {
				return nil, fmt.Errorf("invalid byte 0x%02x at column %d", c, i+2)
			}
			return nil, fmt.Errorf("invalid hex digit %q at column %d", c, i+2)
		}
	}
	if len(digits)%2 != 0 {
		return nil, fmt.Errorf("odd number of hex digits (%d)", len(digits))
	}
	n := len(digits) / 2
	if n < 5 {
		return nil, fmt.Errorf("record too short: %d bytes, want at least 5", n)
	}
	if n > len(buf) {
		n = len(buf) // longer than any record: reported as a length mismatch below
	}
	var sum byte
	for i := range n {
		hi, _ := unhex(digits[2*i])
		lo, _ := unhex(digits[2*i+1])
		buf[i] = hi<<4 | lo
		sum += buf[i]
	}
	count := int(buf[0])
	if got := len(digits)/2 - 5; got != count {
		return nil, fmt.Errorf("length mismatch: byte count is %d, record has %d data bytes", count, got)
	}
	if sum != 0 {
		got := buf[n-1]
		return nil, fmt.Errorf("checksum mismatch: got 0x%02x, want 0x%02x", got, got-sum)
	}
	return buf[:n-1], nil
}

// unhex decodes one hex digit, either case.
func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
