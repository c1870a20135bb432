package sbm

import (
	"encoding/binary"
	"io"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/internal/secpkg"
	"github.com/sbm-project/sbm/wire"
)

// target implements wire.Target: it streams a package into the staging
// slot, validates its manifest and UPK as soon as their records are
// complete, and installs it on Finish.
type target struct {
	m         *machine
	active    bool
	installed bool        // a Finish succeeded since boot
	fail      *wire.Error // sticky failure of the current transfer

	staging  hal.Region
	size     uint32 // announced package size
	received uint32 // bytes accepted (programmed or pending)
	flushed  uint32 // bytes programmed into staging (a multiple of the write size)
	erased   uint32 // staging offset up to which sectors are erased
	pend     [32]byte
	pendLen  uint32

	// Container parsing before the payload.
	stage    uint8  // 0 magic+manifest header, 1 UPK header, 2 payload header, 3 validated
	boundary uint32 // offset at which the current stage's bytes are complete
	v        verified
}

var _ wire.Target = (*target)(nil)

// Info appends the CBOR device information to dst.
func (t *target) Info(dst []byte) []byte {
	info := t.m.deviceInfo()
	return info.AppendCBOR(dst)
}

// Certificate returns the stored device certificate.
func (t *target) Certificate() []byte {
	if t.m.st.certLen == 0 {
		return nil
	}
	return t.m.st.certificate()
}

// Begin starts a transfer of size bytes.
func (t *target) Begin(size uint32) error {
	t.Abort()
	m := t.m
	if _, werr := m.deviceAnchors(); werr != nil {
		return werr
	}
	if _, werr := m.deviceKeys(); werr != nil {
		return werr
	}
	r, ok := m.hw.Flash.Geometry().Region(hal.RegionStaging)
	if !ok {
		return wire.Errorf(wire.CodeInternal, "no staging slot")
	}
	if size > r.Size {
		return wire.Errorf(wire.CodeTooLarge, "package larger than the staging slot")
	}
	if size < 8+3*8+1 {
		return wire.Errorf(wire.CodeFormat, "package too small")
	}
	*t = target{m: m, installed: t.installed, active: true, staging: r, size: size, boundary: 16}
	return nil
}

// Write stores p at offset off.
func (t *target) Write(off uint32, p []byte) error {
	if !t.active {
		return wire.Errorf(wire.CodeState, "no transfer in progress")
	}
	if t.fail != nil {
		return t.fail
	}
	if off != t.received {
		return wire.Errorf(wire.CodeOffset, "unexpected offset")
	}
	if uint64(off)+uint64(len(p)) > uint64(t.size) {
		return t.failWith(wire.Errorf(wire.CodeTooLarge, "data past the announced size"))
	}
	for len(p) > 0 {
		n := len(p)
		if t.stage < 3 {
			n = min(n, int(t.boundary-t.received))
		}
		if werr := t.store(p[:n]); werr != nil {
			return t.failWith(werr)
		}
		p = p[n:]
		if t.stage < 3 && t.received == t.boundary {
			if werr := t.advance(); werr != nil {
				return t.failWith(werr)
			}
		}
	}
	return nil
}

// failWith makes werr the transfer's sticky failure.
func (t *target) failWith(werr *wire.Error) *wire.Error {
	t.fail = werr
	t.m.log("sbm: transfer rejected: ", werr.Error())
	return werr
}

// Received returns how many bytes of the package are stored.
func (t *target) Received() uint32 {
	if !t.active {
		return 0
	}
	return t.received
}

// Abort discards the current transfer.
func (t *target) Abort() {
	*t = target{m: t.m, installed: t.installed}
}

// Finish flushes the staged package, authenticates it completely and
// installs it.
func (t *target) Finish() error {
	if !t.active {
		return wire.Errorf(wire.CodeState, "no transfer in progress")
	}
	if t.fail != nil {
		return t.fail
	}
	defer t.Abort()
	if t.received < t.size || t.stage < 3 {
		return t.failWith(wire.Errorf(wire.CodeDecrypt, "truncated package"))
	}
	if werr := t.flush(); werr != nil {
		return t.failWith(werr)
	}
	m := t.m
	if werr := m.authenticate(&t.v); werr != nil {
		return t.failWith(werr)
	}
	if werr := m.install(&t.v); werr != nil {
		return t.failWith(werr)
	}
	t.installed = true
	return nil
}

