package vmcu

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"

	"github.com/sbm-project/sbm/hal"
)

// pufNoise is the probability that a PUF bit reads inverted at a power-up,
// in 1/65536: 3%.
const pufNoise = 1966

// pufReference is the device's noiseless PUF response, a function of the
// per-chip seed that stands for manufacturing variation.
func (d *Device) pufReference(p *[hal.PUFResponseSize]byte) {
	r := rand.NewChaCha8(d.silicon.pufSeed)
	r.Read(p[:])
}

// noisyPUFLocked reads the PUF as at a power-up: the reference with about
// 3% of bits flipped, independently. d.mu must be held.
func (d *Device) noisyPUFLocked(p *[hal.PUFResponseSize]byte) {
	d.pufReference(p)
	var noise [2 * hal.PUFResponseSize * 8]byte
	d.randReadLocked(noise[:])
	for b := 0; b < hal.PUFResponseSize*8; b++ {
		if binary.LittleEndian.Uint16(noise[2*b:]) < pufNoise {
			p[b/8] ^= 1 << (b % 8)
		}
	}
}

// PUF returns the device's PUF for host-side use (tests). Unlike the view
// given to firmware, which returns the same reading for a whole power-on,
// every call to its Response method is a fresh noisy reading, as if the
// device had been power-cycled.
func (d *Device) PUF() hal.PUF { return hostPUF{d} }

type hostPUF struct{ d *Device }

func (h hostPUF) Response(p []byte) error {
	if len(p) != hal.PUFResponseSize {
		return errPUFSize
	}
	var r [hal.PUFResponseSize]byte
	h.d.mu.Lock()
	h.d.noisyPUFLocked(&r)
	h.d.mu.Unlock()
	copy(p, r[:])
	return nil
}

var errPUFSize = fmt.Errorf("puf response: want a buffer of %d bytes", hal.PUFResponseSize)
