package firmware

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fill returns n bytes of 0xFF, the gap filler.
func fill(n int) []byte { return bytes.Repeat([]byte{0xFF}, n) }

// cat concatenates byte slices.
func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkData reports the first difference between a flat image and the
// expected one.
func checkData(t *testing.T, got, want []byte) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	window := func(b []byte) []byte { return b[i:min(len(b), i+16)] }
	t.Errorf("data: got %d bytes, want %d; first difference at offset %#x: got %x, want %x",
		len(got), len(want), i, window(got), window(want))
}

func TestLoadIHexFixtures(t *testing.T) {
	seq := func(lo, hi byte) []byte {
		var b []byte
		for c := lo; c < hi; c++ {
			b = append(b, c)
		}
		return b
	}
	tests := []struct {
		file string
		addr uint32
		data []byte
	}{
		// The classic I8HEX example: 64 bytes at 0x0100.
		{"wikipedia.hex", 0x0100, mustHex(t, ""+
			"214601360121470136007EFE09D21901"+
			"2146017E17C20001FF5F160021480119"+
			"194E79234623965778239EDA3F01B2CA"+
			"3F0156702B5E712B722B732146013421")},
		// I32HEX (04 records), lowercase, CRLF, blank lines, records out
		// of address order, a start linear address record.
		{"linear.hex", 0x08000000, cat(
			seq(0, 16), []byte{0xAA, 0xBB, 0xCC, 0xDD}, // 0x08000000
			fill(12), []byte{0xDE, 0xAD, 0xBE, 0xEF}, // 0x08000020
			fill(0x10000-0x24),
			[]byte{0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88}, // 0x08010000
		)},
		// I16HEX (02 records); the record at offset 0xFFF8 wraps to the
		// start of its segment, as the Intel specification says.
		{"segment.hex", 0x10000, cat(
			seq(0x88, 0x90),             // wrapped tail, at 0x10000
			fill(8), []byte{1, 2, 3, 4}, // 0x10010
			fill(0xFFF8-0x14), seq(0x80, 0x88), // 0x1FFF8
			[]byte{0x55, 0xAA}, // 0x20000
		)},
		// objcopy -O ihex output of a linked ELF, against objcopy -O
		// binary --gap-fill 0xff of the same file.
		{"real/blink.hex", 0x08000000, readTestdata(t, "real/blink.bin")},
		{"real/low.hex", 0xfff0, readTestdata(t, "real/low.bin")},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			in := readTestdata(t, tt.file)
			for _, f := range []Format{FormatIHex, FormatAuto} {
				img, err := Load(in, f, 0)
				if err != nil {
					t.Fatalf("Load(%q): %v", f, err)
				}
				if img.Format != FormatIHex || !img.HasLoadAddress || img.LoadAddress != tt.addr {
					t.Errorf("Load(%q) = format %q, address %#x (has %v), want ihex at %#x",
						f, img.Format, img.LoadAddress, img.HasLoadAddress, tt.addr)
				}
				checkData(t, img.Data, tt.data)
			}
		})
	}
}

