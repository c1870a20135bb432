package firmware

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// checkLoaded checks the invariants of every image Load accepts, and that
// every error it returns matches a sentinel.
func checkLoaded(t *testing.T, f Format, maxSize int, img *Image, err error) {
	t.Helper()
	if err != nil {
		if img != nil {
			t.Fatalf("Load returned an image and error %v", err)
		}
		if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrEmpty) && !errors.Is(err, ErrTooLarge) {
			t.Fatalf("error %q matches no sentinel", err)
		}
		return
	}
	n := len(img.Data)
	if n == 0 {
		t.Fatal("accepted an empty image")
	}
	if maxSize > 0 && n > maxSize {
		t.Fatalf("image of %d bytes exceeds maxSize %d", n, maxSize)
	}
	if n > MaxImageSize {
		t.Fatalf("image of %d bytes exceeds 64 MiB", n)
	}
	if uint64(img.LoadAddress)+uint64(n) > 1<<32 {
		t.Fatalf("image of %d bytes at %#x extends past 4 GiB", n, img.LoadAddress)
	}
	if !img.HasLoadAddress || img.Format != f {
		t.Fatalf("image format %q, has address %v; want %q with address", img.Format, img.HasLoadAddress, f)
	}
}

func addFiles(f *testing.F, pattern string) {
	names, err := filepath.Glob(filepath.Join("testdata", pattern))
	if err != nil || len(names) == 0 {
		f.Fatalf("no seed files %s: %v", pattern, err)
	}
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint32(0))
		f.Add(b, uint32(64))
	}
}

func FuzzLoadIHex(f *testing.F) {
	addFiles(f, "*.hex")
	addFiles(f, "real/*.hex")
	f.Add([]byte(":0100000001FE\n:02000004FFFFFC\n:01FFFF000100\n:00000001FF\n"), uint32(1<<20))
	f.Add([]byte(":020000021000EC\n:10FFF800808182838485868788898A8B8C8D8E8F81\n:00000001FF\n"), uint32(0))
	f.Fuzz(func(t *testing.T, in []byte, maxSize uint32) {
		max := int(maxSize % (1 << 22))
		img, err := Load(in, FormatIHex, max)
		checkLoaded(t, FormatIHex, max, img, err)
		if err == nil && Detect(in) != FormatIHex {
			t.Fatalf("accepted as Intel HEX but Detect says %q", Detect(in))
		}
	})
}

func FuzzLoadELF(f *testing.F) {
	addFiles(f, "real/*.elf")
	for _, class := range []elf.Class{elf.ELFCLASS32, elf.ELFCLASS64} {
		for _, order := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
			f.Add(buildELF(class, order, []seg{
				{paddr: 0x08000000, data: text},
				{vaddr: 0x20000000, paddr: 0x08000100, data: data8, memsz: 64},
				{typ: elf.PT_NOTE, data: rodata},
			}), uint32(0))
		}
	}
	f.Fuzz(func(t *testing.T, in []byte, maxSize uint32) {
		max := int(maxSize % (1 << 22))
		img, err := Load(in, FormatELF, max)
		checkLoaded(t, FormatELF, max, img, err)
	})
}
