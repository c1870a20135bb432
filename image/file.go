package image

import (
	"bufio"
	"fmt"
	"io"

	"github.com/sbm-project/sbm/internal/firmware"
	"github.com/sbm-project/sbm/internal/secpkg"
)

// A File is a package read from an io.ReaderAt, usually an *os.File: the
// container's records are located, the manifest and UPK records (a few
// KiB at most) are in memory, and the payload stays on the reader until
// VerifyFile streams it. Its memory does not depend on the payload size.
type File struct {
	// Manifest is the manifest COSE_Sign1.
	Manifest []byte
	// UPKs are the UPK records of the package.
	UPKs [][]byte
	// Size is the size of the container.
	Size int64

	r       io.ReaderAt
	payload secpkg.Span
}

// Open reads the container of a package of size bytes from r (spec §8):
// the record headers, the manifest and the UPKs, not the payload. Like
// Parse, it checks the container's structure, not signatures, and refuses
// a manifest whose payload is over MaxPayloadSize.
func Open(r io.ReaderAt, size int64) (*File, error) {
	f, err := openFile(r, size)
	if err != nil {
		return nil, err
	}
	if err := checkManifestLimit(f.Manifest); err != nil {
		return nil, err
	}
	return f, nil
}

// openFile is Open without the payload limit.
func openFile(r io.ReaderAt, size int64) (*File, error) {
	c, err := secpkg.ParseContainer(r, size)
	if err != nil {
		return nil, fmt.Errorf("not a valid package: %w", err)
	}
	read := func(s secpkg.Span) ([]byte, error) {
		b := make([]byte, s.Length)
		if _, err := r.ReadAt(b, s.Offset); err != nil {
			return nil, fmt.Errorf("not a valid package: %w", err)
		}
		return b, nil
	}
	f := &File{Size: size, r: r, payload: c.Payload}
	if f.Manifest, err = read(c.Manifest); err != nil {
		return nil, err
	}
	for _, s := range c.UPKs[:c.NumUPKs] {
		u, err := read(s)
		if err != nil {
			return nil, err
		}
		f.UPKs = append(f.UPKs, u)
	}
	return f, nil
}

// Records returns the package's manifest and UPKs as a Package without its
// payload, for the functions that use only those (RecoverCEK).
func (f *File) Records() *Package { return &Package{Manifest: f.Manifest, UPKs: f.UPKs} }

// PayloadLen is the length of the payload record (the chunk stream).
func (f *File) PayloadLen() int64 { return f.payload.Length }

// payloadReader reads the payload record from the start.
func (f *File) payloadReader() io.Reader {
	return bufio.NewReaderSize(io.NewSectionReader(f.r, f.payload.Offset, f.payload.Length), 256<<10)
}

// checkManifestLimit refuses a manifest that decodes and states a payload
// over MaxPayloadSize; one that does not decode is left to the
// verification, which says why.
func checkManifestLimit(manifest []byte) error {
	m, err := secpkg.DecodeManifest(manifest)
	if err != nil {
		return nil
	}
	return firmware.CheckImageSize(uint64(m.PayloadSize))
}

// chunkSource yields the encrypted chunks of a payload.
type chunkSource interface {
	// next returns the next n bytes, valid until the following call.
	next(n int) ([]byte, error)
}

// sliceChunks reads chunks from a payload in memory, without copying.
type sliceChunks struct{ b []byte }

func (s *sliceChunks) next(n int) ([]byte, error) {
	n = min(n, len(s.b))
	c := s.b[:n]
	s.b = s.b[n:]
	return c, nil
}

// readerChunks reads chunks from a stream into one reused buffer.
type readerChunks struct {
	r   io.Reader
	buf []byte
}

func (s *readerChunks) next(n int) ([]byte, error) {
	if cap(s.buf) < n {
		s.buf = make([]byte, n)
	}
	b := s.buf[:n]
	if _, err := io.ReadFull(s.r, b); err != nil {
		return nil, fmt.Errorf("reading the payload: %w", err)
	}
	return b, nil
}
