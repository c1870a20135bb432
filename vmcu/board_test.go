package vmcu

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sbm-project/sbm/hal"
)

func TestBuiltinBoards(t *testing.T) {
	boards := Boards()
	want := []string{"default", "erased-zero", "mcu4m", "small", "stm32f4", "stm32h7"}
	if len(boards) != len(want) {
		t.Fatalf("got %d boards, want %d", len(boards), len(want))
	}
	for i, b := range boards {
		if b.Name != want[i] {
			t.Errorf("board %d is %q, want %q", i, b.Name, want[i])
		}
		// Round trip through the canonical board file.
		b2, err := ParseBoard(b.MarshalTOML())
		if err != nil {
			t.Fatalf("%s: re-parsing: %v\n%s", b.Name, err, b.MarshalTOML())
		}
		if string(b2.MarshalTOML()) != string(b.MarshalTOML()) {
			t.Errorf("%s: round trip changed the board", b.Name)
		}
		for _, k := range []hal.RegionKind{hal.RegionSBM, hal.RegionSecure, hal.RegionPrimary, hal.RegionStaging, hal.RegionAppData} {
			if _, ok := b.Geometry.Region(k); !ok {
				t.Errorf("%s: no %s region", b.Name, k)
			}
		}
	}
}

// TestDefaultBoardFitsGoWasm checks the sizing argument of docs/vmcu.md: the
// default board's slots hold a Go wasip1 application that uses fmt (2.6 MB
// measured with Go 1.26) plus the package overhead (16 bytes per 4 KiB
// chunk and up to 8 KiB of headers).
func TestDefaultBoardFitsGoWasm(t *testing.T) {
	b, err := LookupBoard("default")
	if err != nil {
		t.Fatal(err)
	}
	g := b.Geometry
	if g.Size != 8<<20 || g.WriteSize != 8 || g.Erased != 0xFF || g.Sectors[0].Size != 4096 {
		t.Errorf("default board geometry changed: %+v", g)
	}
	const app = 2_603_754 + 2_603_754/4 // measured hello world with fmt, plus 25% growth
	primary, _ := g.Region(hal.RegionPrimary)
	staging, _ := g.Region(hal.RegionStaging)
	if primary.Size < app {
		t.Errorf("primary slot %d bytes < %d", primary.Size, app)
	}
	pkg := uint64(primary.Size) + uint64(primary.Size)/4096*16 + 8<<10
	if uint64(staging.Size) < pkg {
		t.Errorf("staging slot %d bytes cannot hold a full package of a full primary slot (%d bytes)", staging.Size, pkg)
	}
}

const goodBoard = `
name = "t"
flash_size = "64KiB"
write_size = 8
erased = 0xFF
ram = "16KiB"
[[sectors]]
size = "4KiB"
count = 16
[regions]
sbm = { start = 0, size = "8KiB" }
secure = { start = 0x2000, size = "8KiB" }
primary = { start = 0x4000, size = "16KiB" }
staging = { start = 0x8000, size = "32KiB" }
`

