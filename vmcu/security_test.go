package vmcu

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/sbm-project/sbm/hal"
)

func TestFusesWriteOnce(t *testing.T) {
	b, _ := LookupBoard("small")
	d := NewMemory(b, 1)
	f := d.Fuses()
	if err := f.ProgramWord(5, 0b1010); err != nil {
		t.Fatal(err)
	}
	// Programming zeroes does not clear anything; it is not an error.
	if err := f.ProgramWord(5, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.ProgramWord(5, 0b0101); err != nil {
		t.Fatal(err)
	}
	if w, _ := f.ReadWord(5); w != 0b1111 {
		t.Errorf("word = %#b, want 0b1111", w)
	}
	for _, i := range []int{-1, hal.FuseWords, 1 << 40} {
		if _, err := f.ReadWord(i); !errors.Is(err, hal.ErrBadFuse) {
			t.Errorf("ReadWord(%d): %v", i, err)
		}
		if err := f.ProgramWord(i, 1); !errors.Is(err, hal.ErrBadFuse) {
			t.Errorf("ProgramWord(%d): %v", i, err)
		}
	}
	// The byte helper refuses conflicting values and writes nothing.
	h := [32]byte{1, 2, 3}
	if err := hal.ProgramRootKeyHash(f, h); err != nil {
		t.Fatal(err)
	}
	if err := hal.ProgramRootKeyHash(f, h); err != nil {
		t.Errorf("same hash again: %v", err)
	}
	h2 := h
	h2[0], h2[31] = 0, 9
	if err := hal.ProgramRootKeyHash(f, h2); !errors.Is(err, hal.ErrFuseConflict) {
		t.Errorf("conflicting hash: %v", err)
	}
	if got, _ := hal.ReadRootKeyHash(f); got != h {
		t.Errorf("hash = %x", got)
	}
	// Counters are thermometer codes and never go down.
	top := 0
	for _, v := range []int{0, 1, 31, 32, 33, 100, 100, 50, hal.CounterMax} {
		if err := hal.AdvanceCounter(f, 1, v); err != nil {
			t.Fatal(err)
		}
		top = max(top, v)
		if got, _ := hal.ReadCounter(f, 1); got != top {
			t.Errorf("advance to %d: counter = %d, want %d", v, got, top)
		}
	}
	if err := hal.AdvanceCounter(f, 1, hal.CounterMax+1); !errors.Is(err, hal.ErrBadFuse) {
		t.Errorf("past max: %v", err)
	}
	if v, _ := hal.ReadCounter(f, 0); v != 0 {
		t.Errorf("counter 0 = %d, neighbouring counter disturbed", v)
	}
}

func TestAccessControl(t *testing.T) {
	b, _ := LookupBoard("small")
	g := b.Geometry
	sbm, _ := g.Region(hal.RegionSBM)
	sec, _ := g.Region(hal.RegionSecure)
	pri, _ := g.Region(hal.RegionPrimary)
	type access struct {
		name string
		priv hal.Privilege
		do   func(f hal.Flash) error
	}
	read := func(a uint32) func(hal.Flash) error {
		return func(f hal.Flash) error { return f.Read(a, make([]byte, 8)) }
	}
	prog := func(a uint32) func(hal.Flash) error {
		return func(f hal.Flash) error { return f.Program(a, pattern(8, 0xFF)) }
	}
	erase := func(a uint32) func(hal.Flash) error { return func(f hal.Flash) error { return f.Erase(a) } }
	tests := []struct {
		locks uint32
		acc   access
		want  error
	}{
		{0, access{"app reads sbm", hal.PrivApp, read(sbm.Start)}, nil},
		{0, access{"app programs secure", hal.PrivApp, prog(sec.Start)}, nil},
		{hal.LockSecureHidden, access{"app reads sbm", hal.PrivApp, read(sbm.Start)}, hal.ErrFault},
		{hal.LockSecureHidden, access{"app reads secure", hal.PrivApp, read(sec.Start)}, hal.ErrFault},
		{hal.LockSecureHidden, access{"app reads across into secure", hal.PrivApp, read(sec.Start - 4)}, hal.ErrFault},
		{hal.LockSecureHidden, access{"app programs secure", hal.PrivApp, prog(sec.Start)}, hal.ErrFault},
		{hal.LockSecureHidden, access{"app erases secure", hal.PrivApp, erase(sec.Start)}, hal.ErrFault},
		{hal.LockSecureHidden, access{"app reads primary", hal.PrivApp, read(pri.Start)}, nil},
		{hal.LockSecureHidden, access{"app programs primary", hal.PrivApp, prog(pri.Start)}, nil},
		{hal.LockSecureHidden, access{"sbm reads secure", hal.PrivSBM, read(sec.Start)}, nil},
		{hal.LockSecureHidden, access{"sbm programs secure", hal.PrivSBM, prog(sec.Start)}, nil},
		{hal.LockSBMWriteProtect, access{"sbm programs sbm", hal.PrivSBM, prog(sbm.Start)}, hal.ErrWriteProtected},
		{hal.LockSBMWriteProtect, access{"sbm erases sbm", hal.PrivSBM, erase(sbm.Start)}, hal.ErrWriteProtected},
		{hal.LockSBMWriteProtect, access{"app erases sbm", hal.PrivApp, erase(sbm.Start)}, hal.ErrWriteProtected},
		{hal.LockSBMWriteProtect, access{"sbm reads sbm", hal.PrivSBM, read(sbm.Start)}, nil},
		{hal.LockSBMWriteProtect, access{"sbm programs secure", hal.PrivSBM, prog(sec.Start)}, nil},
		{hal.LockSBMWriteProtect | hal.LockSecureHidden, access{"app programs sbm", hal.PrivApp, prog(sbm.Start)}, hal.ErrFault},
	}
	for _, tt := range tests {
		t.Run(tt.acc.name, func(t *testing.T) {
			d := NewMemory(b, 1)
			hal.BlowLocks(d.Fuses(), tt.locks)
			before := bytes.Clone(d.flash)
			err := tt.acc.do(d.Flash(tt.acc.priv))
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("locks %#x: got %v, want %v", tt.locks, err, tt.want)
			}
			if err != nil && !bytes.Equal(before, d.flash) {
				t.Error("refused access changed the flash")
			}
		})
	}
	// The same rules hold for the firmware's views.
	d := NewMemory(b, 1)
	hal.BlowLocks(d.Fuses(), hal.LockSecureHidden|hal.LockSBMWriteProtect)
	var appErr, sbmErr error
	d.PowerOn(context.Background(), FirmwareFunc(func(ctx context.Context, hw *hal.Hardware) {
		appErr = hw.AppFlash.Read(sec.Start, make([]byte, 4))
		sbmErr = hw.Flash.Erase(sbm.Start)
	}), PowerOnOptions{})
	if !errors.Is(appErr, hal.ErrFault) || !errors.Is(sbmErr, hal.ErrWriteProtected) {
		t.Errorf("firmware views: app read %v, sbm erase %v", appErr, sbmErr)
	}
}

