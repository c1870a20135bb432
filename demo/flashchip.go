package demo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/sbm"
	"github.com/sbm-project/sbm/sim"
	"github.com/sbm-project/sbm/vmcu"
)

// attackerCode is what the attacker wants to run: a WebAssembly module of
// their own (empty but for a custom section named "attacker").
var attackerCode = []byte("\x00asm\x01\x00\x00\x00\x00\x09\x08attacker")

// copyFlash is the attacker's first visit, while 1.0.0 runs: a test clip
// on the external flash chip copies it whole. The section flashChip tells
// of it and uses the copy.
func (s *story) copyFlash(ctx context.Context) error {
	img, err := s.device.Device.DumpFlash()
	if errors.Is(err, vmcu.ErrFlashUnreachable) {
		return nil // internal flash: flashChip says so
	}
	s.v1Flash, s.v1Step = img, s.n.step
	return err
}

// flashChip is the attacker's second visit, with 2.0.0 installed: they
// write back the copy of 1.0.0, then a forged signature table; the SBM
// refuses both, and the genuine chip content boots 2.0.0 again.
func (s *story) flashChip(ctx context.Context) error {
	s.n.section("Someone with the flash chip")
	d := s.device.Device
	if s.v1Flash == nil {
		_, err := d.DumpFlash()
		s.n.refused("on board %s the flash is inside the MCU: %v", d.Board().Name, err)
		return nil
	}
	s.n.say("the flash of board %s is a separate chip: a test clip on its pins reads and writes it,", d.Board().Name)
	s.n.say("bypassing the MCU, its debug port and its lock bits; the fuses, inside the MCU, stay out of reach")
	s.n.say("while 1.0.0 ran (step %d), someone copied all %d MiB of it that way", s.v1Step, len(s.v1Flash)>>20)
	log := &bootLog{lines: make(chan string, 64)}
	d.SetConsole(log)
	defer d.SetConsole(io.Discard)

	s.n.say("")
	s.n.say("attack: power off, write the 1.0.0 copy back, power on (a rollback that needs no update)")
	genuine, lines, err := s.reflash(ctx, log, s.v1Flash)
	if err != nil {
		return err
	}
	if findLine(lines, "sbm: recovery: counter 1 below the anti-rollback fuse 2") == "" || findLine(lines, "sbm: verified application") != "" {
		return fmt.Errorf("%w: the restored 1.0.0 was not refused by the anti-rollback fuse", ErrStep)
	}
	s.n.refused("1.0.0's counter is below the anti-rollback fuse; the application does not start")

	s.n.say("")
	s.n.say("attack: their own code in the primary slot, and its hash written into the signature table")
	s.n.say("of the newest secure-storage record, whose SHA-256 they recompute")
	forged, err := s.forgeFlash(genuine)
	if err != nil {
		return err
	}
	if _, lines, err = s.reflash(ctx, log, forged); err != nil {
		return err
	}
	if !strings.Contains(findLine(lines, "sbm: secure storage: bank"), "not authentic") || findLine(lines, "sbm: verified application") != "" {
		return fmt.Errorf("%w: the forged record was not refused", ErrStep)
	}
	s.n.refused("the record's MAC, keyed from the PUF, does not verify; their code does not start")
	if strings.Contains(findLine(lines, "sbm: recovery: "), "anti-rollback fuse") {
		s.n.say("(it fell back to the other bank: an older, authentic record from before 2.0.0 was installed,")
		s.n.say("whose 1.0.0 the fuse refuses)")
	}

	s.n.say("")
	s.n.say("power off, write back the chip as it was before these attacks, power on:")
	if _, lines, err = s.reflash(ctx, log, genuine); err != nil {
		return err
	}
	var after []string
	if _, err := s.console.until(ctx, bootTimeout, func(l string) bool {
		after = append(after, l)
		return l == "ready"
	}); err != nil {
		return err
	}
	if findLine(lines, "sbm: verified application 2.0.0") == "" || findLine(after, "application 2.0.0") == "" {
		return fmt.Errorf("%w: the device did not come back running 2.0.0", ErrStep)
	}
	s.n.ok("2.0.0 boots verified again")
	return nil
}

// forgeFlash returns a copy of the flash image img with attackerCode in the
// primary slot and its hash in the newest secure-storage record (forgeTable),
// after checking that an integrity-only reader accepts the record.
func (s *story) forgeFlash(img []byte) ([]byte, error) {
	g := s.device.Device.Board().Geometry
	forged := bytes.Clone(img)
	primary, _ := g.Region(hal.RegionPrimary)
	slot := forged[primary.Start:primary.End()]
	for i := range slot {
		slot[i] = g.Erased
	}
	copy(slot, attackerCode)
	digest := sha256.Sum256(attackerCode)
	if _, err := forgeTable(forged, g, uint32(len(attackerCode)), digest); err != nil {
		return nil, fmt.Errorf("%w: forging the table: %v", ErrStep, err)
	}
	st, err := sbm.ReadState(&imageFlash{g, forged}, nil)
	if err != nil {
		return nil, err
	}
	if st.App == nil || st.App.Digest != digest {
		return nil, fmt.Errorf("%w: the forged record does not pass the integrity check", ErrStep)
	}
	s.n.say("an integrity check alone (the SBM's, before records carried a MAC) would accept it:")
	s.n.say("application %s, %d bytes, sha256 %x… (theirs)", st.App.Version, st.App.Size, digest[:8])
	return forged, nil
}

