package sbm

import (
	"bytes"
	"crypto/rand"
	"testing"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/internal/secpkg"
	"github.com/sbm-project/sbm/vmcu"
)

func TestStorageCommitAndLoad(t *testing.T) {
	b, _ := vmcu.LookupBoard("small")
	d := vmcu.NewMemory(b, 1)
	f := d.Flash(hal.PrivSBM)
	var s storage
	if err := s.open(f, d.PUF()); err != nil {
		t.Fatal(err)
	}
	var st state
	s.load(&st)
	if st.seq != 0 || st.provisioned || s.newest != -1 {
		t.Fatal("blank storage is not blank")
	}
	if err := s.commit(&st); err == nil {
		t.Fatal("committed a state without puf helper data")
	}
	st = testState(t, d)
	for i := range 5 {
		st.counter = uint32(i + 10)
		st.setError(0, "")
		if err := s.commit(&st); err != nil {
			t.Fatal(err)
		}
		var got state
		var s2 storage
		s2.open(f, d.PUF())
		s2.load(&got)
		if got.seq != uint32(i+1) || got.counter != uint32(i+10) || s2.newest != i%2 {
			t.Fatalf("commit %d: seq %d counter %d bank %d", i, got.seq, got.counter, s2.newest)
		}
	}
	// Corrupt the newest record: the older one is loaded.
	r := s.banks[s.newest]
	buf := make([]byte, 64)
	f.Read(r.start, buf)
	g := f.Geometry()
	sec := make([]byte, g.Sectors[r.firstSec].Size)
	f.Read(r.start, sec)
	sec[20] ^= 1
	f.Erase(r.start)
	f.Program(r.start, sec)
	var got state
	s.load(&got)
	if got.seq != 4 || got.counter != 13 {
		t.Fatalf("after corruption: seq %d counter %d", got.seq, got.counter)
	}
	// The next commit goes to the corrupted bank, not over the good one.
	got.counter = 99
	if err := s.commit(&got); err != nil {
		t.Fatal(err)
	}
	if got.seq != 5 || s.banks[s.newest] != r {
		t.Fatalf("commit after corruption: seq %d", got.seq)
	}
}

func TestReplayList(t *testing.T) {
	var st state
	const t0 = 1767225600
	id := func(i int) [16]byte { return [16]byte{byte(i), byte(i >> 8), 1} }
	// Same issued second: the list fills, then refuses rather than forgets.
	for i := range ReplayEntries {
		if st.replayed(id(i), t0) {
			t.Fatalf("fresh id %d refused", i)
		}
		st.remember(id(i), t0)
	}
	if !st.replayed(id(0), t0) || !st.replayed(id(ReplayEntries-1), t0) || !st.replayed(id(999), t0) {
		t.Fatal("a listed id, or a new one with the list full, is accepted")
	}
	// A later UPK raises the floor: everything issued before is refused
	// forever, however many installs follow.
	for i := range 1000 {
		if st.replayed(id(1000+i), t0+1+uint64(i)) {
			t.Fatalf("install %d refused", i)
		}
		st.remember(id(1000+i), t0+1+uint64(i))
	}
	for i := range ReplayEntries {
		if !st.replayed(id(i), t0) {
			t.Fatalf("old upk %d accepted after 1000 installs", i)
		}
	}
	if !st.replayed(id(1999), t0+1000) || st.replayed(id(5000), t0+1000) || st.replayLen != 1 {
		t.Fatalf("floor list: %d entries", st.replayLen)
	}
	var back state
	if err := back.decode(st.encode(nil, nil), nil); err != nil || back.replay[0] != st.replay[0] ||
		back.replayLen != st.replayLen || back.replayFloor != st.replayFloor {
		t.Fatalf("round trip: %v", err)
	}
}

// FuzzStateDecode: any body decodes or fails without panicking, and a
// decoded state re-encodes to a body that decodes to the same state.
func FuzzStateDecode(f *testing.F) {
	var st state
	st.counter, st.timeFloor = 3, 1767225600
	st.app = appEntry{present: true, size: 100, versionLen: 3}
	copy(st.app.version[:], "1.0")
	st.setError(18, "application hash mismatch")
	pad := &[32]byte{1, 2, 3}
	f.Add(st.encode(nil, pad))
	f.Add([]byte{1, 0, 0, 2, 1, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		var s state
		if s.decode(b, pad) != nil {
			return
		}
		enc := s.encode(nil, pad)
		var s2 state
		if err := s2.decode(enc, pad); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !bytes.Equal(s2.encode(nil, pad), enc) {
			t.Fatal("encoding not stable")
		}
	})
}

