package wire

import (
	"encoding/binary"

	"github.com/sbm-project/sbm/internal/crc"
)

// Limits of the framing layer (docs/spec/protocol.md §2).
const (
	// MaxData is the largest DATA payload the protocol allows.
	MaxData = 4096
	// MaxBody is the largest frame body: a DATA body with MaxData bytes of
	// payload and room for its CBOR map.
	MaxBody = MaxData + 32
	// MaxFrame is the largest decoded frame: type, sequence number, body
	// and CRC.
	MaxFrame = 2 + MaxBody + 4
	// MaxEncoded is the largest encoded frame on the line: MaxFrame bytes
	// after COBS (one code byte per 254 bytes, plus one) and the 0x00
	// delimiter.
	MaxEncoded = MaxFrame + MaxFrame/254 + 1 + 1
	// minFrame is the smallest decoded frame: type, sequence number, CRC.
	minFrame = 2 + 4
)

// Frame is one decoded frame. Body aliases the buffer of the FrameReader
// that produced it and is valid until its next call.
type Frame struct {
	Type Type
	Seq  uint8
	Body []byte
}

// AppendFrame appends the encoded frame (COBS of type | seq | body |
// CRC-32C, then the 0x00 delimiter) to dst. With a dst of capacity
// MaxEncoded and a body of at most MaxBody bytes it does not allocate.
func AppendFrame(dst []byte, typ Type, seq uint8, body []byte) []byte {
	hdr := [2]byte{byte(typ), seq}
	sum := crc.UpdateCastagnoli(crc.Castagnoli(hdr[:]), body)
	e := newCOBSEncoder(dst)
	e.writeByte(byte(typ))
	e.writeByte(seq)
	e.write(body)
	for i := 0; i < 4; i++ {
		e.writeByte(byte(sum >> (8 * i))) // little-endian
	}
	return e.finish()
}

// ReaderStats counts what a FrameReader has seen.
type ReaderStats struct {
	Frames    uint32 // frames delivered
	Oversized uint32 // frames longer than MaxFrame, dropped
	BadCRC    uint32 // frames whose CRC did not match, dropped
	Malformed uint32 // frames with invalid COBS or shorter than a header and CRC, dropped
}

// FrameReader turns a byte stream into frames. It decodes COBS as bytes
// arrive into a fixed buffer of MaxFrame bytes: a frame longer than that is
// dropped and counted, never buffered. Bytes up to the first 0x00 after
// an error are discarded, so the reader resynchronises at the next
// delimiter. The zero value is ready to use.
type FrameReader struct {
	buf   [MaxFrame]byte
	n     int
	cobs  cobsDecoder
	drop  bool // the current frame is oversized: skip to the delimiter
	stats ReaderStats
}

// Stats returns the reader's counters.
func (r *FrameReader) Stats() ReaderStats { return r.stats }

// Push consumes bytes of p until a frame is complete. It returns the number
// of bytes consumed and, if a frame ended within them, the frame and true.
// Callers loop until all of p is consumed. The frame's body is valid until
// the next call to Push.
func (r *FrameReader) Push(p []byte) (consumed int, f Frame, ok bool) {
	for i, b := range p {
		if b == 0 {
			f, ok = r.end()
			if ok {
				return i + 1, f, true
			}
			continue
		}
		if r.drop {
			continue
		}
		v, emit := r.cobs.step(b)
		if !emit {
			continue
		}
		if r.n == len(r.buf) {
			r.drop = true
			continue
		}
		r.buf[r.n] = v
		r.n++
	}
	return len(p), Frame{}, false
}

// end handles a delimiter: it validates the frame collected so far and
// resets for the next one.
func (r *FrameReader) end() (Frame, bool) {
	n, drop, complete, started := r.n, r.drop, r.cobs.complete(), r.cobs.started
	r.n, r.drop = 0, false
	r.cobs.reset()
	switch {
	case !started: // an empty frame: two delimiters in a row
		return Frame{}, false
	case drop:
		r.stats.Oversized++
		return Frame{}, false
	case !complete || n < minFrame:
		r.stats.Malformed++
		return Frame{}, false
	}
	want := binary.LittleEndian.Uint32(r.buf[n-4 : n])
	if crc.Castagnoli(r.buf[:n-4]) != want {
		r.stats.BadCRC++
		return Frame{}, false
	}
	r.stats.Frames++
	return Frame{Type: Type(r.buf[0]), Seq: r.buf[1], Body: r.buf[2 : n-4 : n-4]}, true
}
