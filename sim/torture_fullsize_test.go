package sim

import (
	"context"
	"testing"
)

// TestTortureFullSize runs the reduced power-cut sweep of every scenario for
// a full-size application (2.8 MB, the size of a Go WebAssembly module) on
// the default board. The exhaustive sweep is `sbm device torture
// --exhaustive` (docs/power-cut.md).
func TestTortureFullSize(t *testing.T) {
	if testing.Short() {
		t.Skip("full-size sweep (about 20 s)")
	}
	rep, err := Torture(context.Background(), TortureOptions{Board: "default", Size: 2_800_000, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed != 0 || rep.Passed < 300 {
		t.Fatalf("%d passed, %d failed", rep.Passed, rep.Failed)
	}
	for _, s := range rep.Scenarios {
		t.Logf("%+v", *s)
	}
}
