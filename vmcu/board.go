package vmcu

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/sbm-project/sbm/hal"
)

// Board describes a microcontroller: its flash geometry, memory map and RAM.
// Boards are read from TOML board files (see docs/vmcu.md) or taken from the
// built-in set (see Boards).
type Board struct {
	// Name is a short identifier, e.g. "default".
	Name string
	// Description is one line of human-readable description.
	Description string
	// Geometry is the flash layout and memory map.
	Geometry hal.Geometry
	// SectorRuns is the sector layout as runs of equal sectors, in address
	// order; Geometry.Sectors is its expansion.
	SectorRuns []SectorRun
	// RAMSize is the RAM budget in bytes.
	RAMSize uint32
	// FlashLocation says whether the flash is on the MCU die or a separate
	// chip, which decides whether a physical attacker can reach it (see
	// Device.DumpFlash).
	FlashLocation FlashLocation
	// Endurance is the number of erase cycles a sector survives; the next
	// erase wears it out (see Device.Wear). 0 means DefaultEndurance. Tests
	// may set it on a copy of a board before creating a device, to reach it
	// quickly.
	Endurance uint32
	// Runs lists the application formats the board can execute, as the
	// package manifest names them (image inspect's source format); nil
	// means DefaultRuns. Today the virtual boards run WebAssembly only
	// (apphost), so "wasm" is the only value a board file may give.
	Runs []string
}

// DefaultRuns is what a board that does not say runs executes: WebAssembly
// modules.
var DefaultRuns = []string{"wasm"}

// knownRuns are the formats a virtual board can be declared to run.
var knownRuns = []string{"wasm"}

// RunsFormats returns the application formats the board executes: Runs, or
// DefaultRuns if it is nil.
func (b *Board) RunsFormats() []string {
	if b.Runs == nil {
		return DefaultRuns
	}
	return b.Runs
}

// CanRun reports whether the board executes applications of format, a
// manifest's source format ("wasm", "elf", "ihex", "bin").
func (b *Board) CanRun(format string) bool {
	return slices.Contains(b.RunsFormats(), format)
}

// DefaultEndurance is the erase endurance of a board that does not set one:
// 10,000 cycles per sector, the figure datasheets guarantee for the internal
// flash of common microcontrollers (serial NOR chips usually promise
// 100,000).
const DefaultEndurance = 10000

// EnduranceCycles returns the board's erase endurance per sector: Endurance,
// or DefaultEndurance if it is 0.
func (b *Board) EnduranceCycles() uint32 {
	if b.Endurance == 0 {
		return DefaultEndurance
	}
	return b.Endurance
}

// FlashLocation is where a board's flash is.
type FlashLocation uint8

// Flash locations.
const (
	// FlashInternal is flash on the MCU die: reachable from outside only
	// through the MCU (its debug port), so the debug-lock fuse closes it.
	FlashInternal FlashLocation = iota
	// FlashExternal is a separate chip (serial NOR) wired to the MCU: a
	// test clip on its pins reads and writes it whatever the MCU's fuses say.
	FlashExternal
)

// String returns "internal" or "external", as in board files.
func (l FlashLocation) String() string {
	switch l {
	case FlashInternal:
		return "internal"
	case FlashExternal:
		return "external"
	}
	return fmt.Sprintf("FlashLocation(%d)", uint8(l))
}

// SectorRun is Count consecutive sectors of Size bytes.
type SectorRun struct {
	Size, Count uint32
}

// Limits of board files.
const (
	maxFlashSize   = 256 << 20
	maxRAMSize     = 64 << 20
	maxBoardFile   = 64 << 10
	minSectorSize  = 256
	maxSectorCount = 1 << 16
	maxEndurance   = 1_000_000_000
)

// ErrBadBoard is wrapped by every board validation error.
var ErrBadBoard = errors.New("invalid board")

//go:embed boards/*.toml
var builtinFS embed.FS

