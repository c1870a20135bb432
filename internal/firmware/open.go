package firmware

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// MaxAddressedFileSize bounds an ELF or Intel HEX input file, which Open
// reads whole: Intel HEX text takes about 2.8 bytes per image byte, so this
// admits any file whose flat image can be within MaxImageSize.
const MaxAddressedFileSize = 4 * MaxImageSize

// A File is an input opened for packaging: the flat image's metadata and a
// reader of its Size bytes.
//
// Raw binaries and WebAssembly modules are streamed from the file, in
// memory independent of their size. ELF and Intel HEX files are read whole
// and flattened in memory (Load), so they cost up to MaxAddressedFileSize
// plus MaxImageSize bytes of memory: those formats are for
// microcontroller-sized images.
type File struct {
	// Format is the format the input was opened as, never FormatAuto.
	Format Format
	// LoadAddress and HasLoadAddress are as in Image.
	LoadAddress    uint32
	HasLoadAddress bool
	// Size is the length of the flat image.
	Size int64

	r io.Reader
	f *os.File
}

// Read reads the flat image.
func (f *File) Read(p []byte) (int, error) { return f.r.Read(p) }

// Close closes the underlying file.
func (f *File) Close() error {
	if f.f == nil {
		return nil
	}
	return f.f.Close()
}

// Open opens the input file at path as format f (FormatAuto: by content, as
// Detect does) for packaging. The flat image must be 1 to MaxImageSize
// bytes (CheckImageSize's error otherwise). The caller must Close the File.
func Open(path string, f Format) (_ *File, err error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			fd.Close()
		}
	}()
	fi, err := fd.Stat()
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("%s is a directory", path)
	}
	size := fi.Size()
	if size == 0 {
		return nil, ErrEmpty
	}
	head := make([]byte, min(size, 4096))
	if _, err := io.ReadFull(fd, head); err != nil {
		return nil, err
	}
	if _, err := fd.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	if f == FormatAuto {
		f = detectHead(head, size)
	}
	switch f {
	case FormatBinary, FormatWasm:
		if f == FormatWasm {
			if err := checkWasmHeader(head); err != nil {
				return nil, err
			}
		}
		if err := CheckImageSize(uint64(size)); err != nil {
			return nil, err
		}
		// The reader stops at the size checked here even if the file
		// grows; a file that shrinks yields a short read, which the
		// packager reports.
		return &File{Format: f, Size: size, r: io.LimitReader(fd, size), f: fd}, nil
	case FormatELF, FormatIHex, FormatAuto:
		if size > MaxAddressedFileSize {
			return nil, fmt.Errorf("%w: a %d-byte file, over the %d-byte limit for ELF and Intel HEX inputs", ErrTooLarge, size, MaxAddressedFileSize)
		}
		b, err := io.ReadAll(io.LimitReader(fd, MaxAddressedFileSize+1))
		if err != nil {
			return nil, err
		}
		fd.Close()
		if f == FormatAuto {
			// Only a file that might be Intel HEX gets here; Detect decides.
			if f = Detect(b); f == FormatBinary {
				if err := CheckImageSize(uint64(len(b))); err != nil {
					return nil, err
				}
			}
		}
		img, err := Load(b, f, 0)
		if err != nil {
			return nil, err
		}
		return &File{Format: img.Format, LoadAddress: img.LoadAddress, HasLoadAddress: img.HasLoadAddress,
			Size: int64(len(img.Data)), r: bytes.NewReader(img.Data)}, nil
	}
	return nil, fmt.Errorf("unknown format %q", string(f))
}

// detectHead is Detect from the first bytes of a file of size bytes. It
// returns FormatAuto when the whole file is needed: text that may be Intel
// HEX (its first non-blank byte is ':', or the head is all blank).
func detectHead(head []byte, size int64) Format {
	if f := Detect(head); f == FormatELF || f == FormatWasm {
		return f
	}
	rest := bytes.TrimLeft(head, " \t\r\n")
	if len(rest) == 0 && int64(len(head)) < size || len(rest) > 0 && rest[0] == ':' {
		return FormatAuto
	}
	return FormatBinary
}
