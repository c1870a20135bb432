package sim

import (
	"context"
	"strings"
	"testing"

	"github.com/sbm-project/sbm/hal"
)

// TestTortureReduced runs the reduced sweep of every scenario (what CI
// runs) and requires every run to pass, with cuts that left installs
// pending and further cuts during recovery.
func TestTortureReduced(t *testing.T) {
	var log strings.Builder
	rep, err := Torture(context.Background(), TortureOptions{Seed: 1, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + log.String())
	if rep.Failed != 0 {
		for _, s := range rep.Scenarios {
			for _, f := range s.Failures {
				t.Errorf("%v (%s)", f, f.Repro())
			}
		}
	}
	if len(rep.Scenarios) != len(ScenarioNames) {
		t.Fatalf("%d scenario reports, want %d", len(rep.Scenarios), len(ScenarioNames))
	}
	for _, s := range rep.Scenarios {
		if s.Skipped != "" {
			t.Logf("%s skipped: %s", s.Name, s.Skipped)
			continue
		}
		if s.Ops < 5 || s.CutPoints < 5 || s.Runs != s.Passed+s.Failed {
			t.Errorf("%s: too small a sweep: %+v", s.Name, s)
		}
		if s.Resumed == 0 {
			t.Errorf("%s: no cut left an install pending", s.Name)
		}
		if s.ExtraCuts == 0 {
			t.Errorf("%s: no further cut fired during recovery", s.Name)
		}
	}
	if rep.Passed == 0 {
		t.Fatal("nothing passed")
	}
}

// eraseBothBanks is a broken secure-storage scheme: every erase of a
// secure-storage sector first erases the same sector of the other bank,
// so the old record is gone before the new one is written.
type eraseBothBanks struct{ hal.Flash }

func (f eraseBothBanks) Erase(addr uint32) error {
	g := f.Geometry()
	if r, ok := g.Region(hal.RegionSecure); ok && r.Overlaps(addr, 1) {
		half := r.Size / 2
		mirror := addr + half
		if addr >= r.Start+half {
			mirror = addr - half
		}
		if err := f.Flash.Erase(mirror); err != nil {
			return err
		}
	}
	return f.Flash.Erase(addr)
}

// TestTortureCatchesBrokenScheme shows that the sweep can fail: with a
// storage that destroys the old record before writing the new one, cuts
// in the commit window lose the table, and each failure reruns alone from
// its printed parameters.
func TestTortureCatchesBrokenScheme(t *testing.T) {
	broken := func(f hal.Flash) hal.Flash { return eraseBothBanks{f} }
	opts := TortureOptions{Seed: 2, Scenarios: []string{ScenarioCommits}, wrapFlash: broken, MaxCuts: -1}
	rep, err := Torture(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed == 0 {
		t.Fatalf("the broken scheme passed: %+v", rep.Scenarios[0])
	}
	f := rep.Scenarios[0].Failures[0]
	t.Logf("%d failed; first: %v", rep.Failed, f)
	opts.At, opts.Torn, opts.TornSeed = f.At, f.Torn, f.TornSeed
	again, err := Torture(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if again.Failed != 1 || again.Passed != 0 || again.Scenarios[0].Failures[0].Reason != f.Reason {
		t.Fatalf("rerun of %s: %d passed, %d failed %v", f.Repro(), again.Passed, again.Failed, again.Scenarios[0].Failures)
	}
	// The sound scheme passes the same cut.
	opts.wrapFlash = nil
	if ok, err := Torture(context.Background(), opts); err != nil || ok.Failed != 0 {
		t.Fatalf("the real SBM failed the cut: %v %+v", err, ok)
	}
}

// tableFirst is a broken install order: programs into the primary slot
// are held back (reads see them) and reach the flash only after the next
// secure-storage program — the signature table is written before the
// application it describes.
type tableFirst struct {
	hal.Flash
	held []heldProgram
}

type heldProgram struct {
	addr uint32
	data []byte
}

func (f *tableFirst) region(k hal.RegionKind, addr uint32) bool {
	r, ok := f.Geometry().Region(k)
	return ok && r.Overlaps(addr, 1)
}

func (f *tableFirst) Program(addr uint32, p []byte) error {
	if f.region(hal.RegionPrimary, addr) {
		f.held = append(f.held, heldProgram{addr, append([]byte(nil), p...)})
		return nil
	}
	if err := f.Flash.Program(addr, p); err != nil {
		return err
	}
	if f.region(hal.RegionSecure, addr) {
		for _, h := range f.held {
			if err := f.Flash.Program(h.addr, h.data); err != nil {
				return err
			}
		}
		f.held = nil
	}
	return nil
}

func (f *tableFirst) Read(addr uint32, p []byte) error {
	if err := f.Flash.Read(addr, p); err != nil {
		return err
	}
	for _, h := range f.held {
		for i, b := range h.data {
			if a := h.addr + uint32(i); a >= addr && a < addr+uint32(len(p)) {
				p[a-addr] = b
			}
		}
	}
	return nil
}

// TestTortureCatchesTableFirst: the sweep of an install catches a scheme
// that commits the table before programming the application.
func TestTortureCatchesTableFirst(t *testing.T) {
	broken := func(f hal.Flash) hal.Flash { return &tableFirst{Flash: f} }
	rep, err := Torture(context.Background(), TortureOptions{Seed: 3, Scenarios: []string{ScenarioRecovery}, wrapFlash: broken})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed == 0 {
		t.Fatalf("the table-first scheme passed: %+v", rep.Scenarios[0])
	}
	t.Logf("%d of %d runs failed; first: %v", rep.Failed, rep.Failed+rep.Passed, rep.Scenarios[0].Failures[0])
}

// TestTortureOptions checks option errors.
func TestTortureOptions(t *testing.T) {
	if _, err := Torture(context.Background(), TortureOptions{Scenarios: []string{"nope"}}); err == nil || !strings.Contains(err.Error(), "unknown scenario") {
		t.Fatalf("unknown scenario: %v", err)
	}
	if _, err := Torture(context.Background(), TortureOptions{Board: "nope"}); err == nil {
		t.Fatal("unknown board accepted")
	}
	if _, err := Torture(context.Background(), TortureOptions{Size: -1}); err == nil {
		t.Fatal("negative size accepted")
	}
}
