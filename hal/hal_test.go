package hal_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/sbm-project/sbm/hal"
)

// memFuses is a minimal fake of OTP for testing the helpers.
type memFuses struct{ w [hal.FuseWords]uint32 }

func (m *memFuses) Words() int { return hal.FuseWords }
func (m *memFuses) ReadWord(i int) (uint32, error) {
	if i < 0 || i >= hal.FuseWords {
		return 0, hal.ErrBadFuse
	}
	return m.w[i], nil
}
func (m *memFuses) ProgramWord(i int, v uint32) error {
	if i < 0 || i >= hal.FuseWords {
		return hal.ErrBadFuse
	}
	m.w[i] |= v
	return nil
}

func TestFuseBytes(t *testing.T) {
	f := &memFuses{}
	if err := hal.ProgramFuseBytes(f, hal.FuseUser, []byte{1, 0, 0, 0, 2, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	before := f.w
	if err := hal.ProgramFuseBytes(f, hal.FuseUser, []byte{1, 0, 0, 0, 1, 0, 0, 0}); !errors.Is(err, hal.ErrFuseConflict) {
		t.Errorf("conflict: %v", err)
	}
	if f.w != before {
		t.Error("a refused program changed the fuses")
	}
	for _, tc := range []struct {
		word, n int
	}{{-1, 4}, {hal.FuseWords - 1, 8}, {0, 3}} {
		if err := hal.ProgramFuseBytes(f, tc.word, make([]byte, tc.n)); !errors.Is(err, hal.ErrBadFuse) {
			t.Errorf("ProgramFuseBytes(%d, %d bytes): %v", tc.word, tc.n, err)
		}
		if err := hal.ReadFuseBytes(f, tc.word, make([]byte, tc.n)); !errors.Is(err, hal.ErrBadFuse) {
			t.Errorf("ReadFuseBytes(%d, %d bytes): %v", tc.word, tc.n, err)
		}
	}
	p := make([]byte, 8)
	hal.ReadFuseBytes(f, hal.FuseUser, p)
	if !bytes.Equal(p, []byte{1, 0, 0, 0, 2, 0, 0, 0}) {
		t.Errorf("read back %v", p)
	}
}

func TestCounterTorn(t *testing.T) {
	// A counter whose bits were blown out of order (a torn program) reads
	// the number of blown bits and still advances correctly.
	f := &memFuses{}
	f.w[hal.FuseCounters+hal.CounterWords] = 0b1011 // counter 1: 3 bits
	if v, _ := hal.ReadCounter(f, 1); v != 3 {
		t.Errorf("torn counter = %d, want 3", v)
	}
	if err := hal.AdvanceCounter(f, 1, 4); err != nil {
		t.Fatal(err)
	}
	if v, _ := hal.ReadCounter(f, 1); v != 4 {
		t.Errorf("after advance = %d, want 4", v)
	}
	for _, n := range []int{-1, hal.NumCounters} {
		if _, err := hal.ReadCounter(f, n); !errors.Is(err, hal.ErrBadFuse) {
			t.Errorf("counter %d: %v", n, err)
		}
	}
}

func TestGeometry(t *testing.T) {
	g := hal.Geometry{
		Size: 0x30000, WriteSize: 4, Erased: 0xFF,
		Sectors: []hal.Sector{{0, 0x4000}, {0x4000, 0x4000}, {0x8000, 0x8000}, {0x10000, 0x20000}},
		Regions: []hal.Region{{hal.RegionSBM, 0, 0x8000}, {hal.RegionPrimary, 0x10000, 0x20000}},
	}
	for _, tc := range []struct {
		addr uint32
		i    int
		ok   bool
	}{{0, 0, true}, {0x3FFF, 0, true}, {0x4000, 1, true}, {0xFFFF, 2, true}, {0x10000, 3, true}, {0x2FFFF, 3, true}, {0x30000, 0, false}} {
		i, ok := g.SectorAt(tc.addr)
		if i != tc.i || ok != tc.ok {
			t.Errorf("SectorAt(%#x) = %d, %v; want %d, %v", tc.addr, i, ok, tc.i, tc.ok)
		}
	}
	if r, ok := g.Region(hal.RegionPrimary); !ok || r.End() != 0x30000 {
		t.Errorf("primary = %+v", r)
	}
	if _, ok := g.Region(hal.RegionStaging); ok {
		t.Error("missing region found")
	}
	r, _ := g.Region(hal.RegionSBM)
	if !r.Overlaps(0x7FFF, 1) || r.Overlaps(0x8000, 4) || r.Overlaps(0, 0) {
		t.Error("Overlaps is wrong")
	}
	for k := hal.RegionSBM; k < hal.NumRegionKinds; k++ {
		if k2, ok := hal.ParseRegionKind(k.String()); !ok || k2 != k {
			t.Errorf("region kind %d does not round-trip", k)
		}
	}
	if _, ok := hal.ParseRegionKind("unknown"); ok {
		t.Error("parsed unknown region kind")
	}
}

// noisyPUF is a fake PUF with independent bit errors at a given rate.
type noisyPUF struct {
	ref  [hal.PUFResponseSize]byte
	rate float64
	rng  *rand.Rand
}

func (p *noisyPUF) Response(b []byte) error {
	copy(b, p.ref[:])
	for i := 0; i < len(b)*8; i++ {
		if p.rng.Float64() < p.rate {
			b[i/8] ^= 1 << (i % 8)
		}
	}
	return nil
}

func TestFuzzyExtractor(t *testing.T) {
	p := &noisyPUF{rate: 0.05, rng: rand.New(rand.NewPCG(1, 2))}
	for i := range p.ref {
		p.ref[i] = byte(p.rng.Uint32())
	}
	var helper [hal.PUFHelperSize]byte
	secret := make([]byte, 32)
	for i := range secret {
		secret[i] = byte(p.rng.Uint32())
	}
	// Enrolled without noise, so that the flips below are all the noise.
	key, err := hal.EnrollPUF(&noisyPUF{ref: p.ref, rng: p.rng}, bytes.NewReader(secret), &helper)
	if err != nil {
		t.Fatal(err)
	}
	// The majority vote's boundary: 11 of a block's 23 bits flipped are
	// corrected, 12 are not (and are detected), in the first, a middle and
	// the last block.
	for _, block := range []int{0, 100, hal.PUFKeyBits - 1} {
		for flips, ok := range map[int]bool{11: true, 12: false} {
			fp := &noisyPUF{ref: p.ref, rng: p.rng}
			for k := range flips {
				b := block*hal.PUFRepetition + 2*k%hal.PUFRepetition
				fp.ref[b/8] ^= 1 << (b % 8)
			}
			k, err := hal.RecoverPUFKey(fp, &helper)
			if ok && (err != nil || k != key) {
				t.Errorf("block %d, %d bits flipped: %v", block, flips, err)
			}
			if !ok && !errors.Is(err, hal.ErrPUFHelper) {
				t.Errorf("block %d, %d bits flipped: %v, want ErrPUFHelper", block, flips, err)
			}
		}
	}
	for i := range 200 {
		if k, err := hal.RecoverPUFKey(p, &helper); err != nil || k != key {
			t.Fatalf("recovery %d at 5%% noise: %v", i, err)
		}
	}
	// Far too much noise is detected, not answered with a wrong key.
	p.rate = 0.45
	if _, err := hal.RecoverPUFKey(p, &helper); !errors.Is(err, hal.ErrPUFHelper) {
		t.Errorf("45%% noise: %v", err)
	}
	bad := helper
	bad[0] = 'X'
	if _, err := hal.RecoverPUFKey(p, &bad); !errors.Is(err, hal.ErrPUFHelper) {
		t.Errorf("bad magic: %v", err)
	}
	if _, err := hal.EnrollPUF(p, bytes.NewReader(nil), &helper); err == nil {
		t.Error("enrolment with a failing RNG succeeded")
	}
}