func TestPUFKey(t *testing.T) {
	b, _ := LookupBoard("small")
	d := NewMemory(b, 1)
	puf := d.PUF()
	var helper [hal.PUFHelperSize]byte
	key, err := hal.EnrollPUF(puf, bytes.NewReader(bytes.Repeat([]byte{0x42}, 64)), &helper)
	if err != nil {
		t.Fatal(err)
	}
	// The raw response is noisy (a few percent of bits) ...
	var r1, r2 [hal.PUFResponseSize]byte
	puf.Response(r1[:])
	puf.Response(r2[:])
	diff := 0
	for i := range r1 {
		for x := r1[i] ^ r2[i]; x != 0; x &= x - 1 {
			diff++
		}
	}
	if rate := float64(diff) / (hal.PUFResponseSize * 8); rate < 0.02 || rate > 0.10 {
		t.Errorf("two readings differ in %.1f%% of bits, want about 6%% (2 x 3%%)", 100*rate)
	}
	// ... but the key is stable over many power-ups.
	for i := range 1000 {
		k, err := hal.RecoverPUFKey(puf, &helper)
		if err != nil || k != key {
			t.Fatalf("power-up %d: key differs (%v)", i, err)
		}
	}
	// The firmware view gives the same key.
	var fwKey [32]byte
	d.PowerOn(context.Background(), FirmwareFunc(func(ctx context.Context, hw *hal.Hardware) {
		fwKey, err = hal.RecoverPUFKey(hw.PUF, &helper)
	}), PowerOnOptions{})
	if err != nil || fwKey != key {
		t.Errorf("firmware key: %v", err)
	}
	// Another device with the same helper data does not get the key.
	other := NewMemory(b, 2)
	if k, err := hal.RecoverPUFKey(other.PUF(), &helper); err == nil || k == key {
		t.Errorf("another device recovered a key with this helper: %v", err)
	}
	var h2 [hal.PUFHelperSize]byte
	k2, _ := hal.EnrollPUF(other.PUF(), bytes.NewReader(bytes.Repeat([]byte{0x42}, 64)), &h2)
	if k2 == key {
		t.Error("two devices enrolled the same key")
	}
	// Helper data alone is not the key, and a flipped helper bit is detected.
	if bytes.Contains(helper[:], key[:8]) {
		t.Error("helper data contains the key")
	}
	for _, bit := range []int{0, 40, 8 * 100, 8*hal.PUFHelperSize - 1} {
		bad := helper
		bad[bit/8] ^= 1 << (bit % 8)
		if k, err := hal.RecoverPUFKey(puf, &bad); !errors.Is(err, hal.ErrPUFHelper) || k == key {
			t.Errorf("helper bit %d flipped: key %x, err %v", bit, k[:4], err)
		}
	}
}
