package firmware

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// seg describes one program header for buildELF. Its data is laid out in
// the file after the headers unless off is set.
type seg struct {
	typ    elf.ProgType // PT_LOAD if zero
	vaddr  uint64       // paddr if zero
	paddr  uint64
	data   []byte
	memsz  uint64 // len(data) if zero
	off    uint64 // file offset of data, overriding the layout, if non-zero
	filesz uint64 // len(data) if zero
}

// buildELF writes a minimal executable with the given program headers and
// no section headers, as a linker for a microcontroller would.
func buildELF(class elf.Class, order binary.ByteOrder, segs []seg) []byte {
	var ident [elf.EI_NIDENT]byte
	copy(ident[:], elf.ELFMAG)
	ident[elf.EI_CLASS] = byte(class)
	ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	if order == binary.BigEndian {
		ident[elf.EI_DATA] = byte(elf.ELFDATA2MSB)
	}
	ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)

	ehsize, phentsize := 52, 32
	machine := elf.EM_ARM
	if class == elf.ELFCLASS64 {
		ehsize, phentsize, machine = 64, 56, elf.EM_AARCH64
	}
	if order == binary.BigEndian {
		machine = elf.EM_PPC
		if class == elf.ELFCLASS64 {
			machine = elf.EM_PPC64
		}
	}
	// Lay the segment data out after the program headers.
	offs := make([]uint64, len(segs))
	end := uint64(ehsize + phentsize*len(segs))
	var payload []byte
	for i, s := range segs {
		offs[i] = end
		payload = append(payload, s.data...)
		end += uint64(len(s.data))
	}

	var buf bytes.Buffer
	w := func(v any) {
		if err := binary.Write(&buf, order, v); err != nil {
			panic(err)
		}
	}
	if class == elf.ELFCLASS64 {
		w(elf.Header64{Ident: ident, Type: uint16(elf.ET_EXEC), Machine: uint16(machine),
			Version: uint32(elf.EV_CURRENT), Phoff: uint64(ehsize), Ehsize: uint16(ehsize),
			Phentsize: uint16(phentsize), Phnum: uint16(len(segs)), Shentsize: 64})
	} else {
		w(elf.Header32{Ident: ident, Type: uint16(elf.ET_EXEC), Machine: uint16(machine),
			Version: uint32(elf.EV_CURRENT), Phoff: uint32(ehsize), Ehsize: uint16(ehsize),
			Phentsize: uint16(phentsize), Phnum: uint16(len(segs)), Shentsize: 40})
	}
	for i, s := range segs {
		typ, vaddr, memsz, off, filesz := s.typ, s.vaddr, s.memsz, s.off, s.filesz
		if typ == 0 {
			typ = elf.PT_LOAD
		}
		if vaddr == 0 {
			vaddr = s.paddr
		}
		if memsz == 0 {
			memsz = uint64(len(s.data))
		}
		if off == 0 {
			off = offs[i]
		}
		if filesz == 0 {
			filesz = uint64(len(s.data))
		}
		if class == elf.ELFCLASS64 {
			w(elf.Prog64{Type: uint32(typ), Flags: uint32(elf.PF_R), Off: off, Vaddr: vaddr,
				Paddr: s.paddr, Filesz: filesz, Memsz: memsz, Align: 4})
		} else {
			w(elf.Prog32{Type: uint32(typ), Flags: uint32(elf.PF_R), Off: uint32(off), Vaddr: uint32(vaddr),
				Paddr: uint32(s.paddr), Filesz: uint32(filesz), Memsz: uint32(memsz), Align: 4})
		}
	}
	buf.Write(payload)
	return buf.Bytes()
}

var (
	text   = []byte{0x00, 0x10, 0x00, 0x20, 0x41, 0x00, 0x00, 0x08, 0xfe, 0xe7} // vectors + "b ."
	rodata = []byte("hello\x00")
	data8  = []byte{0xd0, 0x0d, 0xfe, 0xca, 1, 2, 3, 4}
)

