package sdk

import (
	"encoding/binary"
	"errors"
	"io"
)

// Container record types (docs/spec/package.md §8).
const (
	recordManifest = 1
	recordUPK      = 2
	recordPayload  = 3
)

// packageMagic starts a package file.
var packageMagic = [8]byte{0x89, 'S', 'B', 'M', '\r', '\n', 0x1a, '\n'}

// UPKSplicer writes a package to w as it streams by, with its UPK records
// replaced by one given UPK: the package as published (the same bytes for
// every device) plus the UPK the service issued for this device make the
// package this device installs. It only rewrites record headers, in
// bounded memory; the SBM checks everything after RequestUpdate. Write
// the whole package, then check Done.
type UPKSplicer struct {
	w      io.Writer
	upk    []byte
	state  int // splice* below
	hdr    [8]byte
	n      int    // bytes of hdr collected
	remain uint64 // bytes left in the current record body
}

const (
	spliceMagic = iota
	spliceHeader
	splicePass // a manifest body: copied
	spliceSkip // a UPK body of the published package: dropped
	spliceRest // the payload record: copied to the end
)

// ErrNotPackage is returned by UPKSplicer for bytes that are not a
// package container.
var ErrNotPackage = errors.New("sdk: not a package: cannot add the upk")

// SpliceUPK returns a UPKSplicer writing to w (for example
// Staging.Writer()) that gives the package streamed through it upk as its
// only UPK record.
func SpliceUPK(w io.Writer, upk []byte) *UPKSplicer { return &UPKSplicer{w: w, upk: upk} }

// Write implements io.Writer.
func (s *UPKSplicer) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		switch s.state {
		case spliceMagic, spliceHeader:
			k := copy(s.hdr[s.n:], p)
			s.n += k
			p = p[k:]
			if s.n < len(s.hdr) {
				continue
			}
			s.n = 0
			if err := s.header(); err != nil {
				return total - len(p), err
			}
		case splicePass, spliceSkip:
			k := uint64(len(p))
			if k > s.remain {
				k = s.remain
			}
			if s.state == splicePass {
				if _, err := s.w.Write(p[:k]); err != nil {
					return total - len(p), err
				}
			}
			s.remain -= k
			p = p[k:]
			if s.remain == 0 {
				s.state = spliceHeader
			}
		case spliceRest:
			if _, err := s.w.Write(p); err != nil {
				return total - len(p), err
			}
			p = nil
		}
	}
	return total, nil
}

// header handles the 8 bytes in s.hdr: the magic, or a record header.
func (s *UPKSplicer) header() error {
	if s.state == spliceMagic {
		if s.hdr != packageMagic {
			return ErrNotPackage
		}
		s.state = spliceHeader
		_, err := s.w.Write(s.hdr[:])
		return err
	}
	n := uint64(binary.LittleEndian.Uint32(s.hdr[4:]))
	switch s.hdr[0] {
	case recordManifest:
		s.state, s.remain = splicePass, n
		_, err := s.w.Write(s.hdr[:])
		if n == 0 {
			s.state = spliceHeader
		}
		return err
	case recordUPK:
		s.state, s.remain = spliceSkip, n
		if n == 0 {
			s.state = spliceHeader
		}
		return nil
	case recordPayload:
		var u [8]byte
		u[0] = recordUPK
		binary.LittleEndian.PutUint32(u[4:], uint32(len(s.upk)))
		for _, b := range [][]byte{u[:], s.upk, s.hdr[:]} {
			if _, err := s.w.Write(b); err != nil {
				return err
			}
		}
		s.state = spliceRest
		return nil
	}
	return ErrNotPackage
}

// Done reports whether the package went through up to its payload record
// (the payload's own length is the SBM's to check).
func (s *UPKSplicer) Done() bool { return s.state == spliceRest }