// testState returns a provisioned state with d's PUF enrolled, as
// OpProvision makes it, so that it can be committed.
func testState(t testing.TB, d *vmcu.Device) state {
	t.Helper()
	var st state
	st.provisioned, st.suite = true, secpkg.SuiteEd25519
	st.rootKeyLen = 32
	st.imageCertLen, st.updateCertLen = 1, 1
	if _, err := hal.EnrollPUF(d.PUF(), rand.Reader, &st.helper); err != nil {
		t.Fatal(err)
	}
	return st
}

// FuzzStorageRecord: any bytes in a bank, read as a record by the SBM
// (with a PUF, so the helper data and MAC paths run), are refused or
// loaded without panicking, and a bank's fault is never "loaded" unless a
// state was decoded from it.
func FuzzStorageRecord(f *testing.F) {
	b, _ := vmcu.LookupBoard("small")
	d := vmcu.NewMemory(b, 9)
	fl := d.Flash(hal.PrivSBM)
	var s storage
	if err := s.open(fl, d.PUF()); err != nil {
		f.Fatal(err)
	}
	st := testState(f, d)
	if err := s.commit(&st); err != nil {
		f.Fatal(err)
	}
	good := make([]byte, 1024)
	fl.Read(s.banks[0].start, good)
	f.Add(good)
	f.Add([]byte("SBM2\x01\x00\x00\x00\x03\x00\x00\x00\x09\x00\x00"))
	f.Fuzz(func(t *testing.T, rec []byte) {
		if len(rec) > int(s.banks[0].size) {
			rec = rec[:s.banks[0].size]
		}
		w := d.Clone()
		wf := w.Flash(hal.PrivSBM)
		var ws storage
		ws.open(wf, w.PUF())
		g := wf.Geometry()
		bk := ws.banks[0]
		for i := range bk.numSec {
			wf.Erase(g.Sectors[bk.firstSec+i].Start)
		}
		padded := append([]byte(nil), rec...)
		for len(padded)%int(g.WriteSize) != 0 {
			padded = append(padded, 0xFF)
		}
		if len(padded) > 0 {
			wf.Program(bk.start, padded)
		}
		var got state
		ws.load(&got)
		if ws.newest >= 0 && !got.provisioned {
			t.Fatal("a record without helper data was loaded")
		}
	})
}

// FuzzRetained: any RAM content is read as no retained record or as a
// well-formed one, never a panic, and a record read back re-encodes to
// itself.
func FuzzRetained(f *testing.F) {
	f.Add(make([]byte, retainedSize))
	m := &machine{hw: &hal.Hardware{RAM: &memRAM{b: make([]byte, 64<<10)}}}
	m.ret = retained{flags: flagRejected | flagUpdateReq, code: 7, erases: 3}
	m.ret.detailLen = uint8(copy(m.ret.detail[:], "malformed package"))
	m.writeRetained()
	a, _ := m.retainedAddr()
	rec := make([]byte, retainedSize)
	m.hw.RAM.Read(a, rec)
	f.Add(rec)
	f.Fuzz(func(t *testing.T, p []byte) {
		ram := &memRAM{b: make([]byte, 64<<10)}
		x := &machine{hw: &hal.Hardware{RAM: ram}}
		a, _ := x.retainedAddr()
		copy(ram.b[a:a+retainedSize], p)
		x.readRetained()
		if x.ret.detailLen > maxDetail {
			t.Fatal("detail too long")
		}
		y := &machine{hw: &hal.Hardware{RAM: &memRAM{b: make([]byte, 64<<10)}}, ret: x.ret}
		y.writeRetained()
		y.readRetained()
		want := x.ret
		if want.flags == 0 && want.erases == 0 {
			want = retained{} // an empty record is not written
		}
		if y.ret != want {
			t.Fatalf("retained record does not round-trip: %+v vs %+v", x.ret, y.ret)
		}
	})
}

// memRAM is RAM for tests of the retained record.
type memRAM struct{ b []byte }

func (r *memRAM) Size() uint32 { return uint32(len(r.b)) }
func (r *memRAM) Read(a uint32, p []byte) error {
	copy(p, r.b[a:])
	return nil
}
func (r *memRAM) Write(a uint32, p []byte) error {
	copy(r.b[a:], p)
	return nil
}
