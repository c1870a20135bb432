package vmcu

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"

	"github.com/sbm-project/sbm/hal"
)

// OpKind is the kind of a counted operation.
type OpKind uint8

// Operations that modify the device; these are the points where a power
// cut can happen.
const (
	OpProgram     OpKind = iota + 1 // flash program
	OpErase                         // flash sector erase
	OpFuseProgram                   // fuse word program
)

// String returns "program", "erase" or "fuse-program".
func (k OpKind) String() string {
	switch k {
	case OpProgram:
		return "program"
	case OpErase:
		return "erase"
	case OpFuseProgram:
		return "fuse-program"
	}
	return "op(" + strconv.Itoa(int(k)) + ")"
}

// Op is one recorded operation.
type Op struct {
	// Seq is the operation's number since the device was opened, from 1.
	Seq  uint64
	Kind OpKind
	// Addr is the flash address, or the fuse word index.
	Addr uint32
	// Len is the number of bytes programmed or erased (4 for a fuse word).
	Len uint32
}

// String formats the operation for logs.
func (o Op) String() string {
	return fmt.Sprintf("#%d %s %#x+%d", o.Seq, o.Kind, o.Addr, o.Len)
}

// A Recorder records the operations of a device (see Device.Record).
type Recorder struct {
	mu  sync.Mutex
	ops []Op
}

// Ops returns the operations recorded so far.
func (r *Recorder) Ops() []Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ops)
}

// Len returns the number of operations recorded so far.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ops)
}

// Record starts recording the device's operations into a new Recorder,
// replacing any previous one. A sweep first records a scenario to learn
// its number of operations n, then cuts power at each of 1..n.
func (d *Device) Record() *Recorder {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.recorder = &Recorder{}
	return d.recorder
}

// StopRecording stops recording.
func (d *Device) StopRecording() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.recorder = nil
}

// OpCount returns the number of operations (program, erase, fuse program)
// attempted since the device was opened.
func (d *Device) OpCount() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.opSeq
}

// PowerCut arms a power cut.
type PowerCut struct {
	// At is the operation at which power is cut, counted from 1 from the
	// moment the cut is armed (or the device opened, for a cut stored in
	// the device directory).
	At uint64 `json:"at"`
	// Torn cuts power during the operation instead of just before it: a
	// program leaves an arbitrary subset of its words written, possibly one
	// half-programmed; an erase leaves the sector with arbitrary content; a
	// fuse program blows an arbitrary subset of its bits.
	Torn bool `json:"torn,omitempty"`
	// Seed selects the torn outcome; the same seed gives the same bytes.
	Seed uint64 `json:"seed,omitempty"`
}

// String formats the cut like the command line does.
func (c PowerCut) String() string {
	s := "at " + strconv.FormatUint(c.At, 10)
	if c.Torn {
		s += " torn seed " + strconv.FormatUint(c.Seed, 10)
	}
	return s
}

func (c *PowerCut) rng(seq uint64) *rand.Rand {
	return rand.New(rand.NewPCG(c.Seed, c.At^seq<<32))
}

// PowerLoss is the panic value with which the firmware's hal call is
// stopped when power is cut: the call does not return, and the runner
// (PowerOn) recovers the panic. Firmware must not recover it. Host-side
// views (Device.Flash, the debug port) return it as an error instead.
type PowerLoss struct {
	// Op is the operation at which power was lost.
	Op Op
	// Torn reports whether the operation was torn.
	Torn bool
}

// Error describes the power loss.
func (p *PowerLoss) Error() string {
	how := "before"
	if p.Torn {
		how = "during"
	}
	return fmt.Sprintf("power lost %s operation %s", how, p.Op)
}

// ErrPowerCut is wrapped by errors about arming power cuts.
var ErrPowerCut = errors.New("invalid power cut")

// ArmPowerCut arms c, replacing any armed cut; At counts from now. For a
// device in a directory the cut is also stored there until it fires, so a
// cut armed on a device that is not running fires during its next run.
func (d *Device) ArmPowerCut(c PowerCut) error {
	if c.At == 0 {
		return fmt.Errorf("%w: at must be 1 or more", ErrPowerCut)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cutBase = d.opSeq
	d.state.PowerCut = &c
	return d.writeStateLocked()
}

// DisarmPowerCut disarms any armed power cut.
func (d *Device) DisarmPowerCut() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.state.PowerCut = nil
	return d.writeStateLocked()
}

// ArmedPowerCut returns the armed power cut, if any, with At counted from
// now.
func (d *Device) ArmedPowerCut() (PowerCut, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.state.PowerCut == nil {
		return PowerCut{}, false
	}
	c := *d.state.PowerCut
	c.At -= d.opSeq - d.cutBase
	return c, true
}