// store accepts p: whole write-size words go to flash, the rest waits in
// the pending buffer.
func (t *target) store(p []byte) *wire.Error {
	ws := t.m.hw.Flash.Geometry().WriteSize
	for len(p) > 0 {
		if t.pendLen == 0 && uint32(len(p)) >= ws {
			n := uint32(len(p)) / ws * ws
			if werr := t.program(p[:n]); werr != nil {
				return werr
			}
			t.received += n
			p = p[n:]
			continue
		}
		c := copy(t.pend[t.pendLen:ws], p)
		t.pendLen += uint32(c)
		t.received += uint32(c)
		p = p[c:]
		if t.pendLen == ws {
			t.pendLen = 0
			if werr := t.program(t.pend[:ws]); werr != nil {
				return werr
			}
		}
	}
	return nil
}

// flush programs the pending partial word, padded with the erased value.
func (t *target) flush() *wire.Error {
	if t.pendLen == 0 {
		return nil
	}
	g := t.m.hw.Flash.Geometry()
	for i := t.pendLen; i < g.WriteSize; i++ {
		t.pend[i] = g.Erased
	}
	t.pendLen = 0
	return t.program(t.pend[:g.WriteSize])
}

// program writes p (whole words) at the flushed offset of staging,
// erasing the sectors it reaches first.
func (t *target) program(p []byte) *wire.Error {
	f := t.m.hw.Flash
	g := f.Geometry()
	end := t.flushed + uint32(len(p))
	for t.erased < end {
		i, ok := g.SectorAt(t.staging.Start + t.erased)
		if !ok {
			return wire.Errorf(wire.CodeFlash, "staging slot out of range")
		}
		if err := f.Erase(g.Sectors[i].Start); err != nil {
			return wire.Errorf(wire.CodeFlash, "staging erase failed")
		}
		t.erased = g.Sectors[i].End() - t.staging.Start
	}
	if err := f.Program(t.staging.Start+t.flushed, p); err != nil {
		return wire.Errorf(wire.CodeFlash, "staging program failed")
	}
	t.flushed = end
	return nil
}

// ReadAt reads received package bytes: from staging below the flushed
// offset, from the pending buffer above it.
func (t *target) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(t.received) {
		return 0, io.ErrUnexpectedEOF
	}
	n := 0
	if off < int64(t.flushed) {
		k := min(int64(len(p)), int64(t.flushed)-off)
		if err := t.m.hw.Flash.Read(t.staging.Start+uint32(off), p[:k]); err != nil {
			return 0, err
		}
		n = int(k)
	}
	if n < len(p) {
		n += copy(p[n:], t.pend[off+int64(n)-int64(t.flushed):t.pendLen])
	}
	if n < len(p) {
		return n, io.ErrUnexpectedEOF
	}
	return n, nil
}

// advance parses the record header that just became complete and, once
// the payload header is there, validates the manifest and the UPK.
func (t *target) advance() *wire.Error {
	var h [8]byte
	if _, err := t.ReadAt(h[:], int64(t.boundary-8)); err != nil {
		return wire.Errorf(wire.CodeFlash, "staging read failed")
	}
	typ, n := h[0], binary.LittleEndian.Uint32(h[4:8])
	switch t.stage {
	case 0:
		var magic [8]byte
		if _, err := t.ReadAt(magic[:], 0); err != nil || magic != secpkg.Magic {
			return wire.Errorf(wire.CodeFormat, "not a package")
		}
		if typ != secpkg.RecordManifest || n > secpkg.MaxManifestSize {
			return wire.Errorf(wire.CodeFormat, "bad manifest record")
		}
	case 1:
		if typ != secpkg.RecordUPK || n > secpkg.MaxUPKSize {
			return wire.Errorf(wire.CodeFormat, "expected one upk record")
		}
	case 2:
		if typ != secpkg.RecordPayload {
			return wire.Errorf(wire.CodeFormat, "expected exactly one upk record")
		}
		t.stage = 3
		return t.m.checkPackage(t, t.size, &t.v)
	}
	t.stage++
	next := uint64(t.boundary) + uint64(n) + 8
	if next > uint64(t.size) {
		return wire.Errorf(wire.CodeFormat, "truncated container")
	}
	t.boundary = uint32(next)
	return nil
}
