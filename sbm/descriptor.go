package sbm

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"

	"github.com/sbm-project/sbm/hal"
)

// Version is the SBM's version, written into its descriptor and reported by
// INFO.
const Version = "0.1.0"

// BuildID names the build of the SBM. Release builds set it with
// -ldflags "-X github.com/sbm-project/sbm/sbm.BuildID=...".
var BuildID = "dev"

// Descriptor layout (all integers little-endian):
//
//	magic    8 bytes  "SBMBOOT1"
//	length   uint32   total descriptor length (DescriptorSize)
//	version  16 bytes SBM version, NUL-padded
//	build    32 bytes SHA-256("sbm build v1" ‖ version ‖ 0x00 ‖ BuildID)
//	check    32 bytes SHA-256 of the preceding 60 bytes
const (
	// DescriptorSize is the length of the SBM descriptor in bytes.
	DescriptorSize = 8 + 4 + 16 + 32 + 32
	descVersionOff = 12
	descBuildOff   = 28
	descCheckOff   = 60
)

var descriptorMagic = [8]byte{'S', 'B', 'M', 'B', 'O', 'O', 'T', '1'}

// Descriptor returns the SBM image the provisioning tool programs at the
// start of the SBM region: a magic, the SBM version and a build identity,
// protected by a SHA-256 check value. The SBM measurement is SHA-256 over
// the whole SBM region content (see Measurement). Boot refuses to run from
// a region that does not start with a valid descriptor (an unprogrammed
// part).
func Descriptor() []byte {
	b := make([]byte, DescriptorSize)
	copy(b, descriptorMagic[:])
	binary.LittleEndian.PutUint32(b[8:], DescriptorSize)
	copy(b[descVersionOff:descVersionOff+16], Version)
	h := sha256.New()
	h.Write([]byte("sbm build v1"))
	h.Write([]byte(Version))
	h.Write([]byte{0})
	h.Write([]byte(BuildID))
	h.Sum(b[descBuildOff:descBuildOff])
	sum := sha256.Sum256(b[:descCheckOff])
	copy(b[descCheckOff:], sum[:])
	return b
}

// descriptorInfo is what a valid descriptor says.
type descriptorInfo struct {
	version [16]byte
	build   [32]byte
}

// versionString returns the version without its padding.
func (d *descriptorInfo) versionString() string {
	n := 0
	for n < len(d.version) && d.version[n] != 0 {
		n++
	}
	return string(d.version[:n])
}

// readDescriptor reads and checks the descriptor at the start of the SBM
// region.
func readDescriptor(f hal.Flash) (*descriptorInfo, bool) {
	r, ok := f.Geometry().Region(hal.RegionSBM)
	if !ok || r.Size < DescriptorSize {
		return nil, false
	}
	var b [DescriptorSize]byte
	if f.Read(r.Start, b[:]) != nil {
		return nil, false
	}
	if [8]byte(b[:8]) != descriptorMagic || binary.LittleEndian.Uint32(b[8:]) != DescriptorSize {
		return nil, false
	}
	if sum := sha256.Sum256(b[:descCheckOff]); !bytes.Equal(sum[:], b[descCheckOff:descCheckOff+32]) {
		return nil, false
	}
	d := &descriptorInfo{}
	copy(d.version[:], b[descVersionOff:])
	copy(d.build[:], b[descBuildOff:])
	return d, true
}

// Measurement returns the SBM measurement: SHA-256 over the whole SBM
// region content, read through f in small pieces.
func Measurement(f hal.Flash) ([32]byte, error) {
	var sum [32]byte
	r, ok := f.Geometry().Region(hal.RegionSBM)
	if !ok {
		return sum, errNoRegion
	}
	return hashFlash(f, r.Start, r.Size)
}

// hashFlash returns SHA-256 of n bytes of flash at addr.
func hashFlash(f hal.Flash, addr, n uint32) ([32]byte, error) {
	var sum [32]byte
	h := sha256.New()
	if m, ok := f.(hal.Mapper); ok {
		// Memory-mapped flash is hashed in place: no copy.
		for n > 0 {
			k := min(n, 64<<10)
			b, err := m.Map(addr, k)
			if err != nil {
				return sum, err
			}
			h.Write(b)
			addr += k
			n -= k
		}
		h.Sum(sum[:0])
		return sum, nil
	}
	var buf [512]byte
	for n > 0 {
		k := min(n, uint32(len(buf)))
		if err := f.Read(addr, buf[:k]); err != nil {
			return sum, err
		}
		h.Write(buf[:k])
		addr += k
		n -= k
	}
	h.Sum(sum[:0])
	return sum, nil
}
