package cbor

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rfc8949Valid are the RFC 8949 Appendix A examples within the accepted
// subset (no floats, no undefined, no other simple values, no indefinite
// lengths).
var rfc8949Valid = []string{
	"00", "01", "0a", "17", "1818", "1819", "1864", "1903e8", "1a000f4240",
	"1b000000e8d4a51000", "1bffffffffffffffff", "3bffffffffffffffff",
	"20", "29", "3863", "3903e7",
	"f4", "f5", "f6",
	"c074323031332d30332d32315432303a30343a30305a", "c11a514b67b0",
	"d74401020304", "d818456449455446",
	"d82076687474703a2f2f7777772e6578616d706c652e636f6d",
	"40", "4401020304",
	"60", "6161", "6449455446", "62225c", "62c3bc", "63e6b0b4", "64f0908591",
	"80", "83010203", "8301820203820405",
	"98190102030405060708090a0b0c0d0e0f101112131415161718181819",
	"a0", "a201020304", "a26161016162820203", "826161a161626163",
	"a56161614161626142616361436164614461656145",
}

func TestRFC8949RoundTrip(t *testing.T) {
	for _, h := range rfc8949Valid {
		in := unhex(t, h)
		d := NewDecoder(in)
		n, err := decodeTree(&d, 0)
		if err != nil {
			t.Errorf("%s: decode: %v", h, err)
			continue
		}
		if err := d.Finish(); err != nil {
			t.Errorf("%s: %v", h, err)
		}
		if out := encodeTree(nil, n); !bytes.Equal(out, in) {
			t.Errorf("%s: re-encoded as %x", h, out)
		}
		d = NewDecoder(in)
		raw, err := d.RawItem()
		if err != nil || !bytes.Equal(raw, in) {
			t.Errorf("%s: RawItem = %x, %v", h, raw, err)
		}
	}
}

func TestIntegers(t *testing.T) {
	tests := []struct {
		hex string
		v   int64
	}{
		{"00", 0}, {"01", 1}, {"0a", 10}, {"17", 23}, {"1818", 24}, {"1819", 25},
		{"1864", 100}, {"1903e8", 1000}, {"1a000f4240", 1000000},
		{"1b000000e8d4a51000", 1000000000000}, {"20", -1}, {"29", -10},
		{"3863", -100}, {"3903e7", -1000}, {"3a0001000f", -65552},
		{"1b7fffffffffffffff", math.MaxInt64}, {"3b7fffffffffffffff", math.MinInt64},
	}
	for _, tt := range tests {
		in := unhex(t, tt.hex)
		d := NewDecoder(in)
		v, err := d.Int()
		if err != nil || v != tt.v || !d.Done() {
			t.Errorf("Int(%s) = %d, %v; want %d", tt.hex, v, err, tt.v)
		}
		if out := AppendInt(nil, tt.v); !bytes.Equal(out, in) {
			t.Errorf("AppendInt(%d) = %x, want %s", tt.v, out, tt.hex)
		}
	}
	// Out of range for int64.
	for _, h := range []string{"1b8000000000000000", "1bffffffffffffffff", "3bffffffffffffffff", "3b8000000000000000"} {
		d := NewDecoder(unhex(t, h))
		if _, err := d.Int(); !errors.Is(err, ErrRange) || d.Offset() != 0 {
			t.Errorf("Int(%s): err = %v, offset %d; want ErrRange, 0", h, err, d.Offset())
		}
	}
	d := NewDecoder(unhex(t, "1bffffffffffffffff"))
	if v, err := d.Uint(); err != nil || v != math.MaxUint64 {
		t.Errorf("Uint = %d, %v", v, err)
	}
	d = NewDecoder(unhex(t, "1b0000000100000000"))
	if _, err := d.Uint32(); !errors.Is(err, ErrRange) {
		t.Errorf("Uint32(2^32) err = %v", err)
	}
	d = NewDecoder(unhex(t, "1affffffff"))
	if v, err := d.Uint32(); err != nil || v != math.MaxUint32 {
		t.Errorf("Uint32 = %d, %v", v, err)
	}
}

func TestStrings(t *testing.T) {
	in := unhex(t, "4401020304"+"6449455446"+"62c3bc")
	d := NewDecoder(in)
	b, err := d.Bytes()
	if err != nil || !bytes.Equal(b, []byte{1, 2, 3, 4}) || cap(b) != 4 {
		t.Fatalf("Bytes = %x (cap %d), %v", b, cap(b), err)
	}
	if &b[0] != &in[1] {
		t.Error("Bytes copied its result")
	}
	s, err := d.Text()
	if err != nil || string(s) != "IETF" {
		t.Fatalf("Text = %q, %v", s, err)
	}
	if _, err := d.Bytes(); !errors.Is(err, ErrType) {
		t.Fatalf("Bytes on tstr: %v", err)
	}
	s, err = d.Text()
	if err != nil || string(s) != "ü" || !d.Done() {
		t.Fatalf("Text = %q, %v", s, err)
	}
	if out := AppendText(AppendBytes(nil, []byte{1, 2, 3, 4}), "IETF"); !bytes.Equal(out, in[:10]) {
		t.Errorf("encode = %x", out)
	}
}

