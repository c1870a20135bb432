package vmcu

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/sbm-project/sbm/hal"
)

// tornProgram runs a torn program of data at addr on a fresh device and
// returns the resulting bytes.
func tornProgram(t *testing.T, b *Board, seed uint64, data []byte) []byte {
	d := NewMemory(b, 1)
	addr := b.Geometry.Sectors[1].Start
	d.ArmPowerCut(PowerCut{At: 1, Torn: true, Seed: seed})
	var pl *PowerLoss
	if err := d.Flash(hal.PrivSBM).Program(addr, data); !errors.As(err, &pl) {
		t.Fatalf("program: %v", err)
	}
	return append([]byte(nil), d.flash[addr:addr+uint32(len(data))]...)
}

func TestTornProgramReproducible(t *testing.T) {
	for _, b := range testBoards(t) {
		t.Run(b.Name, func(t *testing.T) {
			g := b.Geometry
			data := pattern(int(g.WriteSize)*64, g.Erased)
			outcomes := map[string]bool{}
			for seed := uint64(1); seed <= 20; seed++ {
				a := tornProgram(t, b, seed, data)
				if !bytes.Equal(a, tornProgram(t, b, seed, data)) {
					t.Fatalf("seed %d: two runs differ", seed)
				}
				// Every byte is between erased and programmed: only bits
				// that the program would change have moved.
				for i := range a {
					if (a[i]^g.Erased)&^(data[i]^g.Erased) != 0 {
						t.Fatalf("seed %d: byte %d = %#02x moved bits the program does not touch (target %#02x)", seed, i, a[i], data[i])
					}
				}
				outcomes[string(a)] = true
			}
			if len(outcomes) < 10 {
				t.Errorf("20 seeds gave only %d distinct torn results", len(outcomes))
			}
		})
	}
}

func TestTornEraseAndFuse(t *testing.T) {
	b, _ := LookupBoard("small")
	results := map[string]bool{}
	for seed := uint64(1); seed <= 5; seed++ {
		d := NewMemory(b, 1)
		f := d.Flash(hal.PrivSBM)
		s := b.Geometry.Sectors[2]
		if err := f.Program(s.Start, pattern(int(s.Size), 0xFF)); err != nil {
			t.Fatal(err)
		}
		d.ArmPowerCut(PowerCut{At: 1, Torn: true, Seed: seed})
		var pl *PowerLoss
		if err := f.Erase(s.Start); !errors.As(err, &pl) || pl.Op.Kind != OpErase {
			t.Fatalf("erase: %v", err)
		}
		got := string(d.flash[s.Start:s.End()])
		if got == string(fill(int(s.Size), 0xFF)) || got == string(pattern(int(s.Size), 0xFF)) {
			t.Errorf("seed %d: torn erase left a clean state", seed)
		}
		results[got] = true
		if d.Wear()[2] != 1 {
			t.Error("torn erase not counted as wear")
		}
		// A program over the torn sector is refused where it is not erased.
		if err := f.Program(s.Start, pattern(int(s.Size), 0xFF)); !errors.Is(err, hal.ErrNotErased) {
			t.Errorf("program over torn erase: %v", err)
		}
	}
	if len(results) != 5 {
		t.Error("torn erases do not depend on the seed")
	}

	// Fuses: a torn program blows a subset of the new bits, never others.
	for seed := uint64(1); seed <= 10; seed++ {
		d := NewMemory(b, 1)
		d.Fuses().ProgramWord(40, 0x0000_00F0)
		d.ArmPowerCut(PowerCut{At: 1, Torn: true, Seed: seed})
		var pl *PowerLoss
		if err := d.Fuses().ProgramWord(40, 0xFFFF_0000); !errors.As(err, &pl) {
			t.Fatalf("fuse program: %v", err)
		}
		w, _ := d.Fuses().ReadWord(40)
		if w&0x0000_FF0F != 0 || w&0xF0 != 0xF0 {
			t.Errorf("seed %d: torn fuse word %#08x", seed, w)
		}
	}
}