func TestParseBoardErrors(t *testing.T) {
	if _, err := ParseBoard([]byte(goodBoard)); err != nil {
		t.Fatalf("good board: %v", err)
	}
	tests := []struct {
		name, old, new, want string
	}{
		{"unknown key", `ram = "16KiB"`, "ram = \"16KiB\"\ncolour = 1", "unknown key"},
		{"syntax", `name = "t"`, `name = `, "invalid board"},
		{"missing name", `name = "t"`, ``, "missing name"},
		{"bad name", `name = "t"`, `name = "a b"`, "name"},
		{"write size", `write_size = 8`, `write_size = 3`, "write_size 3"},
		{"write size 64", `write_size = 8`, `write_size = 64`, "write_size 64"},
		{"erased", `erased = 0xFF`, `erased = 0x0F`, "erased 0xf"},
		{"erased type", `erased = 0xFF`, `erased = "x"`, "invalid board"},
		{"flash size zero", `flash_size = "64KiB"`, `flash_size = 0`, "flash_size 0"},
		{"flash size huge", `flash_size = "64KiB"`, `flash_size = "4096MiB"`, "flash_size"},
		{"size string", `flash_size = "64KiB"`, `flash_size = "64 parsecs"`, "bad size"},
		{"negative", `flash_size = "64KiB"`, `flash_size = -1`, "out of range"},
		{"ram", `ram = "16KiB"`, `ram = 10`, "ram 10"},
		{"no sectors", "[[sectors]]\nsize = \"4KiB\"\ncount = 16", "", "missing [[sectors]]"},
		{"sector not power of two", `size = "4KiB"`, `size = 3000`, "not a power of two"},
		{"sectors short", `count = 16`, `count = 15`, "sectors cover"},
		{"sectors long", `count = 16`, `count = 17`, "extend past"},
		{"sector count zero", `count = 16`, `count = 0`, "count 0"},
		{"region unaligned", `primary = { start = 0x4000`, `primary = { start = 0x4100`, "not at a sector boundary"},
		{"region end unaligned", `staging = { start = 0x8000, size = "32KiB" }`, `staging = { start = 0x8000, size = "31KiB" }`, "end 0xfc00 is not at a sector boundary"},
		{"region outside", `staging = { start = 0x8000, size = "32KiB" }`, `staging = { start = 0x8000, size = "36KiB" }`, "outside the flash"},
		{"region overlap", `primary = { start = 0x4000, size = "16KiB" }`, `primary = { start = 0x2000, size = "16KiB" }`, "overlap"},
		{"region unknown", `staging =`, `other =`, "unknown region \"other\""},
		{"region missing", `sbm = { start = 0, size = "8KiB" }`, ``, "missing region sbm"},
		{"region empty", `sbm = { start = 0, size = "8KiB" }`, `sbm = { start = 0, size = 0 }`, "empty"},
		{"region no size", `sbm = { start = 0, size = "8KiB" }`, `sbm = { start = 0 }`, "want start and size"},
		{"flash location", `ram = "16KiB"`, "ram = \"16KiB\"\nflash = \"onboard\"", `flash "onboard": want "internal" or "external"`},
		{"flash location type", `ram = "16KiB"`, "ram = \"16KiB\"\nflash = 1", "invalid board"},
		{"endurance negative", `ram = "16KiB"`, "ram = \"16KiB\"\nendurance = -1", "endurance -1"},
		{"endurance huge", `ram = "16KiB"`, "ram = \"16KiB\"\nendurance = 2000000000", "endurance 2000000000"},
		{"endurance type", `ram = "16KiB"`, "ram = \"16KiB\"\nendurance = \"many\"", "invalid board"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := strings.Replace(goodBoard, tt.old, tt.new, 1)
			if src == goodBoard {
				t.Fatalf("test case does not change the board")
			}
			_, err := ParseBoard([]byte(src))
			if err == nil {
				t.Fatalf("no error")
			}
			if !errors.Is(err, ErrBadBoard) {
				t.Errorf("error %q does not wrap ErrBadBoard", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestLoadBoard(t *testing.T) {
	if _, err := LoadBoard("nosuch"); err == nil || !strings.Contains(err.Error(), `unknown board "nosuch"`) {
		t.Errorf("unknown board: %v", err)
	}
	if _, err := LoadBoard("../boards/default"); err == nil {
		t.Error("path-like name accepted as a built-in")
	}
	f := filepath.Join(t.TempDir(), "b.toml")
	os.WriteFile(f, []byte(goodBoard), 0o644)
	b, err := LoadBoard(f)
	if err != nil || b.Name != "t" {
		t.Fatalf("LoadBoard(file) = %v, %v", b, err)
	}
	os.WriteFile(f, []byte(strings.Repeat("#", maxBoardFile+1)), 0o644)
	if _, err := LoadBoard(f); err == nil {
		t.Error("oversized board file accepted")
	}
	if _, err := LoadBoard(filepath.Join(t.TempDir(), "missing.toml")); err == nil {
		t.Error("missing board file accepted")
	}
}

func FuzzParseBoard(f *testing.F) {
	f.Add([]byte(goodBoard))
	for _, b := range Boards() {
		f.Add(b.MarshalTOML())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseBoard(data)
		if err != nil {
			return
		}
		// A valid board is internally consistent and round-trips.
		g := b.Geometry
		var end uint32
		for _, s := range g.Sectors {
			if s.Start != end || s.Size%g.WriteSize != 0 {
				t.Fatalf("bad sector %+v", s)
			}
			end = s.End()
		}
		if end != g.Size {
			t.Fatalf("sectors end at %#x, size %#x", end, g.Size)
		}
		if _, err := ParseBoard(b.MarshalTOML()); err != nil {
			t.Fatalf("round trip: %v", err)
		}
	})
}
