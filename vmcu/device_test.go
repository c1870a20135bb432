package vmcu

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/sbm-project/sbm/hal"
)

func newDir(t *testing.T, board string) string {
	t.Helper()
	b, err := LookupBoard(board)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "dev")
	if err := Create(dir, b); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestCreateOpenPersist(t *testing.T) {
	dir := newDir(t, "small")
	b, _ := LookupBoard("small")
	if err := Create(dir, b); !errors.Is(err, ErrExists) {
		t.Fatalf("Create over an existing device: %v", err)
	}
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); !errors.Is(err, ErrBusy) {
		t.Fatalf("second Open: %v", err)
	}
	id := d.ID()
	f := d.Flash(hal.PrivSBM)
	if err := f.Program(0x4000, pattern(64, 0xFF)); err != nil {
		t.Fatal(err)
	}
	if err := f.Erase(0x800); err != nil {
		t.Fatal(err)
	}
	if err := hal.BlowLocks(d.Fuses(), hal.LockSecureHidden); err != nil {
		t.Fatal(err)
	}
	if err := hal.AdvanceCounter(d.Fuses(), 2, 5); err != nil {
		t.Fatal(err)
	}
	if err := d.SetBadSector(0x1000, true); err != nil {
		t.Fatal(err)
	}
	d.Close()

	// Power off, power on: everything is still there.
	d, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	p := make([]byte, 64)
	d.Flash(hal.PrivSBM).Read(0x4000, p)
	if !bytes.Equal(p, pattern(64, 0xFF)) {
		t.Error("flash contents lost")
	}
	if d.ID() != id {
		t.Error("ID changed")
	}
	if d.Locks() != hal.LockSecureHidden {
		t.Errorf("locks = %#x", d.Locks())
	}
	if v, _ := hal.ReadCounter(d.Fuses(), 2); v != 5 {
		t.Errorf("counter = %d", v)
	}
	if w := d.Wear(); w[1] != 1 {
		t.Errorf("wear lost: %v", w[:2])
	}
	if err := d.Flash(hal.PrivSBM).Erase(0x1000); !errors.Is(err, hal.ErrFlashFailure) {
		t.Errorf("bad sector lost: %v", err)
	}
	in, err := Inspect(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !in.Running || !in.Locks.SecureHidden || in.Counters[2] != 5 || in.Wear.TotalErases != 1 || len(in.ID) != 32 {
		t.Errorf("Inspect = %+v", in)
	}
}

func TestCreateTwoDevicesDiffer(t *testing.T) {
	a, _ := Inspect(newDir(t, "small"))
	b, _ := Inspect(newDir(t, "small"))
	if a.ID == b.ID {
		t.Error("two devices have the same ID")
	}
}

func TestOpenRejectsDamagedDirectory(t *testing.T) {
	for _, tc := range []struct {
		name string
		harm func(dir string)
	}{
		{"missing flash", func(dir string) { os.Remove(filepath.Join(dir, fileFlash)) }},
		{"short flash", func(dir string) { os.Truncate(filepath.Join(dir, fileFlash), 100) }},
		{"bad board", func(dir string) { os.WriteFile(filepath.Join(dir, fileBoard), []byte("name = 1"), 0o644) }},
		{"bad state", func(dir string) { os.WriteFile(filepath.Join(dir, fileState), []byte("{"), 0o644) }},
		{"bad silicon", func(dir string) { os.WriteFile(filepath.Join(dir, fileSilicon), make([]byte, siliconSize), 0o644) }},
		{"missing lock", func(dir string) { os.Remove(filepath.Join(dir, fileLock)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := newDir(t, "small")
			tc.harm(dir)
			d, err := Open(dir)
			if err == nil {
				d.Close()
				t.Fatal("damaged device opened")
			}
			if !errors.Is(err, ErrNotDevice) {
				t.Errorf("error %v does not wrap ErrNotDevice", err)
			}
		})
	}
	if _, err := Open(t.TempDir()); !errors.Is(err, ErrNotDevice) {
		t.Errorf("empty dir: %v", err)
	}
}

// TestPowerCutPersists checks that a torn write in a device directory is
// on disk exactly as simulated.
func TestPowerCutPersists(t *testing.T) {
	dir := newDir(t, "small")
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.ArmPowerCut(PowerCut{At: 2, Torn: true, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	f := d.Flash(hal.PrivSBM)
	if err := f.Program(0x4000, pattern(256, 0xFF)); err != nil {
		t.Fatal(err)
	}
	var pl *PowerLoss
	if err := f.Program(0x4100, pattern(256, 0xFF)); !errors.As(err, &pl) || pl.Op.Seq != 2 || !pl.Torn {
		t.Fatalf("second program: %v", err)
	}
	mem := append([]byte(nil), d.flash...)
	d.Close()
	disk, _ := os.ReadFile(filepath.Join(dir, fileFlash))
	if !bytes.Equal(mem, disk) {
		t.Fatal("flash on disk differs from the simulated torn state")
	}
	if bytes.Equal(disk[0x4100:0x4200], fill(256, 0xFF)) && bytes.Equal(disk[0x4100:0x4200], pattern(256, 0xFF)) {
		t.Log("torn program left the area fully erased or fully written (allowed)")
	}
	if in, _ := Inspect(dir); in.PowerCut != nil {
		t.Error("fired power cut still armed")
	}
}

// TestPowerCutArmedOffline arms a cut in the directory; it fires in the
// next process that opens the device, counting from the open.
func TestPowerCutArmedOffline(t *testing.T) {
	dir := newDir(t, "small")
	d, _ := Open(dir)
	d.ArmPowerCut(PowerCut{At: 1})
	d.Close()
	if in, _ := Inspect(dir); in.PowerCut == nil || in.PowerCut.At != 1 {
		t.Fatalf("armed cut not stored: %+v", in.PowerCut)
	}
	d, _ = Open(dir)
	defer d.Close()
	var pl *PowerLoss
	if err := d.Flash(hal.PrivSBM).Erase(0); !errors.As(err, &pl) || pl.Torn {
		t.Fatalf("erase: %v", err)
	}
	if d.flash[0] != 0xFF {
		t.Error("clean cut changed the flash")
	}
}

func TestCreateNoLeftovers(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "dev")
	os.Mkdir(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "x"), nil, 0o644)
	b, _ := LookupBoard("small")
	if err := Create(dir, b); !errors.Is(err, ErrExists) {
		t.Fatalf("Create into non-empty dir: %v", err)
	}
	entries, _ := os.ReadDir(parent)
	if len(entries) != 1 {
		t.Errorf("leftovers: %v", entries)
	}
	// An empty directory is fine.
	os.Remove(filepath.Join(dir, "x"))
	if err := Create(dir, b); err != nil {
		t.Fatal(err)
	}
	_ = context.Background
}
