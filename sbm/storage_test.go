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
func testState(t *testing.T, d *vmcu.Device) state {
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