func TestLoadIHexErrors(t *testing.T) {
	const (
		eof  = ":00000001FF\n"
		data = ":0400100001020304E2\n" // 01 02 03 04 at 0x0010
	)
	tests := []struct {
		name    string
		in      string
		maxSize int
		is      error
		want    string
	}{
		{"bad checksum", data + ":020020000909CC\n:0400100001020304E3\n" + eof,
			0, ErrMalformed, "ihex: line 3: checksum mismatch: got 0xe3, want 0xe2"},
		{"bad hex digit", data + ":04001000010G0304E2\n" + eof,
			0, ErrMalformed, "ihex: line 2: invalid hex digit 'G' at column 13"},
		{"non-ascii", data + ":0400100001\xff0304E2\n" + eof,
			0, ErrMalformed, "ihex: line 2: invalid byte 0xff at column 12"},
		{"missing start code", data + "0400100001020304E2\n" + eof,
			0, ErrMalformed, "ihex: line 2: missing start code ':'"},
		{"leading space", data + " :0400100001020304E2\n" + eof,
			0, ErrMalformed, "ihex: line 2: missing start code ':'"},
		{"short record", "\n\n:000001\n" + eof,
			0, ErrMalformed, "ihex: line 3: record too short: 3 bytes, want at least 5"},
		{"odd digits", data + ":00000001F\n",
			0, ErrMalformed, "ihex: line 2: odd number of hex digits (9)"},
		{"length mismatch long", ":0300100001020304E3\n" + eof,
			0, ErrMalformed, "ihex: line 1: length mismatch: byte count is 3, record has 4 data bytes"},
		{"length mismatch short", data + ":05001000010203040D\n" + eof,
			0, ErrMalformed, "ihex: line 2: length mismatch: byte count is 5, record has 4 data bytes"},
		{"overlong record", ":FF" + strings.Repeat("00", 300) + "\n" + eof,
			0, ErrMalformed, "ihex: line 1: length mismatch: byte count is 255, record has 296 data bytes"},
		{"missing eof", data + ":020020000909CC\n",
			0, ErrMalformed, "ihex: truncated: no end-of-file record"},
		{"only blank lines", "\r\n\n  \n",
			0, ErrMalformed, "ihex: truncated: no end-of-file record"},
		{"data after eof", data + eof + "\n" + data,
			0, ErrMalformed, "ihex: line 4: data after end-of-file record (line 2)"},
		{"second eof", data + eof + eof,
			0, ErrMalformed, "ihex: line 3: data after end-of-file record (line 2)"},
		{"overlap", data + ":020012000909DA\n" + eof,
			0, ErrMalformed, "ihex: line 2: data at 0x00000012-0x00000013 overlaps line 1 (0x00000010-0x00000013)"},
		{"overlap lower address later", ":020012000909DA\n" + data + eof,
			0, ErrMalformed, "ihex: line 2: data at 0x00000010-0x00000013 overlaps line 1 (0x00000012-0x00000013)"},
		{"overlap across 04 records", data + ":020000040000FA\n" + data + eof,
			0, ErrMalformed, "ihex: line 3: data at 0x00000010-0x00000013 overlaps line 1"},
		{"unknown record type", data + ":00000006FA\n" + eof,
			0, ErrMalformed, "ihex: line 2: unknown record type 0x06"},
		{"eof with data", data + ":0100000101FD\n",
			0, ErrMalformed, "ihex: line 2: end-of-file record has 1 data bytes, want 0"},
		{"short 04 record", ":0100000408F3\n" + data + eof,
			0, ErrMalformed, "ihex: line 1: extended linear address record has 1 data bytes, want 2"},
		{"short 05 record", data + ":03000005010203F2\n" + eof,
			0, ErrMalformed, "ihex: line 2: start linear address record has 3 data bytes, want 4"},
		{"past 4 GiB", ":02000004FFFFFC\n:10FFF800000102030405060708090A0B0C0D0E0F81\n" + eof,
			0, ErrMalformed, "ihex: line 2: data at 0xfffffff8-0x100000007 extends past 4 GiB"},
		{"no data", "\n" + eof,
			0, ErrEmpty, "ihex: no data records: empty input"},
		{"empty data records only", ":00001000F0\n" + eof,
			0, ErrEmpty, "ihex: no data records"},
		{"over maxSize", data + ":0100FF0001FF\n" + eof,
			0xEF, ErrTooLarge, "ihex: image too large: 240 bytes, limit is 239"},
		// 1 byte at 0 and 1 byte at 64 MiB: a 64 MiB + 1 span.
		{"over 64 MiB", ":0100000001FE\n:020000040400F6\n:0100000001FE\n" + eof,
			0, ErrTooLarge, "ihex: image too large: 67108865 bytes, over the 67108864-byte (64 MiB) limit"},
		{"sparse 4 GiB bounded", ":0100000001FE\n:02000004FFFFFC\n:01FFFF000100\n" + eof,
			1 << 20, ErrTooLarge, "ihex: image too large: 4294967296 bytes, limit is 1048576"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, err := Load([]byte(tt.in), FormatIHex, tt.maxSize)
			if err == nil {
				t.Fatalf("Load succeeded (%d bytes at %#x), want error %q", len(img.Data), img.LoadAddress, tt.want)
			}
			if !errors.Is(err, tt.is) {
				t.Errorf("error %q is not %v", err, tt.is)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error %q, want prefix %q", err, tt.want)
			}
		})
	}
}

// TestLoadIHexBoundary checks the exact limits: a span of exactly maxSize
// and exactly 64 MiB is accepted, and a record ending exactly at 4 GiB too.
func TestLoadIHexBoundary(t *testing.T) {
	const eof = ":00000001FF\n"
	in := ":0100000001FE\n:0100EF00AA66\n" + eof // 0x00: 01, 0xEF: AA
	img, err := Load([]byte(in), FormatIHex, 0xF0)
	if err != nil || len(img.Data) != 0xF0 || img.Data[0] != 1 || img.Data[0xEF] != 0xAA {
		t.Fatalf("span == maxSize: %v", err)
	}
	in = ":02000004FFFFFC\n:02FFFE001234BB\n" + eof
	img, err = Load([]byte(in), FormatIHex, 0)
	if err != nil || img.LoadAddress != 0xFFFFFFFE || !bytes.Equal(img.Data, []byte{0x12, 0x34}) {
		t.Fatalf("record ending at 4 GiB: %+v, %v", img, err)
	}
	// 0x01 at 0 and 0x02 at 64 MiB - 1.
	in = ":0100000001FE\n:0200000403FFF8\n:01FFFF0002FF\n" + eof
	img, err = Load([]byte(in), FormatIHex, 0)
	if err != nil || len(img.Data) != 64<<20 || img.Data[0] != 1 || img.Data[len(img.Data)-1] != 2 {
		t.Fatalf("span == 64 MiB: %v", err)
	}
}
