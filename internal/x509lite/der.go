package x509lite

// DER tags used by certificates (universal class unless noted).
const (
	tagBoolean         = 0x01
	tagInteger         = 0x02
	tagBitString       = 0x03
	tagOctetString     = 0x04
	tagOID             = 0x06
	tagUTCTime         = 0x17
	tagGeneralizedTime = 0x18
	tagSequence        = 0x30
	tagSet             = 0x31
	tagVersion         = 0xa0 // [0] EXPLICIT, constructed
	tagIssuerUID       = 0x81 // [1] IMPLICIT, primitive
	tagSubjectUID      = 0x82 // [2] IMPLICIT, primitive
	tagExtensions      = 0xa3 // [3] EXPLICIT, constructed
)

// reader reads DER elements from a byte slice. It never copies: the
// slices it returns alias the input. Its methods fail on the first
// malformed element and keep failing.
type reader struct {
	b   []byte
	err error
}

// empty reports whether everything was read.
func (r *reader) empty() bool { return len(r.b) == 0 }

// fail records err (the first one wins) and returns nil.
func (r *reader) fail(err error) []byte {
	if r.err == nil {
		r.err = err
	}
	r.b = nil
	return nil
}

// peek returns the tag of the next element, or 0 if there is none.
func (r *reader) peek() byte {
	if r.err != nil || len(r.b) == 0 {
		return 0
	}
	return r.b[0]
}

// next reads one element with the given tag and returns its full
// encoding (tag, length and contents) and its contents. Only single-byte
// tags and minimal definite lengths up to 3 length bytes are accepted.
func (r *reader) next(tag byte) (full, content []byte) {
	if r.err != nil {
		return nil, nil
	}
	b := r.b
	if len(b) < 2 {
		return nil, r.fail(ErrMalformed)
	}
	if b[0] != tag {
		return nil, r.fail(ErrMalformed)
	}
	n := int(b[1])
	hdr := 2
	if n >= 0x80 {
		k := n & 0x7f
		if k == 0 || k > 3 || len(b) < 2+k {
			return nil, r.fail(ErrMalformed)
		}
		n = 0
		for _, c := range b[2 : 2+k] {
			n = n<<8 | int(c)
		}
		// Minimal encoding: long form only from 128, no leading zero.
		if n < 0x80 || b[2] == 0 {
			return nil, r.fail(ErrMalformed)
		}
		hdr += k
	}
	if n > len(b)-hdr {
		return nil, r.fail(ErrMalformed)
	}
	full, content = b[:hdr+n], b[hdr:hdr+n]
	r.b = b[hdr+n:]
	return full, content
}

// content reads one element with the given tag and returns its contents.
func (r *reader) content(tag byte) []byte {
	_, c := r.next(tag)
	return c
}

// sub reads a constructed element and returns a reader of its contents.
func (r *reader) sub(tag byte) reader {
	c := r.content(tag)
	return reader{b: c, err: r.err}
}

// done checks that sub was read to its end and carries its error into r.
func (r *reader) done(sub *reader) {
	if sub.err != nil {
		r.fail(sub.err)
	} else if !sub.empty() {
		r.fail(ErrMalformed)
	}
}

// bitString reads a BIT STRING without unused bits and returns its bytes.
func (r *reader) bitString() []byte {
	c := r.content(tagBitString)
	if r.err != nil {
		return nil
	}
	if len(c) == 0 || c[0] != 0 {
		return r.fail(ErrMalformed)
	}
	return c[1:]
}

// equal compares two byte slices in constant order (no early exit is
// needed: everything compared is public).
func equal(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