func TestLoadELF(t *testing.T) {
	tests := []struct {
		name string
		elf  []byte
		addr uint32
		data []byte
	}{
		{
			// Cortex-M style: .data runs in RAM at 0x20000000 (VMA) but
			// is stored in flash after .text (LMA); the program headers
			// are not in address order; a bss-only segment, a note and a
			// GNU_STACK header are ignored.
			name: "32-bit LE ARM, LMA != VMA, gap",
			elf: buildELF(elf.ELFCLASS32, binary.LittleEndian, []seg{
				{vaddr: 0x20000000, paddr: 0x08000100, data: data8, memsz: 64},
				{typ: elf.PT_NOTE, paddr: 0x07000000, data: []byte("note")},
				{paddr: 0x08000000, data: text},
				{paddr: 0x20000040, memsz: 0x400}, // .bss only
				{typ: elf.PT_GNU_STACK},
			}),
			addr: 0x08000000,
			data: cat(text, fill(0x100-len(text)), data8),
		},
		{
			name: "64-bit LE",
			elf: buildELF(elf.ELFCLASS64, binary.LittleEndian, []seg{
				{vaddr: 0xffff000040080000, paddr: 0x40080000, data: text},
				{vaddr: 0xffff000040090000, paddr: 0x40080000 + uint64(len(text)), data: rodata, memsz: 0x1000},
			}),
			addr: 0x40080000,
			data: cat(text, rodata),
		},
		{
			name: "32-bit BE",
			elf: buildELF(elf.ELFCLASS32, binary.BigEndian, []seg{
				{paddr: 0xfff00000, data: text},
				{paddr: 0xfff00010, data: rodata},
				{paddr: 0xfffffffc, data: []byte{0x48, 0, 0, 0}}, // reset vector ends at 4 GiB
			}),
			addr: 0xfff00000,
			data: cat(text, fill(6), rodata, fill(0xffffc-0x16), []byte{0x48, 0, 0, 0}),
		},
		{
			name: "64-bit BE",
			elf: buildELF(elf.ELFCLASS64, binary.BigEndian, []seg{
				{paddr: 0, data: data8},
			}),
			addr: 0,
			data: data8,
		},
		// Real linker output (see testdata/real/gen.sh), against objcopy
		// -O binary --gap-fill 0xff of the same file.
		{"ld: flash + RAM", readTestdata(t, "real/blink.elf"), 0x08000000, readTestdata(t, "real/blink.bin")},
		{"ld: low memory", readTestdata(t, "real/low.elf"), 0xfff0, readTestdata(t, "real/low.bin")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, f := range []Format{FormatELF, FormatAuto} {
				img, err := Load(tt.elf, f, 0)
				if err != nil {
					t.Fatalf("Load(%q): %v", f, err)
				}
				if img.Format != FormatELF || !img.HasLoadAddress || img.LoadAddress != tt.addr {
					t.Errorf("Load(%q) = format %q, address %#x (has %v), want elf at %#x",
						f, img.Format, img.LoadAddress, img.HasLoadAddress, tt.addr)
				}
				checkData(t, img.Data, tt.data)
			}
		})
	}
}