// beginOpLocked counts an operation and returns the power cut that fires at
// it, if any.
func (d *Device) beginOpLocked(kind OpKind, addr, n uint32) (*PowerCut, Op) {
	d.opSeq++
	op := Op{Seq: d.opSeq, Kind: kind, Addr: addr, Len: n}
	if d.recorder != nil {
		d.recorder.mu.Lock()
		d.recorder.ops = append(d.recorder.ops, op)
		d.recorder.mu.Unlock()
	}
	c := d.state.PowerCut
	if c == nil || d.opSeq-d.cutBase != c.At {
		return nil, op
	}
	d.state.PowerCut = nil
	d.writeStateLocked() // best effort: the cut fires either way
	return c, op
}

// powerLostLocked stops the current firmware session after a power cut.
func (d *Device) powerLostLocked(c *PowerCut, op Op) error {
	d.counters.PowerCuts++
	pl := &PowerLoss{Op: op, Torn: c.Torn}
	d.stopLocked(stopSignal{reason: StopPowerLoss, loss: pl})
	d.halted = false
	return pl
}

// tearProgram leaves dst (erased) as a program of data cut mid-way.
func tearProgram(r *rand.Rand, dst, data []byte, ws int, erased byte) {
	n := len(data) / ws
	written := make([]bool, n)
	if r.IntN(2) == 0 {
		// Words are programmed in order; k of them completed.
		for i := range r.IntN(n + 1) {
			written[i] = true
		}
	} else {
		for i := range written {
			written[i] = r.IntN(2) == 0
		}
	}
	for i, w := range written {
		if w {
			copy(dst[i*ws:(i+1)*ws], data[i*ws:(i+1)*ws])
		}
	}
	if r.IntN(2) == 0 {
		// One unwritten word half-programmed: some of its bits moved from
		// the erased toward the programmed value.
		var todo []int
		for i, w := range written {
			if !w {
				todo = append(todo, i)
			}
		}
		if len(todo) > 0 {
			i := todo[r.IntN(len(todo))]
			for j := i * ws; j < (i+1)*ws; j++ {
				dst[j] = erased ^ ((erased ^ data[j]) & byte(r.Uint32()))
			}
		}
	}
}

// tearErase leaves dst as a sector erase cut mid-way: each 16-byte chunk
// is erased, unchanged, partly erased or random.
func tearErase(r *rand.Rand, dst []byte, erased byte) {
	for off := 0; off < len(dst); off += 16 {
		chunk := dst[off:min(off+16, len(dst))]
		switch r.IntN(4) {
		case 0:
			for j := range chunk {
				chunk[j] = erased
			}
		case 1:
		case 2:
			for j := range chunk {
				chunk[j] ^= (chunk[j] ^ erased) & byte(r.Uint32())
			}
		case 3:
			for j := range chunk {
				chunk[j] = byte(r.Uint32())
			}
		}
	}
}

// FlipBits flips n distinct random bits of region k, chosen by seed (the
// same seed flips the same bits), as retention errors would. It bypasses
// access control and is not an operation.
func (d *Device) FlipBits(k hal.RegionKind, n int, seed uint64) error {
	r, ok := d.board.Geometry.Region(k)
	if !ok {
		return fmt.Errorf("flip bits: board %s has no %s region", d.board.Name, k)
	}
	if n < 1 || uint64(n) > uint64(r.Size)*8 || n > 1<<20 {
		return fmt.Errorf("flip bits: want 1 to %d bits, got %d", min(uint64(r.Size)*8, 1<<20), n)
	}
	rng := rand.New(rand.NewPCG(seed, uint64(k)))
	d.mu.Lock()
	defer d.mu.Unlock()
	seen := make(map[uint64]bool, n)
	for len(seen) < n {
		bit := rng.Uint64N(uint64(r.Size) * 8)
		if seen[bit] {
			continue
		}
		seen[bit] = true
		addr := r.Start + uint32(bit/8)
		d.flash[addr] ^= 1 << (bit % 8)
		if err := persist(d.flashF, d.flash[addr:addr+1], int64(addr)); err != nil {
			return err
		}
	}
	return nil
}

// SetBadSector marks the sector starting at addr as bad (every program and
// erase of it fails with hal.ErrFlashFailure, reads still work) or, with
// bad false, as good again. The mark is persisted.
func (d *Device) SetBadSector(addr uint32, bad bool) error {
	g := &d.board.Geometry
	if i, ok := g.SectorAt(addr); !ok || g.Sectors[i].Start != addr {
		return fmt.Errorf("bad sector %#x: %w: not the start of a sector", addr, hal.ErrMisaligned)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	i := slices.Index(d.state.BadSectors, addr)
	switch {
	case bad && i < 0:
		d.state.BadSectors = append(d.state.BadSectors, addr)
		slices.Sort(d.state.BadSectors)
	case !bad && i >= 0:
		d.state.BadSectors = slices.Delete(d.state.BadSectors, i, i+1)
	default:
		return nil
	}
	return d.writeStateLocked()
}
