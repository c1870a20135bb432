// Package vmcu is a virtual microcontroller: flash with real erase/program
// rules, fuses, lock bits, protected regions, a lockable debug port, a UART,
// reset, power cuts (including torn writes), a unique ID and a PUF-like
// secret. It implements the interfaces of package hal, so boot firmware
// written against hal runs on it unchanged.
//
// A device lives in a directory (see Create and Open) so that it survives
// process restarts, or in memory (NewMemory) for fast tests. Firmware runs
// with PowerOn or Run; host tools reach a running device through its debug
// port (DialDebug) and control socket (DialControl). docs/vmcu.md describes
// the design and file formats.
package vmcu

import (
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/sbm-project/sbm/hal"
)

// Files of a device directory.
const (
	fileBoard   = "board.toml"
	fileFlash   = "flash.bin"
	fileFuses   = "fuses.bin"
	fileWear    = "wear.bin"
	fileSilicon = "silicon.bin"
	fileState   = "state.json"
	fileLock    = "lock"
	// DebugSocket is the name of the debug-port socket in a running
	// device's directory.
	DebugSocket = "debug.sock"
	// ControlSocket is the name of the control socket in a running device's
	// directory.
	ControlSocket = "control.sock"
)

var siliconMagic = [8]byte{'S', 'B', 'M', 'V', 'M', 'C', 'U', '1'}

const siliconSize = 8 + hal.IDSize + 32

// Errors returned by Create and Open.
var (
	// ErrExists is returned by Create when the directory already holds a
	// device or other files.
	ErrExists = errors.New("device directory already exists and is not empty")
	// ErrBusy is returned by Open when another process has the device open
	// (it is running).
	ErrBusy = errors.New("device is in use by another process (is it running?)")
	// ErrNotDevice is returned by Open for a directory that is not a
	// well-formed device.
	ErrNotDevice = errors.New("not a device directory")
	// ErrClosed is returned by PowerOn and Run on a closed device.
	ErrClosed = errors.New("device is closed")
)

// Device is a virtual microcontroller. Its methods are safe for concurrent
// use. Close releases it.
type Device struct {
	dir   string
	board *Board

	mu      sync.Mutex
	flash   []byte
	fuses   [hal.FuseWords]uint32
	wear    []uint32
	state   deviceState
	silicon silicon
	ram     []byte

	flashF, fusesF, wearF, lockF *os.File

	counters  Counters
	opSeq     uint64
	cutBase   uint64
	recorder  *Recorder
	entropy   *rand.ChaCha8 // nil: crypto/rand
	sessions  uint64
	sess      *session
	halted    bool
	resumeCh  chan struct{}
	resetReq  chan bool
	console   io.Writer
	uart      *UART
	closeOnce sync.Once
	closed    chan struct{}
}

// silicon holds the per-chip secrets fixed at manufacture.
type silicon struct {
	id      [hal.IDSize]byte
	pufSeed [32]byte
}

func newDevice(b *Board, si silicon) *Device {
	d := &Device{
		board:    b,
		flash:    make([]byte, b.Geometry.Size),
		wear:     make([]uint32, len(b.Geometry.Sectors)),
		silicon:  si,
		ram:      make([]byte, b.RAMSize),
		resumeCh: make(chan struct{}),
		resetReq: make(chan bool, 1),
		console:  io.Discard,
		closed:   make(chan struct{}),
	}
	d.uart = newUART()
	return d
}

// NewMemory returns a blank device that lives in memory only: erased flash,
// unblown fuses, and an ID and PUF derived from seed (different seeds give
// different devices). Its RNG and PUF noise are deterministic too (see
// SeedEntropy).
func NewMemory(b *Board, seed uint64) *Device {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	copy(s[8:], "vmcu memory device")
	r := rand.NewChaCha8(s)
	var si silicon
	r.Read(si.id[:])
	r.Read(si.pufSeed[:])
	d := newDevice(b, si)
	d.eraseAll()
	d.SeedEntropy(seed)
	return d
}

func (d *Device) eraseAll() {
	for i := range d.flash {
		d.flash[i] = d.board.Geometry.Erased
	}
}