func TestLoadELFErrors(t *testing.T) {
	le32 := func(segs ...seg) []byte { return buildELF(elf.ELFCLASS32, binary.LittleEndian, segs) }
	le64 := func(segs ...seg) []byte { return buildELF(elf.ELFCLASS64, binary.LittleEndian, segs) }
	valid := le32(seg{paddr: 0x08000000, data: text})
	patch := func(b []byte, off int, v ...byte) []byte {
		b = bytes.Clone(b)
		copy(b[off:], v)
		return b
	}
	tests := []struct {
		name    string
		in      []byte
		maxSize int
		is      error
		want    string
	}{
		{"magic only", []byte("\x7fELF"), 0, ErrMalformed, "elf: "},
		{"truncated header", valid[:30], 0, ErrMalformed, "elf: "},
		{"truncated program headers", valid[:60], 0, ErrMalformed, "elf: "},
		{"bad class", patch(valid, elf.EI_CLASS, 9), 0, ErrMalformed, "elf: unknown ELF class"},
		{"bad byte order", patch(valid, elf.EI_DATA, 9), 0, ErrMalformed, "elf: unknown ELF data encoding"},
		{"bad version", patch(valid, elf.EI_VERSION, 2), 0, ErrMalformed, "elf: unknown ELF version"},
		{"program headers past EOF", patch(valid, 28, 0xff, 0xff, 0, 0), 0, ErrMalformed, "elf: "},
		{"huge phnum", patch(valid, 44, 0xff, 0xff), 0, ErrMalformed, "elf: "},
		{"segment offset past EOF", le32(seg{paddr: 0x1000, data: text, off: 0x10000}),
			0, ErrMalformed, "elf: segment 0: file data 0x10000+0xa extends past end of file (94 bytes)"},
		{"segment size past EOF", le32(seg{paddr: 0x1000, data: text, filesz: 11, memsz: 11}),
			0, ErrMalformed, "elf: segment 0: file data 0x54+0xb extends past end of file (94 bytes)"},
		{"segment offset overflows", le64(seg{paddr: 0x1000, data: text, off: 1<<64 - 4}),
			0, ErrMalformed, "elf: "}, // caught by debug/elf
		{"overlapping segments", le32(seg{paddr: 0x1000, data: text}, seg{paddr: 0x1008, data: rodata}),
			0, ErrMalformed, "elf: segment 1: data at 0x00001008-0x0000100d overlaps segment 0 (0x00001000-0x00001009)"},
		{"same address", le32(seg{paddr: 0x1000, data: rodata}, seg{paddr: 0x1000, data: text}),
			0, ErrMalformed, "elf: segment 1: data at 0x00001000-0x00001009 overlaps segment 0"},
		{"address above 4 GiB", le64(seg{paddr: 1 << 32, data: text}),
			0, ErrMalformed, "elf: segment 0: physical address 0x100000000+0xa extends past 4 GiB"},
		{"segment crosses 4 GiB", le64(seg{paddr: 1<<32 - 4, data: text}),
			0, ErrMalformed, "elf: segment 0: physical address 0xfffffffc+0xa extends past 4 GiB"},
		{"filesz > memsz", le32(seg{paddr: 0x1000, data: text, memsz: 4}),
			0, ErrMalformed, "elf: segment 0: file size 10 exceeds memory size 4"},
		{"no segments", le32(), 0, ErrEmpty, "elf: no loadable segments with file data: empty input"},
		{"bss only", le32(seg{paddr: 0x20000000, memsz: 0x100}, seg{typ: elf.PT_NOTE, data: text}),
			0, ErrEmpty, "elf: no loadable segments"},
		{"over maxSize", le32(seg{paddr: 0x1000, data: text}, seg{paddr: 0x1100, data: rodata}),
			0x105, ErrTooLarge, "elf: image too large: 262 bytes, limit is 261"},
		{"over 64 MiB", le32(seg{paddr: 0, data: text}, seg{paddr: 64 << 20, data: []byte{1}}),
			0, ErrTooLarge, "elf: image too large: 67108865 bytes, over the 67108864-byte (64 MiB) limit"},
		{"sparse 4 GiB", le64(seg{paddr: 0, data: text}, seg{paddr: 1<<32 - 1, data: []byte{1}}),
			0, ErrTooLarge, "elf: image too large: 4294967296 bytes, over the 67108864-byte (64 MiB) limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, err := Load(tt.in, FormatELF, tt.maxSize)
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

// TestLoadELFTruncations loads every prefix of valid files: none may panic
// or succeed with a wrong image.
func TestLoadELFTruncations(t *testing.T) {
	for _, in := range [][]byte{
		buildELF(elf.ELFCLASS32, binary.LittleEndian, []seg{{paddr: 0x100, data: text}, {paddr: 0x200, data: data8}}),
		buildELF(elf.ELFCLASS64, binary.BigEndian, []seg{{paddr: 0x100, data: text}}),
		readTestdata(t, "real/blink.elf"),
	} {
		want, err := Load(in, FormatELF, 0)
		if err != nil {
			t.Fatal(err)
		}
		for n := range len(in) {
			img, err := Load(in[:n], FormatELF, 0)
			if err == nil && !bytes.Equal(img.Data, want.Data) {
				t.Errorf("prefix of %d bytes: loaded %d bytes at %#x, want error or the full image", n, len(img.Data), img.LoadAddress)
			}
		}
	}
}
