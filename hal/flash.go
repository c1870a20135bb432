package hal

// Privilege is the privilege level of a flash access.
type Privilege uint8

// Privilege levels.
const (
	// PrivApp is the application's privilege.
	PrivApp Privilege = iota
	// PrivSBM is the boot manager's privilege.
	PrivSBM
)

// String returns "app" or "sbm".
func (p Privilege) String() string {
	if p == PrivSBM {
		return "sbm"
	}
	return "app"
}

// Flash is a flash array seen at one privilege level.
//
// Flash follows the rules of real NOR flash: Erase sets a whole sector to
// the erased value; Program may only write locations that are erased, at
// addresses and lengths that are multiples of the write granularity; Read
// reads anywhere. Errors wrap ErrOutOfRange, ErrMisaligned, ErrNotErased,
// ErrFault, ErrWriteProtected or ErrFlashFailure.
type Flash interface {
	// Geometry returns the layout of the flash. The caller must not modify
	// the slices it contains.
	Geometry() Geometry
	// Privilege returns the privilege of this view.
	Privilege() Privilege
	// Read copies len(p) bytes starting at addr into p.
	Read(addr uint32, p []byte) error
	// Program writes p at addr. addr and len(p) must be multiples of
	// Geometry.WriteSize and every target byte must be erased.
	Program(addr uint32, p []byte) error
	// Erase erases the sector that starts at addr.
	Erase(addr uint32) error
}

// Sector is one erasable unit of flash.
type Sector struct {
	Start, Size uint32
}

// End returns the address just past the sector.
func (s Sector) End() uint32 { return s.Start + s.Size }

// RegionKind names a region of the memory map.
type RegionKind uint8

// Regions of the memory map.
const (
	// RegionSBM holds the Secure Boot Manager, immutable once protected.
	RegionSBM RegionKind = iota + 1
	// RegionSecure is secure storage: keys, certificates, signature table,
	// counters' companions. Hidden from the application once protected.
	RegionSecure
	// RegionPrimary is the slot the application runs from.
	RegionPrimary
	// RegionStaging is the slot an update package is downloaded to.
	RegionStaging
	// RegionAppData is the application's own persistent data.
	RegionAppData
)

// NumRegionKinds is one more than the largest RegionKind.
const NumRegionKinds = 6

// String returns the region's name as used in board files: "sbm",
// "secure", "primary", "staging" or "appdata".
func (k RegionKind) String() string {
	switch k {
	case RegionSBM:
		return "sbm"
	case RegionSecure:
		return "secure"
	case RegionPrimary:
		return "primary"
	case RegionStaging:
		return "staging"
	case RegionAppData:
		return "appdata"
	}
	return "unknown"
}

// ParseRegionKind returns the kind named s (see RegionKind.String).
func ParseRegionKind(s string) (RegionKind, bool) {
	for k := RegionSBM; k < NumRegionKinds; k++ {
		if k.String() == s {
			return k, true
		}
	}
	return 0, false
}

// Region is a named address range of the flash, aligned to sectors.
type Region struct {
	Kind        RegionKind
	Start, Size uint32
}

// End returns the address just past the region.
func (r Region) End() uint32 { return r.Start + r.Size }

// Overlaps reports whether [addr, addr+n) overlaps the region.
func (r Region) Overlaps(addr, n uint32) bool {
	return n > 0 && addr < r.End() && r.Start < addr+n
}

// Geometry describes a flash array.
type Geometry struct {
	// Size is the size of the array in bytes.
	Size uint32
	// WriteSize is the program granularity in bytes: 1, 2, 4, 8, 16 or 32.
	WriteSize uint32
	// Erased is the value of an erased byte: 0xFF or 0x00.
	Erased byte
	// Sectors lists the sectors in address order; they cover the array.
	Sectors []Sector
	// Regions lists the memory map, in address order.
	Regions []Region
}

// SectorAt returns the index of the sector containing addr.
func (g Geometry) SectorAt(addr uint32) (int, bool) {
	lo, hi := 0, len(g.Sectors)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		s := g.Sectors[m]
		switch {
		case addr < s.Start:
			hi = m
		case addr >= s.End():
			lo = m + 1
		default:
			return m, true
		}
	}
	return 0, false
}

// Region returns the region of kind k.
func (g Geometry) Region(k RegionKind) (Region, bool) {
	for _, r := range g.Regions {
		if r.Kind == k {
			return r, true
		}
	}
	return Region{}, false
}

// Mapper is optionally implemented by a Flash that can be read in place,
// like memory-mapped (execute-in-place) flash. Map returns the n bytes at
// addr as a slice of the flash array itself, not a copy, after the same
// range and privilege checks as Read. The slice is read-only by contract:
// callers must never write to it. It reflects later programs and erases of
// that range.
type Mapper interface {
	// Map returns the flash bytes [addr, addr+n).
	Map(addr, n uint32) ([]byte, error)
}
