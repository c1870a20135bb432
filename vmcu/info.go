package vmcu

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/sbm-project/sbm/hal"
)

// Info is the public state of a device, as `sbm device info` shows it. It
// contains no secret (no PUF data, no flash contents).
type Info struct {
	// ID is the unique device ID as 32 lowercase hexadecimal digits.
	ID          string       `json:"id"`
	Board       string       `json:"board"`
	Description string       `json:"description"`
	Flash       FlashInfo    `json:"flash"`
	Regions     []RegionInfo `json:"regions"`
	RAMSize     uint32       `json:"ram_size"`
	Locks       LockInfo     `json:"locks"`
	// RootKeyHash is the root-of-trust key hash fuse in hex, "" if blank.
	RootKeyHash string `json:"root_key_hash"`
	// Counters are the monotonic counters' values.
	Counters [hal.NumCounters]int `json:"counters"`
	Wear     WearInfo             `json:"wear"`
	// BadSectors lists the start addresses of sectors marked bad.
	BadSectors []uint32 `json:"bad_sectors"`
	// PowerCut is the armed power cut, if any.
	PowerCut *PowerCut `json:"power_cut,omitempty"`
	// Running reports whether a process has the device open.
	Running bool `json:"running"`
}

// FlashInfo is the flash geometry.
type FlashInfo struct {
	Size      uint32 `json:"size"`
	WriteSize uint32 `json:"write_size"`
	Erased    byte   `json:"erased"`
	Sectors   int    `json:"sectors"`
	// Location is "internal" (on the MCU die) or "external" (a separate
	// chip a physical attacker can clip onto).
	Location string `json:"location"`
	// Endurance is the erase cycles a sector survives.
	Endurance uint32 `json:"endurance"`
}

// RegionInfo is one region of the memory map.
type RegionInfo struct {
	Name  string `json:"name"`
	Start uint32 `json:"start"`
	Size  uint32 `json:"size"`
}

// LockInfo is the state of the lock fuses.
type LockInfo struct {
	Debug           bool   `json:"debug"`
	SBMWriteProtect bool   `json:"sbm_write_protect"`
	SecureHidden    bool   `json:"secure_hidden"`
	Word            uint32 `json:"word"`
}

// WearInfo summarises the sectors' erase counts.
type WearInfo struct {
	TotalErases uint64 `json:"total_erases"`
	MaxErases   uint32 `json:"max_erases"`
	// MaxSector is the start of the most erased sector.
	MaxSector uint32 `json:"max_sector"`
	// WornOut lists the start addresses of worn-out sectors (erased more
	// times than the endurance).
	WornOut []uint32 `json:"worn_out"`
}

// Inspect reads the public state of the device in dir. It does not need
// the device lock, so it works while the device runs.
func Inspect(dir string) (*Info, error) {
	s, err := readSnapshot(dir)
	if err != nil {
		return nil, err
	}
	b := s.board
	g := &b.Geometry
	in := &Info{
		ID:          hex.EncodeToString(s.silicon.id[:]),
		Board:       b.Name,
		Description: b.Description,
		Flash: FlashInfo{Size: g.Size, WriteSize: g.WriteSize, Erased: g.Erased, Sectors: len(g.Sectors),
			Location: b.FlashLocation.String(), Endurance: b.EnduranceCycles()},
		RAMSize:    b.RAMSize,
		Counters:   countersOf(&s.fuses),
		BadSectors: append([]uint32{}, s.state.BadSectors...),
		Wear:       WearInfo{WornOut: []uint32{}},
		PowerCut:   s.state.PowerCut,
	}
	for _, r := range g.Regions {
		in.Regions = append(in.Regions, RegionInfo{Name: r.Kind.String(), Start: r.Start, Size: r.Size})
	}
	l := s.fuses[hal.FuseLocks]
	in.Locks = LockInfo{
		Debug:           l&hal.LockDebug != 0,
		SBMWriteProtect: l&hal.LockSBMWriteProtect != 0,
		SecureHidden:    l&hal.LockSecureHidden != 0,
		Word:            l,
	}
	var h [32]byte
	for i := range 8 {
		w := s.fuses[hal.FuseRootKeyHash+i]
		h[4*i], h[4*i+1], h[4*i+2], h[4*i+3] = byte(w), byte(w>>8), byte(w>>16), byte(w>>24)
	}
	if h != [32]byte{} {
		in.RootKeyHash = hex.EncodeToString(h[:])
	}
	for i, n := range s.wear {
		in.Wear.TotalErases += uint64(n)
		if n > in.Wear.MaxErases {
			in.Wear.MaxErases, in.Wear.MaxSector = n, g.Sectors[i].Start
		}
		if n > b.EnduranceCycles() {
			in.Wear.WornOut = append(in.Wear.WornOut, g.Sectors[i].Start)
		}
	}
	in.Running, err = inUse(dir)
	if err != nil {
		return nil, err
	}
	return in, nil
}

// inUse reports whether a process holds the device lock.
func inUse(dir string) (bool, error) {
	f, err := os.Open(filepath.Join(dir, fileLock))
	if err != nil {
		return false, fmt.Errorf("%s: %w", dir, ErrNotDevice)
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false, nil
}

// FlashSnapshot returns a read-only copy of the flash of the device in dir,
// as a bench instrument (not the device) would read the chip: host tools use
// it to decode state the firmware keeps in flash, such as the SBM's public
// state for `sbm device info`. It does not need the device lock. Program
// and Erase on it fail.
func FlashSnapshot(dir string) (hal.Flash, error) {
	s, err := readSnapshot(dir)
	if err != nil {
		return nil, err
	}
	return &snapshotFlash{g: s.board.Geometry, data: s.flash}, nil
}

type snapshotFlash struct {
	g    hal.Geometry
	data []byte
}

func (f *snapshotFlash) Geometry() hal.Geometry       { return f.g }
func (f *snapshotFlash) Privilege() hal.Privilege     { return hal.PrivSBM }
func (f *snapshotFlash) Program(uint32, []byte) error { return errReadOnly }
func (f *snapshotFlash) Erase(uint32) error           { return errReadOnly }

func (f *snapshotFlash) Read(addr uint32, p []byte) error {
	if uint64(addr)+uint64(len(p)) > uint64(len(f.data)) {
		return hal.ErrOutOfRange
	}
	copy(p, f.data[addr:])
	return nil
}

var errReadOnly = errors.New("vmcu: flash snapshot is read-only")

// PUFSnapshot returns the PUF of the device in dir, for host tools that
// read its state from the files while it may be running (sbm device info):
// it answers the chip's noiseless reference response, which recovers the
// same key as any power-up reading. No tool of a real part could do this;
// the virtual MCU's host tools use it to authenticate secure storage
// exactly as the SBM does.
func PUFSnapshot(dir string) (hal.PUF, error) {
	s, err := readSnapshot(dir)
	if err != nil {
		return nil, err
	}
	return snapshotPUF{&Device{silicon: s.silicon}}, nil
}

type snapshotPUF struct{ d *Device }

func (p snapshotPUF) Response(b []byte) error {
	if len(b) != hal.PUFResponseSize {
		return errPUFSize
	}
	p.d.pufReference((*[hal.PUFResponseSize]byte)(b))
	return nil
}