// Create makes a new device of board b in dir: blank silicon with erased
// flash, unblown fuses and a fresh random ID and PUF. dir must not exist or
// be an empty directory. The device is built in a temporary directory and
// renamed into place, so a failure leaves nothing behind.
func Create(dir string, b *Board) error {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("%s: %w", dir, ErrExists)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("creating device: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("creating device: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return fmt.Errorf("creating device: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(abs), "."+filepath.Base(abs)+".new-")
	if err != nil {
		return fmt.Errorf("creating device: %w", err)
	}
	defer os.RemoveAll(tmp)
	var si silicon
	crand.Read(si.id[:])
	crand.Read(si.pufSeed[:])
	erased := make([]byte, b.Geometry.Size)
	for i := range erased {
		erased[i] = b.Geometry.Erased
	}
	sil := make([]byte, 0, siliconSize)
	sil = append(sil, siliconMagic[:]...)
	sil = append(sil, si.id[:]...)
	sil = append(sil, si.pufSeed[:]...)
	files := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{fileBoard, b.MarshalTOML(), 0o644},
		{fileFlash, erased, 0o644},
		{fileFuses, make([]byte, 4*hal.FuseWords), 0o644},
		{fileWear, make([]byte, 4*len(b.Geometry.Sectors)), 0o644},
		{fileSilicon, sil, 0o600},
		{fileState, []byte("{}\n"), 0o644},
		{fileLock, nil, 0o644},
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(tmp, f.name), f.data, f.mode); err != nil {
			return fmt.Errorf("creating device: %w", err)
		}
	}
	// os.Rename refuses to replace a directory, even an empty one.
	if err := os.Remove(abs); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s: %w", dir, ErrExists)
	}
	if err := os.Rename(tmp, abs); err != nil {
		if errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
			return fmt.Errorf("%s: %w", dir, ErrExists)
		}
		return fmt.Errorf("creating device: %w", err)
	}
	return nil
}

// Open opens the device in dir for exclusive use by this process. The
// flash, fuses and wear counters are written through to the directory at
// every operation, so the device's state on disk is always the state the
// simulation has reached, including after a simulated power cut.
func Open(dir string) (_ *Device, err error) {
	lockF, err := os.OpenFile(filepath.Join(dir, fileLock), os.O_RDWR, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", dir, ErrNotDevice)
		}
		return nil, fmt.Errorf("opening device: %w", err)
	}
	if err := syscall.Flock(int(lockF.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lockF.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w", dir, ErrBusy)
		}
		return nil, fmt.Errorf("opening device: %w", err)
	}
	defer func() {
		if err != nil {
			lockF.Close()
		}
	}()
	snap, err := readSnapshot(dir)
	if err != nil {
		return nil, err
	}
	d := newDevice(snap.board, snap.silicon)
	d.dir = dir
	d.lockF = lockF
	copy(d.flash, snap.flash)
	d.fuses = snap.fuses
	copy(d.wear, snap.wear)
	d.state = snap.state
	open := func(name string) (*os.File, error) {
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_RDWR, 0)
		if err != nil {
			return nil, fmt.Errorf("opening device: %w", err)
		}
		return f, nil
	}
	if d.flashF, err = open(fileFlash); err != nil {
		return nil, err
	}
	if d.fusesF, err = open(fileFuses); err != nil {
		d.flashF.Close()
		return nil, err
	}
	if d.wearF, err = open(fileWear); err != nil {
		d.flashF.Close()
		d.fusesF.Close()
		return nil, err
	}
	return d, nil
}

// snapshot is a device's persisted state, read without taking the lock.
type snapshot struct {
	board   *Board
	flash   []byte
	fuses   [hal.FuseWords]uint32
	wear    []uint32
	silicon silicon
	state   deviceState
}