// Boards returns the built-in boards, sorted by name, "default" first.
func Boards() []*Board {
	entries, err := fs.ReadDir(builtinFS, "boards")
	if err != nil {
		panic(err) // embedded at build time
	}
	var out []*Board
	for _, e := range entries {
		b, err := builtin(strings.TrimSuffix(e.Name(), ".toml"))
		if err != nil {
			panic(err) // tested
		}
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b *Board) int {
		if a.Name == "default" {
			return -1
		}
		if b.Name == "default" {
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

func builtin(name string) (*Board, error) {
	data, err := builtinFS.ReadFile("boards/" + name + ".toml")
	if err != nil {
		return nil, err
	}
	return ParseBoard(data)
}

// LookupBoard returns the built-in board called name.
func LookupBoard(name string) (*Board, error) {
	if name == "" || strings.ContainsAny(name, "/\\.") {
		return nil, fmt.Errorf("unknown board %q", name)
	}
	b, err := builtin(name)
	if err != nil {
		return nil, fmt.Errorf("unknown board %q (see 'sbm device boards')", name)
	}
	return b, nil
}

// LoadBoard returns the built-in board called nameOrFile or, if nameOrFile
// names a file (it contains a path separator or ends in .toml), the board
// read from that file.
func LoadBoard(nameOrFile string) (*Board, error) {
	if !strings.ContainsAny(nameOrFile, `/\`) && !strings.HasSuffix(nameOrFile, ".toml") {
		return LookupBoard(nameOrFile)
	}
	f, err := os.Open(nameOrFile)
	if err != nil {
		return nil, fmt.Errorf("reading board file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxBoardFile+1))
	if err != nil {
		return nil, fmt.Errorf("reading board file: %w", err)
	}
	b, err := ParseBoard(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", nameOrFile, err)
	}
	return b, nil
}

// boardFile is the TOML shape of a board file.
type boardFile struct {
	Name        string                 `toml:"name"`
	Description string                 `toml:"description"`
	FlashSize   *size                  `toml:"flash_size"`
	WriteSize   *size                  `toml:"write_size"`
	Erased      *int64                 `toml:"erased"`
	RAM         *size                  `toml:"ram"`
	Flash       *string                `toml:"flash"`
	Endurance   *int64                 `toml:"endurance"`
	Runs        []string               `toml:"runs"`
	Sectors     []sectorRunFile        `toml:"sectors"`
	Regions     map[string]*regionFile `toml:"regions"`
}

type sectorRunFile struct {
	Size  *size `toml:"size"`
	Count *size `toml:"count"`
}

type regionFile struct {
	Start *size `toml:"start"`
	Size  *size `toml:"size"`
}

// size is a byte count written as an integer or a string such as "64KiB".
type size uint64

func (s *size) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case int64:
		if v < 0 || v > 1<<32 {
			return fmt.Errorf("%d is out of range", v)
		}
		*s = size(v)
		return nil
	case string:
		n, err := parseSize(v)
		if err != nil {
			return err
		}
		*s = size(n)
		return nil
	}
	return fmt.Errorf("want an integer or a size string like \"64KiB\", got %T", v)
}

func parseSize(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	mult := uint64(1)
	for _, u := range []struct {
		suffix string
		mult   uint64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseUint(t, 0, 32)
	if err != nil || n*mult > 1<<32 {
		return 0, fmt.Errorf("bad size %q (want e.g. 4096, \"4KiB\" or \"1MiB\")", s)
	}
	return n * mult, nil
}

// ParseBoard parses and validates a TOML board description. Unknown keys,
// missing keys and inconsistent layouts are errors wrapping ErrBadBoard.
func ParseBoard(data []byte) (*Board, error) {
	if len(data) > maxBoardFile {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrBadBoard, maxBoardFile)
	}
	var f boardFile
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&f)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadBoard, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return nil, fmt.Errorf("%w: unknown key %q", ErrBadBoard, und[0].String())
	}
	return f.board()
}

func bad(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrBadBoard, fmt.Sprintf(format, a...))
}

func (f *boardFile) board() (*Board, error) {
	switch {
	case f.Name == "":
		return nil, bad("missing name")
	case len(f.Name) > 64 || strings.ContainsAny(f.Name, " \t\r\n/\\\"'"):
		return nil, bad("name %q: want up to 64 characters without spaces, quotes or slashes", f.Name)
	case len(f.Description) > 200:
		return nil, bad("description longer than 200 characters")
	case f.FlashSize == nil:
		return nil, bad("missing flash_size")
	case f.WriteSize == nil:
		return nil, bad("missing write_size")
	case f.Erased == nil:
		return nil, bad("missing erased")
	case f.RAM == nil:
		return nil, bad("missing ram")
	}
	b := &Board{Name: f.Name, Description: f.Description}
	g := &b.Geometry
	if *f.FlashSize == 0 || *f.FlashSize > maxFlashSize {
		return nil, bad("flash_size %d: want 1 to %d bytes", *f.FlashSize, maxFlashSize)
	}
	g.Size = uint32(*f.FlashSize)
	switch *f.WriteSize {
	case 1, 2, 4, 8, 16, 32:
		g.WriteSize = uint32(*f.WriteSize)
	default:
		return nil, bad("write_size %d: want 1, 2, 4, 8, 16 or 32", *f.WriteSize)
	}
	switch *f.Erased {
	case 0xFF, 0x00:
		g.Erased = byte(*f.Erased)
	default:
		return nil, bad("erased %#x: want 0xFF or 0x00", *f.Erased)
	}
	if *f.RAM < 1024 || *f.RAM > maxRAMSize {
		return nil, bad("ram %d: want 1 KiB to %d bytes", *f.RAM, maxRAMSize)
	}
	b.RAMSize = uint32(*f.RAM)
	if f.Flash != nil {
		switch *f.Flash {
		case "internal":
			b.FlashLocation = FlashInternal
		case "external":
			b.FlashLocation = FlashExternal
		default:
			return nil, bad("flash %q: want \"internal\" or \"external\"", *f.Flash)
		}
	}
	if f.Endurance != nil {
		if *f.Endurance < 0 || *f.Endurance > maxEndurance {
			return nil, bad("endurance %d: want 0 (the default, %d) to %d erase cycles", *f.Endurance, DefaultEndurance, maxEndurance)
		}
		b.Endurance = uint32(*f.Endurance)
	}
	if f.Runs != nil {
		if len(f.Runs) == 0 {
			return nil, bad("runs is empty: want a list of formats such as [\"wasm\"]")
		}
		for i, r := range f.Runs {
			if !slices.Contains(knownRuns, r) {
				return nil, bad("runs %q: the virtual boards run only \"wasm\" (WebAssembly) applications", r)
			}
			if slices.Contains(f.Runs[:i], r) {
				return nil, bad("runs: %q given twice", r)
			}
		}
		b.Runs = slices.Clone(f.Runs)
	}
	if len(f.Sectors) == 0 {
		return nil, bad("missing [[sectors]]")
	}
	var addr uint64
	for i, r := range f.Sectors {
		if r.Size == nil || r.Count == nil {
			return nil, bad("sectors[%d]: want size and count", i)
		}
		sz, n := uint64(*r.Size), uint64(*r.Count)
		if sz < minSectorSize || sz&(sz-1) != 0 || sz < uint64(g.WriteSize) {
			return nil, bad("sectors[%d]: size %d is not a power of two of at least %d", i, sz, minSectorSize)
		}
		if n == 0 || n > maxSectorCount || len(g.Sectors)+int(n) > maxSectorCount {
			return nil, bad("sectors[%d]: count %d: want 1 to %d sectors in total", i, n, maxSectorCount)
		}
		if addr+sz*n > uint64(g.Size) {
			return nil, bad("sectors[%d]: sectors extend past flash_size %#x", i, g.Size)
		}
		b.SectorRuns = append(b.SectorRuns, SectorRun{Size: uint32(sz), Count: uint32(n)})
		for range n {
			g.Sectors = append(g.Sectors, hal.Sector{Start: uint32(addr), Size: uint32(sz)})
			addr += sz
		}
	}
	if addr != uint64(g.Size) {
		return nil, bad("sectors cover %#x bytes, flash_size is %#x", addr, g.Size)
	}
	for _, name := range slices.Sorted(maps.Keys(f.Regions)) {
		r := f.Regions[name]
		k, ok := hal.ParseRegionKind(name)
		if !ok {
			return nil, bad("unknown region %q (want sbm, secure, primary, staging, appdata)", name)
		}
		if r == nil || r.Start == nil || r.Size == nil {
			return nil, bad("region %s: want start and size", name)
		}
		start, sz := uint64(*r.Start), uint64(*r.Size)
		if sz == 0 || start+sz > uint64(g.Size) {
			return nil, bad("region %s [%#x, %#x) is empty or outside the flash (size %#x)", name, start, start+sz, g.Size)
		}
		if i, ok := g.SectorAt(uint32(start)); !ok || g.Sectors[i].Start != uint32(start) {
			return nil, bad("region %s: start %#x is not at a sector boundary", name, start)
		}
		if end := start + sz; end != uint64(g.Size) {
			if i, ok := g.SectorAt(uint32(end)); !ok || g.Sectors[i].Start != uint32(end) {
				return nil, bad("region %s: end %#x is not at a sector boundary", name, end)
			}
		}
		g.Regions = append(g.Regions, hal.Region{Kind: k, Start: uint32(start), Size: uint32(sz)})
	}
	for _, k := range []hal.RegionKind{hal.RegionSBM, hal.RegionSecure, hal.RegionPrimary, hal.RegionStaging} {
		if _, ok := g.Region(k); !ok {
			return nil, bad("missing region %s", k)
		}
	}
	slices.SortFunc(g.Regions, func(a, b hal.Region) int { return int(int64(a.Start) - int64(b.Start)) })
	for i := 1; i < len(g.Regions); i++ {
		if p, r := g.Regions[i-1], g.Regions[i]; r.Start < p.End() {
			return nil, bad("regions %s and %s overlap", p.Kind, r.Kind)
		}
	}
	return b, nil
}

// MarshalTOML returns the board as a board file that ParseBoard reads back
// to an equal board.
func (b *Board) MarshalTOML() []byte {
	var w bytes.Buffer
	fmt.Fprintf(&w, "name = %s\n", tomlString(b.Name))
	fmt.Fprintf(&w, "description = %s\n", tomlString(b.Description))
	fmt.Fprintf(&w, "flash_size = %s\n", sizeString(b.Geometry.Size))
	fmt.Fprintf(&w, "write_size = %d\n", b.Geometry.WriteSize)
	fmt.Fprintf(&w, "erased = 0x%02X\n", b.Geometry.Erased)
	fmt.Fprintf(&w, "ram = %s\n", sizeString(b.RAMSize))
	fmt.Fprintf(&w, "flash = %q\n", b.FlashLocation)
	if b.Endurance != 0 {
		fmt.Fprintf(&w, "endurance = %d\n", b.Endurance)
	}
	runs := b.RunsFormats()
	fmt.Fprintf(&w, "runs = [")
	for i, r := range runs {
		if i > 0 {
			fmt.Fprintf(&w, ", ")
		}
		fmt.Fprintf(&w, "%s", tomlString(r))
	}
	fmt.Fprintf(&w, "]\n")
	for _, r := range b.SectorRuns {
		fmt.Fprintf(&w, "\n[[sectors]]\nsize = %s\ncount = %d\n", sizeString(r.Size), r.Count)
	}
	fmt.Fprintf(&w, "\n[regions]\n")
	for _, r := range b.Geometry.Regions {
		fmt.Fprintf(&w, "%-7s = { start = 0x%06X, size = %s }\n", r.Kind, r.Start, sizeString(r.Size))
	}
	return w.Bytes()
}

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7F:
			fmt.Fprintf(&b, "\\u%04X", r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func sizeString(n uint32) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%q", fmt.Sprintf("%dMiB", n>>20))
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%q", fmt.Sprintf("%dKiB", n>>10))
	}
	return strconv.FormatUint(uint64(n), 10)
}