func TestRecorder(t *testing.T) {
	b, _ := LookupBoard("small")
	d := NewMemory(b, 1)
	f := d.Flash(hal.PrivSBM)
	rec := d.Record()
	f.Erase(0x4000)
	f.Program(0x4000, pattern(16, 0xFF))
	f.Program(0x4001, pattern(16, 0xFF)) // misaligned: refused, not an operation
	f.Program(0x4000, pattern(16, 0xFF)) // not erased: refused, not an operation
	f.Read(0, make([]byte, 16))          // reads are not operations
	d.Fuses().ProgramWord(3, 1)          // operation
	d.Fuses().ProgramWord(3, 1)          // nothing new to blow: not an operation
	f.Erase(0x4800)
	want := []Op{
		{1, OpErase, 0x4000, 2048},
		{2, OpProgram, 0x4000, 16},
		{3, OpFuseProgram, 3, 4},
		{4, OpErase, 0x4800, 2048},
	}
	got := rec.Ops()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("ops = %v, want %v", got, want)
	}
	if d.OpCount() != 4 {
		t.Errorf("OpCount = %d", d.OpCount())
	}
	// A cut armed now counts from now.
	d.ArmPowerCut(PowerCut{At: 2})
	if c, _ := d.ArmedPowerCut(); c.At != 2 {
		t.Errorf("armed at %d", c.At)
	}
	if err := f.Erase(0x5000); err != nil {
		t.Fatal(err)
	}
	if c, _ := d.ArmedPowerCut(); c.At != 1 {
		t.Errorf("armed at %d after one op", c.At)
	}
	var pl *PowerLoss
	if err := f.Erase(0x5000); !errors.As(err, &pl) || pl.Op.Seq != 6 {
		t.Errorf("cut: %v", err)
	}
	if _, ok := d.ArmedPowerCut(); ok {
		t.Error("cut still armed after firing")
	}
	if err := d.ArmPowerCut(PowerCut{}); !errors.Is(err, ErrPowerCut) {
		t.Errorf("cut at 0: %v", err)
	}
}

// recordFirmware keeps a 4-byte value in two sectors with a sequence
// number and a commit marker written last; it is the kind of scheme a
// power-cut sweep validates.
type recordFirmware struct{ value uint32 }

var commitMarker = []byte("COMMIT!!")

func (r recordFirmware) Boot(ctx context.Context, hw *hal.Hardware) {
	g := hw.Flash.Geometry()
	area, _ := g.Region(hal.RegionAppData)
	sec := [2]uint32{area.Start, area.Start + g.Sectors[0].Size}
	seq, cur, _ := readRecord(hw.Flash, sec)
	if r.value == 0 {
		return
	}
	next := sec[0]
	if cur == 0 {
		next = sec[1]
	}
	if err := hw.Flash.Erase(next); err != nil {
		panic(err)
	}
	rec := make([]byte, 16)
	binary.LittleEndian.PutUint32(rec, seq+1)
	binary.LittleEndian.PutUint32(rec[4:], r.value)
	if err := hw.Flash.Program(next, rec[:8]); err != nil {
		panic(err)
	}
	if err := hw.Flash.Program(next+8, commitMarker); err != nil {
		panic(err)
	}
}

// readRecord returns the committed record with the highest sequence
// number: its sequence, which sector holds it, and its value.
func readRecord(f hal.Flash, sec [2]uint32) (seq uint32, which int, value uint32) {
	which = -1
	for i, a := range sec {
		p := make([]byte, 16)
		f.Read(a, p)
		if !bytes.Equal(p[8:], commitMarker) {
			continue
		}
		if s := binary.LittleEndian.Uint32(p); which < 0 || s > seq {
			seq, which, value = s, i, binary.LittleEndian.Uint32(p[4:])
		}
	}
	return
}

