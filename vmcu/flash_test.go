package vmcu

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/sbm-project/sbm/hal"
)

// testBoards returns every built-in board plus synthetic boards with every
// write granularity and both erased values.
func testBoards(t testing.TB) []*Board {
	boards := Boards()
	for _, ws := range []int{1, 2, 4, 8, 16, 32} {
		for _, erased := range []int{0xFF, 0x00} {
			src := fmt.Sprintf(`
name = "w%d-e%02x"
flash_size = "64KiB"
write_size = %d
erased = %d
ram = "4KiB"
[[sectors]]
size = 1024
count = 16
[[sectors]]
size = "16KiB"
count = 3
[regions]
sbm = { start = 0, size = "4KiB" }
secure = { start = 0x1000, size = "4KiB" }
primary = { start = 0x2000, size = "8KiB" }
staging = { start = 0x4000, size = "16KiB" }
appdata = { start = 0x8000, size = "32KiB" }
`, ws, erased, ws, erased)
			b, err := ParseBoard([]byte(src))
			if err != nil {
				t.Fatal(err)
			}
			boards = append(boards, b)
		}
	}
	return boards
}

func fill(n int, v byte) []byte { return bytes.Repeat([]byte{v}, n) }

// pattern returns n bytes that differ from the erased value e.
func pattern(n int, e byte) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7+1) ^ e
		if p[i] == e {
			p[i] ^= 0x5A
		}
	}
	return p
}

func TestFlashSemantics(t *testing.T) {
	for _, b := range testBoards(t) {
		t.Run(b.Name, func(t *testing.T) {
			g := b.Geometry
			ws, e := g.WriteSize, g.Erased
			s1 := g.Sectors[1] // second sector
			type step struct {
				name string
				op   func(f hal.Flash) error
				want error
			}
			steps := []step{
				{"read all erased", func(f hal.Flash) error {
					p := make([]byte, g.Size)
					if err := f.Read(0, p); err != nil {
						return err
					}
					if !bytes.Equal(p, fill(int(g.Size), e)) {
						return errors.New("blank flash is not erased")
					}
					return nil
				}, nil},
				{"read past end", func(f hal.Flash) error { return f.Read(g.Size-1, make([]byte, 2)) }, hal.ErrOutOfRange},
				{"read at end", func(f hal.Flash) error { return f.Read(g.Size, make([]byte, 1)) }, hal.ErrOutOfRange},
				{"read wraps", func(f hal.Flash) error { return f.Read(0xFFFFFFFF, make([]byte, 2)) }, hal.ErrOutOfRange},
				{"read empty at end", func(f hal.Flash) error { return f.Read(g.Size, nil) }, nil},
				{"program aligned", func(f hal.Flash) error { return f.Program(s1.Start, pattern(int(2*ws), e)) }, nil},
				{"program over programmed", func(f hal.Flash) error { return f.Program(s1.Start, pattern(int(ws), e)) }, hal.ErrNotErased},
				{"program same value again", func(f hal.Flash) error { return f.Program(s1.Start+ws, pattern(int(2*ws), e)[ws:]) }, hal.ErrNotErased},
				{"program erased value over programmed", func(f hal.Flash) error { return f.Program(s1.Start, fill(int(ws), e)) }, hal.ErrNotErased},
				{"program misaligned address", func(f hal.Flash) error {
					if ws == 1 {
						return hal.ErrMisaligned // nothing is misaligned at 1 byte
					}
					return f.Program(s1.Start+2*ws+1, pattern(int(ws), e))
				}, hal.ErrMisaligned},
				{"program misaligned length", func(f hal.Flash) error {
					if ws == 1 {
						return hal.ErrMisaligned
					}
					return f.Program(s1.Start+2*ws, pattern(int(ws)+1, e))
				}, hal.ErrMisaligned},
				{"program past end", func(f hal.Flash) error { return f.Program(g.Size-ws, pattern(int(2*ws), e)) }, hal.ErrOutOfRange},
				{"program across sectors", func(f hal.Flash) error { return f.Program(s1.End()-ws, pattern(int(2*ws), e)) }, nil},
				{"read across sectors", func(f hal.Flash) error {
					p := make([]byte, 2*ws)
					if err := f.Read(s1.End()-ws, p); err != nil {
						return err
					}
					if !bytes.Equal(p, pattern(int(2*ws), e)) {
						return errors.New("read back differs")
					}
					return nil
				}, nil},
				{"erase not at sector start", func(f hal.Flash) error { return f.Erase(s1.Start + ws) }, hal.ErrMisaligned},
				{"erase past end", func(f hal.Flash) error { return f.Erase(g.Size) }, hal.ErrOutOfRange},
				{"erase", func(f hal.Flash) error { return f.Erase(s1.Start) }, nil},
				{"erased sector reads erased, neighbour kept", func(f hal.Flash) error {
					p := make([]byte, s1.Size+ws)
					if err := f.Read(s1.Start, p); err != nil {
						return err
					}
					if !bytes.Equal(p[:s1.Size], fill(int(s1.Size), e)) {
						return errors.New("sector not erased")
					}
					if !bytes.Equal(p[s1.Size:], pattern(int(2*ws), e)[ws:]) {
						return errors.New("erase changed the next sector")
					}
					return nil
				}, nil},
				{"program after erase", func(f hal.Flash) error { return f.Program(s1.Start, pattern(int(ws), e)) }, nil},
				{"erase last sector", func(f hal.Flash) error { return f.Erase(g.Sectors[len(g.Sectors)-1].Start) }, nil},
			}
			d := NewMemory(b, 1)
			f := d.Flash(hal.PrivSBM)
			for _, s := range steps {
				before := append([]byte(nil), d.flash...)
				err := s.op(f)
				if s.want == nil && err != nil {
					t.Fatalf("%s: %v", s.name, err)
				}
				if s.want != nil {
					if !errors.Is(err, s.want) {
						t.Fatalf("%s: got %v, want %v", s.name, err, s.want)
					}
					if !bytes.Equal(before, d.flash) {
						t.Fatalf("%s: a refused operation changed the flash", s.name)
					}
				}
			}
			if w := d.Wear(); w[1] != 1 || w[len(w)-1] != 1 || w[0] != 0 {
				t.Errorf("wear = %v..., want sector 1 and last erased once", w[:3])
			}
			c := d.Counters()
			if c.Erases != 2 || c.Programs != 3 {
				t.Errorf("counters = %+v, want 2 erases and 3 programs", c)
			}
		})
	}
}

