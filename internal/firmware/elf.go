package firmware

import (
	"bytes"
	"debug/elf"
	"fmt"
)

// loadELF flattens the PT_LOAD segments of an ELF file (32- or 64-bit,
// either byte order) at their physical addresses (LMA), as a flash
// programmer would. Only the file-backed part of each segment is taken:
// a Memsz > Filesz tail (.bss) is zeroed by the startup code, not stored.
func loadELF(b []byte, maxSize int) (img *Image, err error) {
	// debug/elf is meant to return errors on malformed input; recover any
	// panic it still has as defence in depth.
	defer func() {
		if r := recover(); r != nil {
			img, err = nil, malformed("elf: malformed file (panic: %v)", r)
		}
	}()
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return nil, malformed("elf: %v", err)
	}
	var pieces []piece
	for i, p := range f.Progs {
		if p.Type != elf.PT_LOAD || p.Filesz == 0 {
			continue
		}
		src := fmt.Sprintf("segment %d", i)
		if p.Filesz > p.Memsz {
			return nil, malformed("elf: %s: file size %d exceeds memory size %d", src, p.Filesz, p.Memsz)
		}
		if p.Off > uint64(len(b)) || p.Filesz > uint64(len(b))-p.Off {
			return nil, malformed("elf: %s: file data 0x%x+0x%x extends past end of file (%d bytes)",
				src, p.Off, p.Filesz, len(b))
		}
		if p.Paddr > 1<<32 || p.Filesz > 1<<32-p.Paddr {
			return nil, malformed("elf: %s: physical address 0x%x+0x%x extends past 4 GiB",
				src, p.Paddr, p.Filesz)
		}
		pieces = append(pieces, piece{p.Paddr, b[p.Off : p.Off+p.Filesz], src, i})
	}
	if len(pieces) == 0 {
		return nil, fmt.Errorf("elf: no loadable segments with file data: %w", ErrEmpty)
	}
	data, err := flatten(pieces, maxSize)
	if err != nil {
		return nil, fmt.Errorf("elf: %w", err)
	}
	return &Image{
		Data:           data,
		LoadAddress:    uint32(pieces[0].addr), // flatten sorted pieces
		HasLoadAddress: true,
		Format:         FormatELF,
	}, nil
}
