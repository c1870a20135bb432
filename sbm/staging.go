package sbm

import (
	"github.com/sbm-project/sbm/wire"
)

// Staging-slot services. Offsets are relative to the staging slot; every
// flash access stays inside it. Flash can only be programmed in whole
// write-size words whose bytes are all erased, so a partial word is
// buffered (one word) until it is complete, until a write goes to another
// word, or until RequestUpdate; a word that was programmed (in full, or
// flushed partly with the rest left erased-valued) takes no more bytes.

// stagingRange checks that [off, off+n) lies in the staging slot.
func (s *services) stagingRange(off uint32, n int) *wire.Error {
	if s.staging.Size == 0 {
		return wire.Errorf(wire.CodeInternal, "no staging slot")
	}
	if uint64(off)+uint64(n) > uint64(s.staging.Size) {
		return wire.Errorf(wire.CodeOffset, "outside the staging slot")
	}
	return nil
}

// StagingSize returns the capacity of the staging slot.
func (s *services) StagingSize() uint32 { return s.staging.Size }

// maxLazySectors bounds the staging sectors StagingErase can schedule
// lazily; a larger slot is erased at once.
const maxLazySectors = 4096

// StagingErase erases the staging slot and drops any buffered bytes. The
// erase is lazy: each sector is erased just before its first write (reads
// of a sector not yet erased return erased bytes), so a package erases only
// the sectors it occupies.
func (s *services) StagingErase() error {
	if werr := s.stagingRange(0, 0); werr != nil {
		return werr
	}
	s.pendOK, s.pendMask = false, 0
	f := s.m.hw.Flash
	g := f.Geometry()
	first, ok := g.SectorAt(s.staging.Start)
	if !ok || g.Sectors[first].Start != s.staging.Start {
		return wire.Errorf(wire.CodeFlash, "staging slot not sector aligned")
	}
	s.lazyFirst = first
	lazy := true
	for a, i := s.staging.Start, first; a < s.staging.End(); i++ {
		if i >= len(g.Sectors) || g.Sectors[i].Start != a {
			return wire.Errorf(wire.CodeFlash, "staging slot not sector aligned")
		}
		if i-first >= maxLazySectors {
			lazy = false
		}
		a = g.Sectors[i].End()
	}
	if lazy {
		for i := range s.lazy {
			s.lazy[i] = 0xff
		}
		return nil
	}
	for a := s.staging.Start; a < s.staging.End(); {
		i, _ := g.SectorAt(a)
		if werr := s.m.spendStagingErase(s.stagingSectors()); werr != nil {
			return werr
		}
		if err := f.Erase(a); err != nil {
			return wire.Errorf(wire.CodeFlash, "staging erase failed")
		}
		a = g.Sectors[i].End()
	}
	return nil
}

// stagingSectors returns the number of sectors of the staging slot.
func (s *services) stagingSectors() int {
	g := s.m.hw.Flash.Geometry()
	first, ok1 := g.SectorAt(s.staging.Start)
	last, ok2 := g.SectorAt(s.staging.End() - 1)
	if !ok1 || !ok2 {
		return 0
	}
	return last - first + 1
}

// scheduled reports whether staging sector i (absolute index) is waiting
// for its lazy erase.
func (s *services) scheduled(i int) bool {
	j := i - s.lazyFirst
	return j >= 0 && j < maxLazySectors && s.lazy[j/8]&(1<<(j%8)) != 0
}

// eraseScheduled erases the scheduled sectors overlapping [off, off+n).
func (s *services) eraseScheduled(off, n uint32) *wire.Error {
	f := s.m.hw.Flash
	g := f.Geometry()
	for a := s.staging.Start + off; a < s.staging.Start+off+n; {
		i, ok := g.SectorAt(a)
		if !ok {
			return wire.Errorf(wire.CodeFlash, "staging address outside the flash")
		}
		if s.scheduled(i) {
			if werr := s.m.spendStagingErase(s.stagingSectors()); werr != nil {
				return werr
			}
			if err := f.Erase(g.Sectors[i].Start); err != nil {
				return wire.Errorf(wire.CodeFlash, "staging erase failed")
			}
			j := i - s.lazyFirst
			s.lazy[j/8] &^= 1 << (j % 8)
		}
		a = g.Sectors[i].End()
	}
	return nil
}

// maskScheduled overwrites the bytes of p (read at staging offset off) that
// lie in sectors still waiting for their lazy erase with the erased value.
func (s *services) maskScheduled(off uint32, p []byte) {
	g := s.m.hw.Flash.Geometry()
	for a := s.staging.Start + off; a < s.staging.Start+off+uint32(len(p)); {
		i, ok := g.SectorAt(a)
		if !ok {
			return
		}
		end := min(g.Sectors[i].End(), s.staging.Start+off+uint32(len(p)))
		if s.scheduled(i) {
			for k := a; k < end; k++ {
				p[k-s.staging.Start-off] = g.Erased
			}
		}
		a = end
	}
}

