package sbm

import (
	"bytes"
	"testing"

	"github.com/sbm-project/sbm/hal"
)

// TestStagingLazyErase: after StagingErase the slot reads as erased, the
// bytes written read back, and only the sectors written were erased (the
// rest still hold the old package physically, invisible through the
// service).
func TestStagingLazyErase(t *testing.T) {
	v, _, oldPkg := withV1Pkg(t, ctxA, 61)
	f := v.d.Flash(hal.PrivSBM)
	g := f.Geometry()
	st, _ := g.Region(hal.RegionStaging)
	sector := g.Sectors[0].Size
	if uint32(len(oldPkg)) <= 2*sector {
		t.Fatalf("old package of %d bytes too small for this test", len(oldPkg))
	}
	v.run(func(s Services) {
		e0 := v.d.Counters().Erases
		if err := s.StagingErase(); err != nil {
			t.Fatal(err)
		}
		if n := v.d.Counters().Erases - e0; n != 0 {
			t.Fatalf("StagingErase erased %d sectors at once", n)
		}
		got := make([]byte, 3*sector)
		if err := s.StagingRead(0, got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, bytes.Repeat([]byte{g.Erased}, len(got))) {
			t.Fatal("staging does not read as erased after StagingErase")
		}
		data := []byte("a new package, 37 bytes long, unaligned")
		if err := s.StagingWrite(sector+3, data); err != nil {
			t.Fatal(err)
		}
		if n := v.d.Counters().Erases - e0; n != 1 {
			t.Fatalf("a write into one sector erased %d sectors", n)
		}
		back := make([]byte, len(data))
		if err := s.StagingRead(sector+3, back); err != nil || !bytes.Equal(back, data) {
			t.Fatalf("read back %q, %v", back, err)
		}
		// The old package is still in sector 0 physically, not through the service.
		raw := make([]byte, 8)
		f.Read(st.Start, raw)
		if !bytes.Equal(raw, oldPkg[:8]) {
			t.Fatal("sector 0 was erased although nothing was written there")
		}
		s.StagingRead(0, raw)
		if !bytes.Equal(raw, bytes.Repeat([]byte{g.Erased}, 8)) {
			t.Fatal("a scheduled sector leaked its old bytes through StagingRead")
		}
	})
}
