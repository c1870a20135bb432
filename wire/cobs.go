package wire

// COBS (Consistent Overhead Byte Stuffing, Cheshire and Baker 1999) removes
// every 0x00 from a frame so that 0x00 can delimit frames on the line. The
// encoding is a sequence of blocks: a code byte c (1..255) followed by c-1
// non-zero data bytes; a block with c < 255 stands for its data followed by
// one 0x00, except the last block of a frame, whose implied 0x00 is the
// frame delimiter itself. A block with c = 255 carries 254 data bytes and
// no implied 0x00.

// cobsEncoder appends the COBS encoding of the bytes written to it to a
// slice, one byte at a time, so that a frame can be encoded as it is built.
type cobsEncoder struct {
	dst    []byte
	code   int  // index in dst of the open block's code byte
	n      int  // data bytes in the open block
	closed bool // the previous block was a full 0xFF block and none is open
}

func newCOBSEncoder(dst []byte) cobsEncoder {
	return cobsEncoder{dst: append(dst, 0), code: len(dst)}
}

func (e *cobsEncoder) writeByte(b byte) {
	if e.closed {
		e.code = len(e.dst)
		e.dst = append(e.dst, 0)
		e.n = 0
		e.closed = false
	}
	if b == 0 {
		e.dst[e.code] = byte(e.n + 1)
		e.code = len(e.dst)
		e.dst = append(e.dst, 0)
		e.n = 0
		return
	}
	e.dst = append(e.dst, b)
	e.n++
	if e.n == 254 {
		e.dst[e.code] = 0xFF
		e.closed = true
	}
}

func (e *cobsEncoder) write(p []byte) {
	for _, b := range p {
		e.writeByte(b)
	}
}

// finish closes the last block and appends the 0x00 delimiter.
func (e *cobsEncoder) finish() []byte {
	if !e.closed {
		e.dst[e.code] = byte(e.n + 1)
	}
	return append(e.dst, 0)
}

// appendCOBS appends the COBS encoding of p and a 0x00 delimiter to dst.
func appendCOBS(dst, p []byte) []byte {
	e := newCOBSEncoder(dst)
	e.write(p)
	return e.finish()
}

// cobsDecoder decodes COBS one byte at a time. The caller handles the 0x00
// delimiter; cobsDecoder sees only the bytes between two delimiters.
type cobsDecoder struct {
	left    int  // data bytes left in the current block; 0: next byte is a code
	pending bool // a 0x00 is owed before the next block's data
	started bool // at least one block seen
}

// step consumes one non-zero encoded byte. It reports the decoded byte it
// produces, if any: a data byte yields itself; a code byte yields the 0x00
// implied by the previous block, if that block was not a full one.
func (d *cobsDecoder) step(b byte) (v byte, ok bool) {
	if d.left == 0 { // b is a code byte
		ok = d.pending
		d.left = int(b) - 1
		d.pending = b != 0xFF
		d.started = true
		return 0, ok
	}
	d.left--
	return b, true
}

// complete reports whether the bytes seen so far form whole blocks.
func (d *cobsDecoder) complete() bool { return d.started && d.left == 0 }

func (d *cobsDecoder) reset() { *d = cobsDecoder{} }