func TestContainersAndTags(t *testing.T) {
	d := NewDecoder(unhex(t, "c1a20102033904d2"))
	if tag, err := d.Tag(); err != nil || tag != 1 {
		t.Fatalf("Tag = %d, %v", tag, err)
	}
	if _, err := d.ArrayHeader(4); !errors.Is(err, ErrType) {
		t.Fatalf("ArrayHeader on map: %v", err)
	}
	if _, err := d.MapHeader(1); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("MapHeader(1) on 2-entry map: %v", err)
	}
	n, err := d.MapHeader(2)
	if err != nil || n != 2 {
		t.Fatalf("MapHeader = %d, %v", n, err)
	}
	var got []int64
	for i := 0; i < 4; i++ {
		v, err := d.Int()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	if want := []int64{1, 2, 3, -1235}; !equalInts(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	enc := AppendInt(AppendUint(AppendInt(AppendUint(AppendMapHeader(AppendTag(nil, 1), 2), 1), 2), 3), -1235)
	if want := unhex(t, "c1a20102033904d2"); !bytes.Equal(enc, want) {
		t.Errorf("encode = %x, want %x", enc, want)
	}
	d = NewDecoder(unhex(t, "f6f5f4"))
	if err := d.Null(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Bool(); err != nil {
		t.Fatal(err)
	}
	if err := d.Null(); !errors.Is(err, ErrType) {
		t.Fatal("Null accepted false")
	}
	if v, err := d.Bool(); err != nil || v {
		t.Fatal("Bool(false)")
	}
}

func equalInts(a, b []int64) bool {
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

func TestEncodeBoundaries(t *testing.T) {
	tests := []struct {
		v   uint64
		hex string
	}{
		{23, "17"}, {24, "1818"}, {255, "18ff"}, {256, "190100"}, {65535, "19ffff"},
		{65536, "1a00010000"}, {math.MaxUint32, "1affffffff"},
		{math.MaxUint32 + 1, "1b0000000100000000"}, {math.MaxUint64, "1bffffffffffffffff"},
	}
	for _, tt := range tests {
		if got := AppendUint(nil, tt.v); hex.EncodeToString(got) != tt.hex {
			t.Errorf("AppendUint(%d) = %x, want %s", tt.v, got, tt.hex)
		}
		d := NewDecoder(unhex(t, tt.hex))
		if v, err := d.Uint(); err != nil || v != tt.v {
			t.Errorf("Uint(%s) = %d, %v", tt.hex, v, err)
		}
	}
	if got := AppendNegInt(nil, math.MaxUint64); hex.EncodeToString(got) != "3bffffffffffffffff" {
		t.Errorf("AppendNegInt = %x", got)
	}
	if got := AppendInt(nil, math.MinInt64); hex.EncodeToString(got) != "3b7fffffffffffffff" {
		t.Errorf("AppendInt(MinInt64) = %x", got)
	}
}

// TestReject checks that every unacceptable input is rejected by Skip (and
// so RawItem) with the expected error and without consuming input.
func TestReject(t *testing.T) {
	tests := []struct {
		name string
		hex  string
		err  error
	}{
		{"empty", "", ErrTruncated},
		{"uint8 truncated", "18", ErrTruncated},
		{"uint16 truncated", "1901", ErrTruncated},
		{"uint32 truncated", "1a000100", ErrTruncated},
		{"uint64 truncated", "1b00000001000000", ErrTruncated},
		{"reserved ai 28", "1c", ErrMalformed},
		{"reserved ai 29", "3d", ErrMalformed},
		{"reserved ai 30", "5e", ErrMalformed},
		{"indefinite uint", "1f", ErrMalformed},
		{"indefinite negint", "3f", ErrMalformed},
		{"indefinite tag", "df", ErrMalformed},
		{"indefinite bstr", "5f42010243030405ff", ErrIndefinite},
		{"indefinite tstr", "7f657374726561646d696e67ff", ErrIndefinite},
		{"indefinite array", "9fff", ErrIndefinite},
		{"indefinite map", "bf61610161629f0203ffff", ErrIndefinite},
		{"break", "ff", ErrIndefinite},
		{"non-preferred uint 1 byte", "1817", ErrNotPreferred},
		{"non-preferred uint 2 bytes", "1900ff", ErrNotPreferred},
		{"non-preferred uint 4 bytes", "1a0000ffff", ErrNotPreferred},
		{"non-preferred uint 8 bytes", "1b00000000ffffffff", ErrNotPreferred},
		{"non-preferred negint", "3800", ErrNotPreferred},
		{"non-preferred bstr length", "580100", ErrNotPreferred},
		{"non-preferred tstr length", "78016161", ErrNotPreferred},
		{"non-preferred array count", "980101", ErrNotPreferred},
		{"non-preferred map count", "b9000101 02", ErrNotPreferred},
		{"non-preferred tag", "d80101", ErrNotPreferred},
		{"half float", "f93c00", ErrUnsupported},
		{"single float", "fa47c35000", ErrUnsupported},
		{"double float", "fb3ff199999999999a", ErrUnsupported},
		{"undefined", "f7", ErrUnsupported},
		{"simple 16", "f0", ErrUnsupported},
		{"simple 255", "f8ff", ErrUnsupported},
		{"simple 24 two bytes (ill-formed)", "f818", ErrMalformed},
		{"bstr longer than input", "44010203", ErrTruncated},
		{"bstr huge length", "5bffffffffffffffff", ErrTruncated},
		{"tstr invalid utf-8", "62c328", ErrMalformed},
		{"array count beyond input", "83 0102", ErrTruncated},
		{"array huge count", "9bffffffffffffffff", ErrTruncated},
		{"map huge count", "bbffffffffffffffff", ErrTruncated},
		{"map missing value", "a2010203", ErrTruncated},
		{"tag without item", "c1", ErrTruncated},
		{"nested error", "8301820203820445", ErrTruncated},
		{"too deep", "818181818181818181818181818181818100", ErrDepth},
		{"deep tags", "c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c100", ErrDepth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := unhex(t, removeSpaces(tt.hex))
			d := NewDecoder(in)
			err := d.Skip()
			if !errors.Is(err, tt.err) {
				t.Errorf("Skip(%s) = %v, want %v", tt.hex, err, tt.err)
			}
			if d.Offset() != 0 {
				t.Errorf("Skip consumed %d bytes on error", d.Offset())
			}
			d = NewDecoder(in)
			if _, err := decodeTree(&d, 0); err == nil {
				t.Errorf("typed decoding accepted %s", tt.hex)
			}
		})
	}
}

func removeSpaces(s string) string {
	return string(bytes.ReplaceAll([]byte(s), []byte(" "), nil))
}

func TestDepthLimit(t *testing.T) {
	// MaxDepth nested arrays around an integer are accepted.
	in := append(bytes.Repeat([]byte{0x81}, MaxDepth), 0x00)
	d := NewDecoder(in)
	if err := d.Skip(); err != nil || !d.Done() {
		t.Fatalf("depth %d: %v", MaxDepth, err)
	}
	in = append(bytes.Repeat([]byte{0x81}, MaxDepth+1), 0x00)
	d = NewDecoder(in)
	if err := d.Skip(); !errors.Is(err, ErrDepth) {
		t.Fatalf("depth %d: %v", MaxDepth+1, err)
	}
}

func TestTypedRejectsLeavePosition(t *testing.T) {
	d := NewDecoder(unhex(t, "6161"))
	for name, f := range map[string]func() error{
		"Uint":  func() error { _, err := d.Uint(); return err },
		"Int":   func() error { _, err := d.Int(); return err },
		"Bytes": func() error { _, err := d.Bytes(); return err },
		"Array": func() error { _, err := d.ArrayHeader(1); return err },
		"Map":   func() error { _, err := d.MapHeader(1); return err },
		"Tag":   func() error { _, err := d.Tag(); return err },
		"Null":  d.Null,
		"Bool":  func() error { _, err := d.Bool(); return err },
	} {
		if err := f(); !errors.Is(err, ErrType) || d.Offset() != 0 {
			t.Errorf("%s on tstr: %v at offset %d", name, err, d.Offset())
		}
	}
	if err := d.Finish(); !errors.Is(err, ErrTrailing) {
		t.Errorf("Finish with data left: %v", err)
	}
}

func TestKeySet(t *testing.T) {
	var s KeySet
	for i := 0; i < MaxMapKeys; i++ {
		if err := s.Add(AppendInt(nil, int64(i)-10)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Add(AppendInt(nil, 5)); !errors.Is(err, ErrDuplicateKey) {
		t.Errorf("duplicate: %v", err)
	}
	if err := s.Add(AppendInt(nil, 1000)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("full: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	for _, h := range rfc8949Valid {
		f.Add(unhex(f, h))
	}
	f.Add(unhex(f, "5f42010243030405ff"))
	f.Add(unhex(f, "d28443a10126a10442313154546869732069732074686520636f6e74656e742e"))
	f.Fuzz(func(t *testing.T, in []byte) {
		d := NewDecoder(in)
		skipErr := d.Skip()
		skipped := d.Offset()
		d2 := NewDecoder(in)
		n, err := decodeTree(&d2, 0)
		if (err == nil) != (skipErr == nil) {
			t.Fatalf("Skip error %v but typed decode error %v", skipErr, err)
		}
		if err != nil {
			if skipped != 0 {
				t.Fatalf("failed Skip consumed %d bytes", skipped)
			}
			return
		}
		if d2.Offset() != skipped {
			t.Fatalf("Skip consumed %d bytes, typed decode %d", skipped, d2.Offset())
		}
		// Accepted items are in preferred serialization, so re-encoding
		// reproduces them exactly.
		if out := encodeTree(nil, n); !bytes.Equal(out, in[:skipped]) {
			t.Fatalf("round trip: %x -> %x", in[:skipped], out)
		}
	})
}
