package vmcu

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sbm-project/sbm/hal"
)

// withEndurance returns a copy of the built-in board name with the given
// erase endurance.
func withEndurance(t *testing.T, name string, endurance uint32) *Board {
	t.Helper()
	b, err := LookupBoard(name)
	if err != nil {
		t.Fatal(err)
	}
	c := *b
	c.Endurance = endurance
	return &c
}

func TestBoardEnduranceAndLocation(t *testing.T) {
	tests := []struct {
		board     string
		location  FlashLocation
		endurance uint32
	}{
		{"default", FlashExternal, 100000},
		{"mcu4m", FlashExternal, 100000},
		{"small", FlashExternal, 100000},
		{"stm32f4", FlashInternal, 10000},
		{"stm32h7", FlashInternal, 10000},
		{"erased-zero", FlashInternal, 10000},
	}
	for _, tt := range tests {
		b, err := LookupBoard(tt.board)
		if err != nil {
			t.Fatal(err)
		}
		if b.FlashLocation != tt.location || b.EnduranceCycles() != tt.endurance {
			t.Errorf("%s: flash %v, endurance %d; want %v, %d", tt.board, b.FlashLocation, b.EnduranceCycles(), tt.location, tt.endurance)
		}
	}
	// Unset: internal flash, the default endurance; both survive a round
	// trip through the canonical board file.
	b, err := ParseBoard([]byte(goodBoard))
	if err != nil {
		t.Fatal(err)
	}
	if b.FlashLocation != FlashInternal || b.Endurance != 0 || b.EnduranceCycles() != DefaultEndurance {
		t.Errorf("unset: flash %v, endurance %d (%d cycles)", b.FlashLocation, b.Endurance, b.EnduranceCycles())
	}
	b.FlashLocation, b.Endurance = FlashExternal, 200
	b2, err := ParseBoard(b.MarshalTOML())
	if err != nil {
		t.Fatal(err)
	}
	if b2.FlashLocation != FlashExternal || b2.Endurance != 200 {
		t.Errorf("round trip: flash %v, endurance %d", b2.FlashLocation, b2.Endurance)
	}
}

func TestEndurance(t *testing.T) {
	tests := []struct {
		board     string
		endurance uint32
		sector    int
	}{
		{"small", 200, 3},
		{"small", 1, 0},
		{"stm32f4", 5, 4}, // the 64 KiB sector of a mixed layout
		{"erased-zero", 3, 127},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d", tt.board, tt.endurance), func(t *testing.T) {
			b := withEndurance(t, tt.board, tt.endurance)
			g := b.Geometry
			d := NewMemory(b, 1)
			f := d.Flash(hal.PrivSBM)
			sec := g.Sectors[tt.sector]
			data := pattern(int(g.WriteSize), g.Erased)
			for n := range tt.endurance {
				if err := f.Erase(sec.Start); err != nil {
					t.Fatalf("erase %d of %d: %v", n+1, tt.endurance, err)
				}
			}
			if got := d.Wear()[tt.sector]; got != tt.endurance {
				t.Fatalf("wear %d after %d erases", got, tt.endurance)
			}
			// The last allowed cycle: program works.
			if err := f.Program(sec.Start, data); err != nil {
				t.Fatalf("program after %d erases: %v", tt.endurance, err)
			}
			before := make([]byte, sec.Size)
			f.Read(sec.Start, before)

			// The next erase wears the sector out.
			err := f.Erase(sec.Start)
			if !errors.Is(err, hal.ErrFlashFailure) {
				t.Fatalf("erase %d: %v, want ErrFlashFailure", tt.endurance+1, err)
			}
			for _, want := range []string{"worn out", fmt.Sprintf("sector %d ", tt.sector), fmt.Sprintf("erased %d times", tt.endurance+1)} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			after := make([]byte, sec.Size)
			f.Read(sec.Start, after)
			if !bytes.Equal(before, after) {
				t.Error("the failed erase changed the sector")
			}
			// Worn out for good: erase and program fail, reads work, and
			// further attempts do not count.
			if err := f.Erase(sec.Start); !errors.Is(err, hal.ErrFlashFailure) {
				t.Errorf("erase of a worn-out sector: %v", err)
			}
			if err := f.Program(sec.Start+sec.Size-g.WriteSize, data); !errors.Is(err, hal.ErrFlashFailure) || !strings.Contains(err.Error(), "worn out") {
				t.Errorf("program of a worn-out sector: %v", err)
			}
			if err := f.Read(sec.Start, after); err != nil {
				t.Errorf("read of a worn-out sector: %v", err)
			}
			if got := d.Wear()[tt.sector]; got != tt.endurance+1 {
				t.Errorf("wear %d, want %d", got, tt.endurance+1)
			}
			if c := d.Counters(); c.Erases != uint64(tt.endurance) {
				t.Errorf("counters: %d erases, want %d", c.Erases, tt.endurance)
			}
			// Other sectors are unaffected.
			other := g.Sectors[(tt.sector+1)%len(g.Sectors)]
			if err := f.Erase(other.Start); err != nil {
				t.Errorf("erase of another sector: %v", err)
			}
			if err := f.Program(other.Start, data); err != nil {
				t.Errorf("program of another sector: %v", err)
			}
		})
	}
}

// TestEndurancePersists wears a sector of a device directory across
// closes and reopens: the wear and the board's endurance are persisted.
func TestEndurancePersists(t *testing.T) {
	const endurance = 4
	b := withEndurance(t, "small", endurance)
	dir := filepath.Join(t.TempDir(), "dev")
	if err := Create(dir, b); err != nil {
		t.Fatal(err)
	}
	sec := b.Geometry.Sectors[5]
	erase := func() error {
		d, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		if d.Board().EnduranceCycles() != endurance {
			t.Fatalf("reopened device has endurance %d", d.Board().EnduranceCycles())
		}
		return d.Flash(hal.PrivSBM).Erase(sec.Start)
	}
	for n := range endurance {
		if err := erase(); err != nil {
			t.Fatalf("erase %d: %v", n+1, err)
		}
	}
	in, err := Inspect(dir)
	if err != nil {
		t.Fatal(err)
	}
	if in.Wear.MaxErases != endurance || len(in.Wear.WornOut) != 0 || in.Flash.Endurance != endurance {
		t.Fatalf("after %d erases: wear %+v, endurance %d", endurance, in.Wear, in.Flash.Endurance)
	}
	if err := erase(); !errors.Is(err, hal.ErrFlashFailure) {
		t.Fatalf("erase %d after reopening: %v", endurance+1, err)
	}
	if err := erase(); !errors.Is(err, hal.ErrFlashFailure) {
		t.Fatalf("erase of a worn-out sector after reopening: %v", err)
	}
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Flash(hal.PrivSBM).Program(sec.Start, pattern(8, 0xFF)); !errors.Is(err, hal.ErrFlashFailure) {
		t.Errorf("program of a worn-out sector after reopening: %v", err)
	}
	if got := d.Wear()[5]; got != endurance+1 {
		t.Errorf("wear %d, want %d", got, endurance+1)
	}
	d.Close()
	in, err = Inspect(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Wear.WornOut) != 1 || in.Wear.WornOut[0] != sec.Start {
		t.Errorf("worn-out sectors %#x, want [%#x]", in.Wear.WornOut, sec.Start)
	}
}
