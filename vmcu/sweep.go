package vmcu

import "fmt"

// SweepOptions configures Sweep.
type SweepOptions struct {
	// Clean cuts power before each operation.
	Clean bool
	// TornSeeds cuts power during each operation once per seed 1..TornSeeds.
	TornSeeds int
}

// Sweep checks that a scenario survives a power cut at every one of its
// operations. It first runs scenario on a clone of base, recording its
// operations to learn their number n. Then, for every cut point 1..n (before
// the operation if opt.Clean, and during it for each torn seed), it runs
// scenario on a fresh clone of base with that power cut armed, and calls
// check on the result (typically: power on again and verify). It returns
// the number of cut points checked and the first error, annotated with its
// cut.
func Sweep(base *Device, scenario func(d *Device) error, check func(d *Device, cut PowerCut) error, opt SweepOptions) (int, error) {
	ref := base.Clone()
	rec := ref.Record()
	if err := scenario(ref); err != nil {
		return 0, fmt.Errorf("sweep: scenario without power cut: %w", err)
	}
	n := uint64(rec.Len())
	var cuts []PowerCut
	for at := uint64(1); at <= n; at++ {
		if opt.Clean {
			cuts = append(cuts, PowerCut{At: at})
		}
		for s := 1; s <= opt.TornSeeds; s++ {
			cuts = append(cuts, PowerCut{At: at, Torn: true, Seed: uint64(s)})
		}
	}
	for _, c := range cuts {
		d := base.Clone()
		if err := d.ArmPowerCut(c); err != nil {
			return 0, err
		}
		scenario(d) // it is expected to stop at the cut
		if err := check(d, c); err != nil {
			return 0, fmt.Errorf("sweep: power cut %v: %w", c, err)
		}
	}
	return len(cuts), nil
}
