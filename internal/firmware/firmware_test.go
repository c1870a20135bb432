package firmware

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"runtime"
	"strings"
	"testing"
)

func TestParseFormat(t *testing.T) {
	tests := []struct {
		in   string
		want Format
		ok   bool
	}{
		{"auto", FormatAuto, true},
		{"bin", FormatBinary, true},
		{"wasm", FormatWasm, true},
		{"elf", FormatELF, true},
		{"ihex", FormatIHex, true},
		{"", "", false},
		{"hex", "", false},
		{"ELF", "", false},
		{"binary", "", false},
	}
	for _, tt := range tests {
		got, err := ParseFormat(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseFormat(%q) = %q, %v; want %q, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
	if _, err := ParseFormat("srec"); err == nil || !strings.Contains(err.Error(), "auto, bin, wasm, elf or ihex") {
		t.Errorf("ParseFormat(srec) error %v does not list the formats", err)
	}
}

var wasmModule = []byte("\x00asm\x01\x00\x00\x00\x01\x04\x01\x60\x00\x00")

func TestDetect(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want Format
	}{
		{"elf 32", buildELF(elf.ELFCLASS32, binary.LittleEndian, []seg{{paddr: 1, data: text}}), FormatELF},
		{"elf 64 BE", buildELF(elf.ELFCLASS64, binary.BigEndian, []seg{{paddr: 1, data: text}}), FormatELF},
		{"real elf", readTestdata(t, "real/blink.elf"), FormatELF},
		{"elf magic only", []byte("\x7fELF"), FormatELF},
		{"wasm", wasmModule, FormatWasm},
		{"wasm header only", wasmModule[:8], FormatWasm},
		{"wasm version 2", []byte("\x00asm\x02\x00\x00\x00"), FormatBinary},
		{"wasm short", []byte("\x00asm\x01\x00"), FormatBinary},
		{"ihex", readTestdata(t, "wikipedia.hex"), FormatIHex},
		{"ihex crlf lowercase", readTestdata(t, "linear.hex"), FormatIHex},
		{"ihex segment", readTestdata(t, "segment.hex"), FormatIHex},
		{"ihex objcopy", readTestdata(t, "real/blink.hex"), FormatIHex},
		{"ihex leading blank lines", []byte("\n\r\n:00000001FF"), FormatIHex},
		// Syntactically a record; Load reports the bad checksum.
		{"ihex bad checksum", []byte(":00000001FE\n"), FormatIHex},
		{"ihex then garbage", []byte(":00000001FF\nhello\n"), FormatBinary},
		{"ihex bad digit", []byte(":0000000XFF\n"), FormatBinary},
		{"ihex short line", []byte(":00000001FF\n:0000\n"), FormatBinary},
		{"colon only", []byte(":"), FormatBinary},
		{"blank text", []byte("\n \n"), FormatBinary},
		{"indented record", []byte(" :00000001FF"), FormatBinary},
		{"text", []byte("hello\n"), FormatBinary},
		{"raw", readTestdata(t, "real/blink.bin"), FormatBinary},
		{"empty", nil, FormatBinary},
	}
	for _, tt := range tests {
		if got := Detect(tt.in); got != tt.want {
			t.Errorf("Detect(%s) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestLoadRaw(t *testing.T) {
	raw := []byte{0xde, 0xad, 0xbe, 0xef}
	tests := []struct {
		name    string
		in      []byte
		f       Format
		maxSize int
		want    Format // "" for an error
		is      error
		msg     string
	}{
		{"binary", raw, FormatBinary, 0, FormatBinary, nil, ""},
		{"binary auto", raw, FormatAuto, 0, FormatBinary, nil, ""},
		{"binary at maxSize", raw, FormatBinary, 4, FormatBinary, nil, ""},
		{"ihex forced binary", []byte(":00000001FF\n"), FormatBinary, 0, FormatBinary, nil, ""},
		{"elf forced binary", []byte("\x7fELF junk"), FormatBinary, 0, FormatBinary, nil, ""},
		{"wasm", wasmModule, FormatWasm, 0, FormatWasm, nil, ""},
		{"wasm auto", wasmModule, FormatAuto, 0, FormatWasm, nil, ""},
		{"binary over maxSize", raw, FormatBinary, 3, "", ErrTooLarge, "bin: image too large: 4 bytes, limit is 3"},
		{"wasm over maxSize", wasmModule, FormatWasm, 8, "", ErrTooLarge, "wasm: image too large: 14 bytes, limit is 8"},
		{"empty binary", nil, FormatBinary, 0, "", ErrEmpty, "empty input"},
		{"empty auto", []byte{}, FormatAuto, 0, "", ErrEmpty, "empty input"},
		{"empty wasm", nil, FormatWasm, 0, "", ErrEmpty, "empty input"},
		{"empty elf", nil, FormatELF, 0, "", ErrEmpty, "empty input"},
		{"empty ihex", nil, FormatIHex, 0, "", ErrEmpty, "empty input"},
		{"wasm bad magic", raw, FormatWasm, 0, "", ErrMalformed, "wasm: missing module header"},
		{"wasm short", wasmModule[:7], FormatWasm, 0, "", ErrMalformed, "wasm: missing module header"},
		{"wasm version 2", []byte("\x00asm\x02\x00\x00\x00"), FormatWasm, 0, "", ErrMalformed,
			"wasm: unsupported binary format version 2, want 1"},
		{"unknown format", raw, Format("srec"), 0, "", nil, `unknown format "srec"`},
		{"negative maxSize", raw, FormatBinary, -1, "", nil, "invalid size bound -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, err := Load(tt.in, tt.f, tt.maxSize)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("Load succeeded, want error %q", tt.msg)
				}
				if tt.is != nil && !errors.Is(err, tt.is) {
					t.Errorf("error %q is not %v", err, tt.is)
				}
				if err.Error() != tt.msg && !strings.HasPrefix(err.Error(), tt.msg+" ") {
					t.Errorf("error %q, want %q", err, tt.msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if img.Format != tt.want || img.HasLoadAddress || img.LoadAddress != 0 || !bytes.Equal(img.Data, tt.in) {
				t.Errorf("Load = %+v, want the input as %q without load address", img, tt.want)
			}
		})
	}
}

// TestLoadRejectsBeforeAllocating checks that a sparse input whose span is
// too large is rejected without allocating the span.
func TestLoadRejectsBeforeAllocating(t *testing.T) {
	inputs := map[string]struct {
		in []byte
		f  Format
	}{
		"ihex": {[]byte(":0100000001FE\n:02000004FFFFFC\n:01FFFF000100\n:00000001FF\n"), FormatIHex},
		"elf": {buildELF(elf.ELFCLASS32, binary.LittleEndian, []seg{
			{paddr: 0, data: []byte{1}}, {paddr: 0xFFFFFFFF, data: []byte{2}},
		}), FormatELF},
	}
	for name, tt := range inputs {
		for _, maxSize := range []int{0, 1 << 20} {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := Load(tt.in, tt.f, maxSize)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrTooLarge) {
				t.Errorf("%s, maxSize %d: error %v, want ErrTooLarge", name, maxSize, err)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
				t.Errorf("%s, maxSize %d: allocated %d bytes before rejecting", name, maxSize, n)
			}
		}
	}
}
