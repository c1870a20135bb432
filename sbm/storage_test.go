package sbm

import (
	"bytes"
	"testing"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/vmcu"
)

func TestStorageCommitAndLoad(t *testing.T) {
	b, _ := vmcu.LookupBoard("small")
	d := vmcu.NewMemory(b, 1)
	f := d.Flash(hal.PrivSBM)
	var s storage
	if err := s.open(f); err != nil {
		t.Fatal(err)
	}
	var st state
	s.load(&st)
	if st.seq != 0 || st.provisioned || s.newest != -1 {
		t.Fatal("blank storage is not blank")
	}
	for i := range 5 {
		st.counter = uint32(i + 10)
		st.setError(0, "")
		if err := s.commit(&st); err != nil {
			t.Fatal(err)
		}
		var got state
		var s2 storage
		s2.open(f)
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
	for i := range ReplayEntries + 5 {
		st.remember([16]byte{byte(i), 1})
	}
	if int(st.replayLen) != ReplayEntries || st.replayed([16]byte{0, 1}) || st.replayed([16]byte{4, 1}) ||
		!st.replayed([16]byte{5, 1}) || !st.replayed([16]byte{ReplayEntries + 4, 1}) {
		t.Fatal("replay list does not keep the newest IDs")
	}
	st.provisioned = false
	var back state
	if err := back.decode(st.encode(nil)); err != nil || back.replay != st.replay || back.replayLen != st.replayLen {
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
	f.Add(st.encode(nil))
	f.Add([]byte{1, 0, 0, 2, 1, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		var s state
		if s.decode(b) != nil {
			return
		}
		enc := s.encode(nil)
		var s2 state
		if err := s2.decode(enc); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !bytes.Equal(s2.encode(nil), enc) {
			t.Fatal("encoding not stable")
		}
	})
}