func currentValue(d *Device) uint32 {
	g := d.board.Geometry
	area, _ := g.Region(hal.RegionAppData)
	_, _, v := readRecord(d.Flash(hal.PrivSBM), [2]uint32{area.Start, area.Start + g.Sectors[0].Size})
	return v
}

func TestSweepRecordFirmware(t *testing.T) {
	b, _ := LookupBoard("small")
	base := NewMemory(b, 1)
	ctx := context.Background()
	base.PowerOn(ctx, recordFirmware{value: 1}, PowerOnOptions{})
	base.PowerOn(ctx, recordFirmware{value: 2}, PowerOnOptions{})
	if v := currentValue(base); v != 2 {
		t.Fatalf("value %d before the sweep", v)
	}
	scenario := func(d *Device) error {
		st, err := d.PowerOn(ctx, recordFirmware{value: 3}, PowerOnOptions{})
		if err == nil && st.Reason != StopReturned && st.Reason != StopPowerLoss {
			err = fmt.Errorf("stopped: %v %v", st.Reason, st.Panic)
		}
		return err
	}
	check := func(d *Device, cut PowerCut) error {
		if v := currentValue(d); v != 2 && v != 3 {
			return fmt.Errorf("value %d after the cut, want 2 or 3", v)
		}
		// And the device recovers: the next update succeeds.
		if st, _ := d.PowerOn(ctx, recordFirmware{value: 4}, PowerOnOptions{}); st.Reason != StopReturned {
			return fmt.Errorf("update after the cut: %v %v", st.Reason, st.Panic)
		}
		if v := currentValue(d); v != 4 {
			return fmt.Errorf("value %d after recovery, want 4", v)
		}
		return nil
	}
	n, err := Sweep(base, scenario, check, SweepOptions{Clean: true, TornSeeds: 4})
	if err != nil {
		t.Fatal(err)
	}
	if n != 3*5 {
		t.Errorf("checked %d cut points, want 15 (3 operations x 5)", n)
	}
}

// A broken scheme (marker written first) must fail the sweep: the sweep
// can fail.
func TestSweepCatchesBrokenScheme(t *testing.T) {
	b, _ := LookupBoard("small")
	base := NewMemory(b, 1)
	ctx := context.Background()
	area, _ := b.Geometry.Region(hal.RegionAppData)
	broken := FirmwareFunc(func(ctx context.Context, hw *hal.Hardware) {
		hw.Flash.Erase(area.Start)
		hw.Flash.Program(area.Start, []byte("VALID!!!"))
		hw.Flash.Program(area.Start+8, []byte("payload!"))
	})
	scenario := func(d *Device) error { _, err := d.PowerOn(ctx, broken, PowerOnOptions{}); return err }
	check := func(d *Device, cut PowerCut) error {
		p := make([]byte, 16)
		d.Flash(hal.PrivSBM).Read(area.Start, p)
		if string(p[:8]) == "VALID!!!" && string(p[8:]) != "payload!" {
			return errors.New("valid marker with a partial payload")
		}
		return nil
	}
	if _, err := Sweep(base, scenario, check, SweepOptions{Clean: true}); err == nil {
		t.Fatal("sweep did not catch the broken scheme")
	}
}

func ExampleSweep() {
	b, _ := LookupBoard("small")
	base := NewMemory(b, 1)
	ctx := context.Background()
	scenario := func(d *Device) error {
		_, err := d.PowerOn(ctx, recordFirmware{value: 7}, PowerOnOptions{})
		return err
	}
	check := func(d *Device, cut PowerCut) error {
		if v := currentValue(d); v != 0 && v != 7 {
			return fmt.Errorf("value %d", v)
		}
		return nil
	}
	n, err := Sweep(base, scenario, check, SweepOptions{Clean: true, TornSeeds: 2})
	fmt.Println(n, err)
	// Output: 9 <nil>
}