func readSnapshot(dir string) (*snapshot, error) {
	notDev := func(format string, a ...any) error {
		return fmt.Errorf("%s: %w: %s", dir, ErrNotDevice, fmt.Sprintf(format, a...))
	}
	bdata, err := os.ReadFile(filepath.Join(dir, fileBoard))
	if err != nil {
		return nil, notDev("%v", err)
	}
	b, err := ParseBoard(bdata)
	if err != nil {
		return nil, notDev("%s: %v", fileBoard, err)
	}
	s := &snapshot{board: b}
	read := func(name string, size int) ([]byte, error) {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, notDev("%v", err)
		}
		if len(data) != size {
			return nil, notDev("%s has %d bytes, want %d", name, len(data), size)
		}
		return data, nil
	}
	if s.flash, err = read(fileFlash, int(b.Geometry.Size)); err != nil {
		return nil, err
	}
	fuses, err := read(fileFuses, 4*hal.FuseWords)
	if err != nil {
		return nil, err
	}
	for i := range s.fuses {
		s.fuses[i] = binary.LittleEndian.Uint32(fuses[4*i:])
	}
	wear, err := read(fileWear, 4*len(b.Geometry.Sectors))
	if err != nil {
		return nil, err
	}
	s.wear = make([]uint32, len(b.Geometry.Sectors))
	for i := range s.wear {
		s.wear[i] = binary.LittleEndian.Uint32(wear[4*i:])
	}
	sil, err := read(fileSilicon, siliconSize)
	if err != nil {
		return nil, err
	}
	if [8]byte(sil[:8]) != siliconMagic {
		return nil, notDev("%s: bad magic", fileSilicon)
	}
	copy(s.silicon.id[:], sil[8:])
	copy(s.silicon.pufSeed[:], sil[8+hal.IDSize:])
	if s.state, err = readState(dir, b); err != nil {
		return nil, notDev("%v", err)
	}
	return s, nil
}

// Close stops any firmware session, the UART and the files of the device.
// The device must not be used afterwards.
func (d *Device) Close() error {
	d.closeOnce.Do(func() {
		close(d.closed)
		d.mu.Lock()
		d.stopLocked(stopSignal{reason: StopCanceled})
		d.mu.Unlock()
		d.uart.Close()
		for _, f := range []*os.File{d.flashF, d.fusesF, d.wearF, d.lockF} {
			if f != nil {
				f.Close()
			}
		}
	})
	return nil
}

// Dir returns the device directory, or "" for a memory device.
func (d *Device) Dir() string { return d.dir }

// Board returns the device's board. The caller must not modify it.
func (d *Device) Board() *Board { return d.board }

// ID returns the unique device ID.
func (d *Device) ID() [hal.IDSize]byte { return d.silicon.id }

// UART returns the device's UART, to attach host endpoints to.
func (d *Device) UART() *UART { return d.uart }

// SetConsole sets where the boot log goes (io.Discard by default).
func (d *Device) SetConsole(w io.Writer) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.console = w
}

// SeedEntropy makes the device's RNG and PUF noise deterministic from seed,
// for reproducible tests. By default they come from crypto/rand.
func (d *Device) SeedEntropy(seed uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	copy(s[8:], "vmcu entropy")
	d.entropy = rand.NewChaCha8(s)
}

// Clone returns an in-memory copy of the device's persistent state (flash,
// fuses, wear, bad sectors, silicon): the same chip, powered off, with no
// armed power cut. Use it to take snapshots in power-cut sweeps.
func (d *Device) Clone() *Device {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := newDevice(d.board, d.silicon)
	copy(c.flash, d.flash)
	c.fuses = d.fuses
	copy(c.wear, d.wear)
	c.state.BadSectors = append([]uint32(nil), d.state.BadSectors...)
	if d.entropy != nil {
		var s [32]byte
		d.entropy.Read(s[:])
		c.entropy = rand.NewChaCha8(s)
	}
	return c
}

// randRead fills p from the device's entropy source. d.mu must be held.
func (d *Device) randReadLocked(p []byte) {
	if d.entropy != nil {
		d.entropy.Read(p)
		return
	}
	crand.Read(p)
}

// persist writes p at off in f (nil for memory devices).
func persist(f *os.File, p []byte, off int64) error {
	if f == nil {
		return nil
	}
	if _, err := f.WriteAt(p, off); err != nil {
		return fmt.Errorf("persisting device state: %w", err)
	}
	return nil
}