// reflash powers the device off, writes img over its whole flash chip and
// powers it on again with the same firmware (and so the same compiled
// application; the UART console stays connected). It returns the flash as
// it was before and the boot log up to the launch or recovery.
func (s *story) reflash(ctx context.Context, log *bootLog, img []byte) (old []byte, lines []string, err error) {
	if err := s.device.PowerOff(); err != nil {
		return nil, nil, err
	}
	log.drain()
	d := s.device.Device
	if old, err = d.DumpFlash(); err == nil {
		err = d.RestoreFlash(img)
	}
	s.device = sim.StartDevice(ctx, d, s.fw)
	if err != nil {
		return nil, nil, err
	}
	lines, err = log.untilBooted(ctx, s.n)
	return old, lines, err
}

// bootLog collects the lines of the device's boot log (hal.Hardware.Log).
// It never blocks the firmware: lines nobody waits for are dropped.
type bootLog struct {
	mu    sync.Mutex
	part  []byte
	lines chan string
}

func (l *bootLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.part = append(l.part, p...)
	for {
		i := bytes.IndexByte(l.part, '\n')
		if i < 0 {
			return len(p), nil
		}
		select {
		case l.lines <- string(l.part[:i]):
		default:
		}
		l.part = l.part[i+1:]
	}
}

// drain discards the lines not read yet.
func (l *bootLog) drain() {
	for len(l.lines) > 0 {
		<-l.lines
	}
}

// untilBooted shows the boot log, but for its banner, until the SBM
// launches the application or waits in recovery, and returns its lines.
func (l *bootLog) untilBooted(ctx context.Context, n *narrator) ([]string, error) {
	var got []string
	t := time.NewTimer(time.Minute)
	defer t.Stop()
	for {
		select {
		case line := <-l.lines:
			if !strings.HasPrefix(line, "sbm: SBM ") { // the banner
				n.say("boot log: %s", line)
			}
			got = append(got, line)
			if strings.HasPrefix(line, "sbm: verified application") || line == "sbm: recovery: waiting for a programmer on the UART" {
				return got, nil
			}
		case <-t.C:
			return got, fmt.Errorf("%w: the SBM did not finish booting within a minute", ErrStep)
		case <-ctx.Done():
			return got, ctx.Err()
		}
	}
}

// forgeTable does to the flash image img, laid out as g, what someone
// without the device's PUF key can do to its secure storage: it rewrites
// the signature-table entry (tag 13) of the newest well-formed record to
// an application of size bytes with SHA-256 digest, and recomputes the
// record's SHA-256 check. The record's MAC is left as it was, no longer
// matching. forgeTable returns the record's sequence number.
func forgeTable(img []byte, g hal.Geometry, size uint32, digest [32]byte) (uint32, error) {
	r, ok := g.Region(hal.RegionSecure)
	first, ok1 := g.SectorAt(r.Start)
	last, ok2 := g.SectorAt(r.End() - 1)
	if !ok || !ok1 || !ok2 || uint32(len(img)) < r.End() {
		return 0, errors.New("no secure region")
	}
	var rec []byte // the newest record: header ‖ body ‖ check
	var seq uint32
	for _, sec := range []int{first, first + (last-first+1)/2} {
		b := img[g.Sectors[sec].Start:]
		if len(b) < 12 || string(b[:4]) != "SBM2" {
			continue
		}
		n := binary.LittleEndian.Uint32(b[8:12])
		if n > sbm.MaxRecordSize || int(12+n+32) > len(b) || sha256.Sum256(b[:12+n]) != [32]byte(b[12+n:12+n+32]) {
			continue
		}
		if s := binary.LittleEndian.Uint32(b[4:8]); rec == nil || s > seq {
			rec, seq = b[:12+n+32], s
		}
	}
	if rec == nil {
		return 0, errors.New("no well-formed secure-storage record")
	}
	body := rec[12 : len(rec)-32]
	for len(body) >= 3 {
		tag, n := body[0], int(binary.LittleEndian.Uint16(body[1:3]))
		if len(body) < 3+n {
			break
		}
		if v := body[3 : 3+n]; tag == 13 && n >= 72 {
			binary.LittleEndian.PutUint32(v[0:4], size)
			copy(v[4:36], digest[:])
			sum := sha256.Sum256(rec[:len(rec)-32])
			copy(rec[len(rec)-32:], sum[:])
			return seq, nil
		}
		body = body[3+n:]
	}
	return 0, errors.New("the newest record has no signature-table entry")
}

// imageFlash is a flash image seen as a read-only hal.Flash.
type imageFlash struct {
	g    hal.Geometry
	data []byte
}

func (f *imageFlash) Geometry() hal.Geometry       { return f.g }
func (f *imageFlash) Privilege() hal.Privilege     { return hal.PrivSBM }
func (f *imageFlash) Program(uint32, []byte) error { return hal.ErrWriteProtected }
func (f *imageFlash) Erase(uint32) error           { return hal.ErrWriteProtected }

func (f *imageFlash) Read(addr uint32, p []byte) error {
	if uint64(addr)+uint64(len(p)) > uint64(len(f.data)) {
		return hal.ErrOutOfRange
	}
	copy(p, f.data[addr:])
	return nil
}