func TestBadSector(t *testing.T) {
	b, _ := LookupBoard("small")
	d := NewMemory(b, 1)
	f := d.Flash(hal.PrivSBM)
	s := b.Geometry.Sectors[3]
	if err := d.SetBadSector(s.Start+1, true); !errors.Is(err, hal.ErrMisaligned) {
		t.Fatalf("bad sector inside a sector: %v", err)
	}
	if err := d.SetBadSector(s.Start, true); err != nil {
		t.Fatal(err)
	}
	if err := f.Program(s.Start, pattern(8, 0xFF)); !errors.Is(err, hal.ErrFlashFailure) {
		t.Errorf("program of bad sector: %v", err)
	}
	if err := f.Program(s.Start-8, pattern(16, 0xFF)); !errors.Is(err, hal.ErrFlashFailure) {
		t.Errorf("program into bad sector: %v", err)
	}
	if err := f.Erase(s.Start); !errors.Is(err, hal.ErrFlashFailure) {
		t.Errorf("erase of bad sector: %v", err)
	}
	if err := f.Read(s.Start, make([]byte, 16)); err != nil {
		t.Errorf("read of bad sector: %v", err)
	}
	if err := d.SetBadSector(s.Start, false); err != nil {
		t.Fatal(err)
	}
	if err := f.Program(s.Start, pattern(8, 0xFF)); err != nil {
		t.Errorf("program after repair: %v", err)
	}
}

func TestFlipBits(t *testing.T) {
	b, _ := LookupBoard("small")
	count := func(seed uint64) ([]byte, int) {
		d := NewMemory(b, 1)
		if err := d.FlipBits(hal.RegionPrimary, 10, seed); err != nil {
			t.Fatal(err)
		}
		r, _ := b.Geometry.Region(hal.RegionPrimary)
		n := 0
		for i, v := range d.flash {
			if v != 0xFF {
				if !r.Overlaps(uint32(i), 1) {
					t.Fatalf("bit flipped outside the region at %#x", i)
				}
				for ; v != 0xFF; v |= v + 1 {
					n++
				}
			}
		}
		return d.flash, n
	}
	a, n := count(7)
	if n != 10 {
		t.Errorf("%d bits flipped, want 10", n)
	}
	a2, _ := count(7)
	c, _ := count(8)
	if !bytes.Equal(a, a2) || bytes.Equal(a, c) {
		t.Error("flips are not a function of the seed")
	}
	d := NewMemory(b, 1)
	if err := d.FlipBits(hal.RegionPrimary, 0, 1); err == nil {
		t.Error("0 bits accepted")
	}
}
