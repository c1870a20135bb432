package cbor

import "errors"

// node is a test-only generic CBOR value used to check that decoding and
// re-encoding with the encoder reproduces the input bytes.
type node struct {
	major Major
	arg   uint64 // integer argument, tag number or simple value
	str   []byte
	elems []node // array elements, map keys and values alternating, tagged item
}

func decodeTree(d *Decoder, depth int) (node, error) {
	m, err := d.PeekType()
	if err != nil {
		return node{}, err
	}
	if depth >= MaxDepth && (m == MajorArray || m == MajorMap || m == MajorTag) {
		return node{}, ErrDepth
	}
	var n node
	n.major = m
	switch m {
	case MajorUint:
		n.arg, err = d.Uint()
	case MajorNegInt:
		n.arg, err = d.NegInt()
	case MajorBytes:
		n.str, err = d.Bytes()
	case MajorText:
		n.str, err = d.Text()
	case MajorArray, MajorMap:
		var c int
		if m == MajorArray {
			c, err = d.ArrayHeader(1 << 20)
		} else {
			c, err = d.MapHeader(1 << 20)
			c *= 2
		}
		for i := 0; err == nil && i < c; i++ {
			var e node
			e, err = decodeTree(d, depth+1)
			n.elems = append(n.elems, e)
		}
	case MajorTag:
		n.arg, err = d.Tag()
		if err == nil {
			var e node
			e, err = decodeTree(d, depth+1)
			n.elems = append(n.elems, e)
		}
	case MajorSimple:
		if err = d.Null(); err == nil {
			n.arg = simpleNull
		} else {
			var v bool
			v, err = d.Bool()
			n.arg = simpleFalse
			if v {
				n.arg = simpleTrue
			}
		}
	default:
		err = errors.New("unreachable major type")
	}
	return n, err
}

func encodeTree(b []byte, n node) []byte {
	switch n.major {
	case MajorUint:
		return AppendUint(b, n.arg)
	case MajorNegInt:
		return AppendNegInt(b, n.arg)
	case MajorBytes:
		return AppendBytes(b, n.str)
	case MajorText:
		return AppendText(b, string(n.str))
	case MajorArray:
		b = AppendArrayHeader(b, uint64(len(n.elems)))
	case MajorMap:
		b = AppendMapHeader(b, uint64(len(n.elems)/2))
	case MajorTag:
		b = AppendTag(b, n.arg)
	case MajorSimple:
		switch n.arg {
		case simpleNull:
			return AppendNull(b)
		default:
			return AppendBool(b, n.arg == simpleTrue)
		}
	}
	for _, e := range n.elems {
		b = encodeTree(b, e)
	}
	return b
}
