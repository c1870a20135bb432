package vmcu

import (
	"bytes"
	"errors"
	"testing"

	"github.com/sbm-project/sbm/hal"
)

// TestMapFlash: Map returns the flash array in place, with the read checks.
func TestMapFlash(t *testing.T) {
	b, err := LookupBoard("small")
	if err != nil {
		t.Fatal(err)
	}
	d := NewMemory(b, 1)
	defer d.Close()
	f := d.Flash(hal.PrivSBM)
	m, ok := f.(hal.Mapper)
	if !ok {
		t.Fatal("flash view does not implement hal.Mapper")
	}
	p, _ := b.Geometry.Region(hal.RegionPrimary)
	data := bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7, 8}, 4)
	if err := f.Program(p.Start, data); err != nil {
		t.Fatal(err)
	}
	v, err := m.Map(p.Start, uint32(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(v, data) || cap(v) != len(data) {
		t.Fatalf("mapped %x (cap %d), want %x", v, cap(v), data)
	}
	if err := f.Erase(p.Start); err != nil {
		t.Fatal(err)
	}
	if v[0] != b.Geometry.Erased {
		t.Fatal("mapped view is a copy, not the flash array")
	}
	if _, err := m.Map(b.Geometry.Size-4, 8); !errors.Is(err, hal.ErrOutOfRange) {
		t.Fatalf("map past the end: %v", err)
	}
	if err := hal.BlowLocks(d.Fuses(), hal.LockSecureHidden); err != nil {
		t.Fatal(err)
	}
	sec, _ := b.Geometry.Region(hal.RegionSecure)
	am := d.Flash(hal.PrivApp).(hal.Mapper)
	if _, err := am.Map(sec.Start, 16); !errors.Is(err, hal.ErrFault) {
		t.Fatalf("app map of secure storage: %v", err)
	}
}
