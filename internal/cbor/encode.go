package cbor

// appendHead appends an item head with the shortest encoding of arg.
func appendHead(b []byte, m Major, arg uint64) []byte {
	t := byte(m) << 5
	switch {
	case arg < 24:
		return append(b, t|byte(arg))
	case arg <= 0xff:
		return append(b, t|24, byte(arg))
	case arg <= 0xffff:
		return append(b, t|25, byte(arg>>8), byte(arg))
	case arg <= 0xffffffff:
		return append(b, t|26, byte(arg>>24), byte(arg>>16), byte(arg>>8), byte(arg))
	default:
		return append(b, t|27, byte(arg>>56), byte(arg>>48), byte(arg>>40), byte(arg>>32),
			byte(arg>>24), byte(arg>>16), byte(arg>>8), byte(arg))
	}
}

// AppendUint appends the unsigned integer v.
func AppendUint(b []byte, v uint64) []byte { return appendHead(b, MajorUint, v) }

// AppendNegInt appends the negative integer -1-n.
func AppendNegInt(b []byte, n uint64) []byte { return appendHead(b, MajorNegInt, n) }

// AppendInt appends the integer v.
func AppendInt(b []byte, v int64) []byte {
	if v < 0 {
		return appendHead(b, MajorNegInt, uint64(-1-v))
	}
	return appendHead(b, MajorUint, uint64(v))
}

// AppendBytes appends p as a byte string.
func AppendBytes(b, p []byte) []byte {
	return append(appendHead(b, MajorBytes, uint64(len(p))), p...)
}

// AppendText appends s as a text string. The caller must ensure s is valid
// UTF-8.
func AppendText(b []byte, s string) []byte {
	return append(appendHead(b, MajorText, uint64(len(s))), s...)
}

// AppendArrayHeader appends the head of an array of n elements.
func AppendArrayHeader(b []byte, n uint64) []byte { return appendHead(b, MajorArray, n) }

// AppendMapHeader appends the head of a map of n entries.
func AppendMapHeader(b []byte, n uint64) []byte { return appendHead(b, MajorMap, n) }

// AppendTag appends the head of a tag with number t.
func AppendTag(b []byte, t uint64) []byte { return appendHead(b, MajorTag, t) }

// AppendNull appends null.
func AppendNull(b []byte) []byte { return append(b, 0xf6) }

// AppendBool appends false or true.
func AppendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 0xf5)
	}
	return append(b, 0xf4)
}