// StagingRead reads len(p) bytes at off, including buffered bytes not yet
// programmed.
func (s *services) StagingRead(off uint32, p []byte) error {
	if werr := s.stagingRange(off, len(p)); werr != nil {
		return werr
	}
	if err := s.m.hw.Flash.Read(s.staging.Start+off, p); err != nil {
		return wire.Errorf(wire.CodeFlash, "staging read failed")
	}
	s.maskScheduled(off, p)
	if s.pendOK {
		ws := s.m.hw.Flash.Geometry().WriteSize
		for i := range ws {
			a := s.pendOff + i
			if s.pendMask&(1<<i) != 0 && a >= off && a-off < uint32(len(p)) {
				p[a-off] = s.pend[i]
			}
		}
	}
	return nil
}

// StagingWrite writes p at off. Every target byte must be writable: in the
// buffered word and not yet written, or in a word of flash that is still
// entirely erased. Nothing is written if any byte is not.
func (s *services) StagingWrite(off uint32, p []byte) error {
	if werr := s.stagingRange(off, len(p)); werr != nil {
		return werr
	}
	if len(p) == 0 {
		return nil
	}
	// The whole words touched, in sectors waiting for their lazy erase,
	// are erased first.
	ws := s.m.hw.Flash.Geometry().WriteSize
	wStart := off / ws * ws
	if werr := s.eraseScheduled(wStart, (off+uint32(len(p))+ws-1)/ws*ws-wStart); werr != nil {
		return werr
	}
	if werr := s.checkWritable(off, uint32(len(p))); werr != nil {
		return werr
	}
	f := s.m.hw.Flash
	end := off + uint32(len(p))
	for a := off; a < end; {
		w := a / ws * ws
		if a == w && end-a >= ws && !(s.pendOK && s.pendOff == w) {
			n := (end - a) / ws * ws
			if s.pendOK && s.pendOff > a && s.pendOff < a+n {
				n = s.pendOff - a
			}
			if err := f.Program(s.staging.Start+a, p[a-off:a-off+n]); err != nil {
				return wire.Errorf(wire.CodeFlash, "staging program failed")
			}
			a += n
			continue
		}
		if s.pendOK && s.pendOff != w {
			if werr := s.flush(); werr != nil {
				return werr
			}
		}
		if !s.pendOK {
			s.pendOK, s.pendOff, s.pendMask = true, w, 0
		}
		for ; a < end && a < w+ws; a++ {
			s.pend[a-w] = p[a-off]
			s.pendMask |= 1 << (a - w)
		}
		if s.pendMask == 1<<ws-1 {
			if werr := s.flush(); werr != nil {
				return werr
			}
		}
	}
	return nil
}

// checkWritable checks every byte of [off, off+n) can still be written.
func (s *services) checkWritable(off, n uint32) *wire.Error {
	g := s.m.hw.Flash.Geometry()
	ws := g.WriteSize
	notErased := wire.Errorf(wire.CodeState, "staging bytes already written (erase the staging slot first)")
	var buf [512]byte
	start := off / ws * ws
	end := (off + n + ws - 1) / ws * ws // within the slot: its size is sector aligned
	for a := start; a < end; {
		k := min(end-a, uint32(len(buf)))
		if err := s.m.hw.Flash.Read(s.staging.Start+a, buf[:k]); err != nil {
			return wire.Errorf(wire.CodeFlash, "staging read failed")
		}
		for w := a; w < a+k; w += ws {
			if s.pendOK && w == s.pendOff {
				for i := range ws {
					if w+i >= off && w+i < off+n && s.pendMask&(1<<i) != 0 {
						return notErased
					}
				}
				continue
			}
			for _, b := range buf[w-a : w-a+ws] {
				if b != g.Erased {
					return notErased
				}
			}
		}
		a += k
	}
	return nil
}

// flush programs the buffered partial word, its unwritten bytes left at
// the erased value.
func (s *services) flush() *wire.Error {
	if !s.pendOK {
		return nil
	}
	g := s.m.hw.Flash.Geometry()
	for i := range g.WriteSize {
		if s.pendMask&(1<<i) == 0 {
			s.pend[i] = g.Erased
		}
	}
	s.pendOK, s.pendMask = false, 0
	if err := s.m.hw.Flash.Program(s.staging.Start+s.pendOff, s.pend[:g.WriteSize]); err != nil {
		return wire.Errorf(wire.CodeFlash, "staging program failed")
	}
	return nil
}
