package auditlog

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// batchSizes is how the batch log appends production(orderID("a"),
// tamperQuota, tamperEntries): entries 0 to 3 one by one, 4 to 11 as one
// batch, 12 and 13 one by one, 14 to 19 as one batch.
var batchSizes = []int{1, 1, 1, 1, 8, 1, 1, 6}

// batchLog returns a log of tamperEntries entries appended in batchSizes,
// and its export.
func batchLog(t *testing.T) (*Log, []byte) {
	t.Helper()
	l, _ := newTestLog(t, testKey())
	es := production(orderID("a"), tamperQuota, tamperEntries)
	ctx := context.Background()
	next := 0
	for _, k := range batchSizes {
		first, cp, err := l.AppendBatch(ctx, es[next:next+k])
		if err != nil {
			t.Fatal(err)
		}
		if first != int64(next) || cp.Size != int64(next+k) {
			t.Fatalf("batch of %d at %d: first %d, checkpoint of size %d", k, next, first, cp.Size)
		}
		next += k
	}
	return l, export(t, l)
}

// entryAt returns the position in recs of the record of entry i.
func entryAt(t *testing.T, recs [][]byte, i int64) int {
	t.Helper()
	n := int64(0)
	for p, r := range recs {
		if r[1] == recordEntry {
			if n == i {
				return p
			}
			n++
		}
	}
	t.Fatalf("no entry %d", i)
	return -1
}

func TestAppendBatch(t *testing.T) {
	l, file := batchLog(t)
	ctx := context.Background()
	_, recs := records(t, file)
	if want := tamperEntries + len(batchSizes); len(recs) != want {
		t.Fatalf("%d records in the export, want %d", len(recs), want)
	}
	signed := map[int64]bool{}
	size := int64(0)
	for _, k := range batchSizes {
		size += int64(k)
		signed[size] = true
	}
	for size := int64(1); size <= tamperEntries; size++ {
		cp, err := l.Checkpoint(ctx, size)
		switch {
		case signed[size] && (err != nil || cp.Size != size):
			t.Errorf("checkpoint of size %d: %+v, %v", size, cp, err)
		case !signed[size] && !errors.Is(err, ErrNoCheckpoint):
			t.Errorf("checkpoint of size %d inside a batch: %v", size, err)
		}
	}
	latest, err := l.Latest(ctx)
	if err != nil || latest.Size != tamperEntries {
		t.Fatalf("latest %+v, %v", latest, err)
	}
	// An entry inside a batch is proved against the batch's checkpoint.
	batchCP, _ := l.Checkpoint(ctx, 12)
	p, err := l.InclusionProof(ctx, 7, 12)
	if err != nil {
		t.Fatal(err)
	}
	e7, _ := l.Entry(ctx, 7)
	if err := VerifyInclusion(batchCP, 7, e7, p); err != nil {
		t.Fatal(err)
	}
	rep, err := Audit(bytes.NewReader(file), testKey().Public(), map[OrderID]uint64{orderID("a"): tamperQuota})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Size != tamperEntries || rep.Checkpoints != len(batchSizes) || rep.Latest.Root != latest.Root {
		t.Fatalf("report %+v", rep)
	}
	// The same entries appended one by one have the same tree.
	one, _ := goodLog(t)
	oneLatest, _ := one.Latest(ctx)
	if oneLatest.Root != latest.Root {
		t.Fatal("batches and single appends give different trees")
	}

	if _, _, err := l.AppendBatch(ctx, nil); err == nil {
		t.Error("empty batch appended")
	}
	big := make([]*Entry, MaxBatch+1)
	for i := range big {
		big[i] = &Entry{Kind: OrderRevoked, Time: epoch, Order: orderID("x")}
	}
	if _, _, err := l.AppendBatch(ctx, big); err == nil {
		t.Errorf("batch of %d appended", len(big))
	}
	if _, _, err := l.AppendBatch(ctx, []*Entry{big[0], {Kind: OrderLoaded}}); err == nil || !strings.Contains(err.Error(), "batch entry 1") {
		t.Errorf("batch with an invalid entry: %v", err)
	}
	if n, _ := l.Size(ctx); n != tamperEntries {
		t.Errorf("size %d after refused batches", n)
	}
	// Zero times get one reading of the clock.
	zero := []*Entry{{Kind: OrderRevoked, Order: orderID("z")}, {Kind: OrderRevoked, Order: orderID("z")}}
	first, _, err := l.AppendBatch(ctx, zero)
	if err != nil {
		t.Fatal(err)
	}
	b0, _ := l.Entry(ctx, first)
	b1, _ := l.Entry(ctx, first+1)
	if !bytes.Equal(b0, b1) || !zero[0].Time.IsZero() {
		t.Error("zero times of one batch differ, or the caller's entry changed")
	}
}

// TestAuditBatchTampering changes entries inside a batch (entries 4 to 11,
// one checkpoint of size 12): each change is detected, and where the
// indexes do not name the entry, localised to the batch.
func TestAuditBatchTampering(t *testing.T) {
	l, file := batchLog(t)
	header, recs := records(t, file)
	ctx := context.Background()
	entry := func(i int64) []byte { b, _ := l.Entry(ctx, i); return b }
	latest, _ := l.Latest(ctx)
	at := func(i int64) int { return entryAt(t, recs, i) }
	renumber := func(rs [][]byte) [][]byte { return renumbered(t, header, rs) }
	modified := func(i int64) []byte { return modifiedRecord(t, i, entry(i)) }
	forged := mustMarshal(t, &Entry{Kind: UnitSpoiled, Time: epoch, Order: orderID("a"), Station: station1[:], Count: 2})
	del := func(i int64) [][]byte { return slices.Delete(slices.Clone(recs), at(i), at(i)+1) }
	ins := func(before int64, claim int64) [][]byte {
		return slices.Insert(slices.Clone(recs), at(before), entryRecord(claim, forged))
	}
	last := len(recs) - 1 // the checkpoint of size 20

	for _, tc := range []struct {
		name      string
		file      []byte
		witnessed [][]byte
		want      error
		index     int64
		detail    string // in the error, if set
	}{
		{"modify in batch", join(header, slices.Replace(slices.Clone(recs), at(7), at(7)+1, modified(7))), nil, ErrModified, 4, "4 to 11"},
		{"modify first of batch", join(header, slices.Replace(slices.Clone(recs), at(4), at(4)+1, modified(4))), nil, ErrModified, 4, "4 to 11"},
		{"modify last of batch", join(header, slices.Replace(slices.Clone(recs), at(11), at(11)+1, modified(11))), nil, ErrModified, 4, "4 to 11"},
		{"modify in last batch", join(header, slices.Replace(slices.Clone(recs), at(16), at(16)+1, modified(16))), nil, ErrModified, 14, "14 to 19"},
		{"delete in batch", join(header, del(7)), nil, ErrDeleted, 7, "entry 7 missing"},
		{"delete in batch, renumbered", join(header, renumber(del(7))), nil, ErrDeleted, 4, "4 to 11"},
		{"insert in batch", join(header, ins(8, 8)), nil, ErrInserted, 8, ""},
		{"insert duplicate in batch", join(header, ins(7, 7)), nil, ErrInserted, 7, ""},
		{"insert duplicate after in batch", join(header, ins(8, 7)), nil, ErrInserted, 8, ""},
		{"insert in batch, renumbered", join(header, renumber(ins(8, 8))), nil, ErrInserted, 4, "4 to 11"},
		{"reorder in batch", join(header, swap(recs, at(6), at(9))), nil, ErrReordered, 6, ""},
		{"reorder in batch, renumbered", join(header, renumber(swap(recs, at(6), at(9)))), nil, ErrModified, 4, "4 to 11"},
		// Deleting inside the last batch, renumbered, leaves n < 20
		// entries before the checkpoint of size 20: a cut log.
		{"delete in last batch, renumbered", join(header, renumber(del(16))), nil, ErrTruncated, 19, "entries 14 to 18"},
		// Cut inside the last batch: its checkpoint goes with its last
		// entry; unsigned entries without a witness, truncated with one.
		{"truncate inside a batch", join(header, recs[:at(17)]), nil, ErrInserted, 14, "14 to 16"},
		{"truncate inside a batch, witnessed", join(header, recs[:at(17)]), [][]byte{latest.Signed}, ErrTruncated, 17, "entries 14 to 16"},
		{"last checkpoint dropped, witnessed", join(header, recs[:last]), [][]byte{latest.Signed}, ErrMalformed, 19, "not followed by its checkpoint"},
		{"last checkpoint moved", join(header, swap(recs, last-1, last)), nil, ErrMalformed, 19, "not followed by its checkpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &Auditor{Key: testKey().Public(), Orders: map[OrderID]uint64{orderID("a"): tamperQuota}, Witnessed: tc.witnessed}
			_, err := a.Audit(bytes.NewReader(tc.file))
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			var ae *AuditError
			if !errors.As(err, &ae) {
				t.Fatalf("%v is not an *AuditError", err)
			}
			if ae.Index != tc.index {
				t.Errorf("%v: index %d, want %d", err, ae.Index, tc.index)
			}
			if !strings.Contains(ae.Detail, tc.detail) {
				t.Errorf("%v: detail without %q", err, tc.detail)
			}
			t.Log(err)
		})
	}
}

// TestAuditSparseCheckpoints stores records without a checkpoint (empty
// and nil) in the middle of a log through the Store: the export skips
// them and the audit accepts it.
func TestAuditSparseCheckpoints(t *testing.T) {
	l, st := newTestLog(t, testKey())
	ctx := context.Background()
	es := production(orderID("s"), 10, 6)
	appendAll(t, l, es[:2])
	for i, e := range es[2:4] {
		data := mustMarshal(t, e)
		n := int64(2 + i)
		hashes, err := tlog.StoredHashes(n, data, l.hashReader(ctx))
		if err != nil {
			t.Fatal(err)
		}
		var cp []byte // nil, then empty
		if i == 1 {
			cp = []byte{}
		}
		if err := st.Append(ctx, n, Record{Entry: data, Checkpoint: cp}, hashes); err != nil {
			t.Fatal(err)
		}
	}
	appendAll2 := func(es []*Entry) {
		for _, e := range es {
			if _, _, err := l.Append(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
	}
	appendAll2(es[4:])
	file := export(t, l)
	if _, recs := records(t, file); len(recs) != 6+4 {
		t.Fatalf("%d records", len(recs))
	}
	rep, err := Audit(bytes.NewReader(file), testKey().Public(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Size != 6 || rep.Checkpoints != 4 {
		t.Fatalf("report %+v", rep)
	}
	for _, size := range []int64{3, 4} {
		if _, err := l.Checkpoint(ctx, size); !errors.Is(err, ErrNoCheckpoint) {
			t.Errorf("size %d: %v", size, err)
		}
	}
}

// interloper is a BatchStore over a MemStore that, before the first
// AppendRecords, lets another Log append an entry: that AppendRecords
// conflicts.
type interloper struct {
	*MemStore
	once  sync.Once
	other *Log
	t     *testing.T
}

func (s *interloper) AppendRecords(ctx context.Context, index int64, recs []Record, hashes []tlog.Hash) error {
	s.once.Do(func() {
		if _, _, err := s.other.Append(ctx, &Entry{Kind: OrderLoaded, Time: epoch, Order: orderID("c"), Digest: digest("o"), Quota: 100}); err != nil {
			s.t.Error(err)
		}
	})
	return s.MemStore.AppendRecords(ctx, index, recs, hashes)
}

// plainStore hides MemStore's AppendRecords: AppendBatch stores record by
// record.
type plainStore struct{ Store }

// failSecond fails the second Store.Append with a conflict.
type failSecond struct {
	Store
	n int
}

func (s *failSecond) Append(ctx context.Context, index int64, rec Record, hashes []tlog.Hash) error {
	if s.n++; s.n == 2 {
		return ErrConflict
	}
	return s.Store.Append(ctx, index, rec, hashes)
}

func TestAppendBatchConflict(t *testing.T) {
	ctx := context.Background()
	mem := NewMemStore()
	other, err := New(Config{Store: mem, Key: testKey(), Origin: testOrigin})
	if err != nil {
		t.Fatal(err)
	}
	l, err := New(Config{Store: &interloper{MemStore: mem, other: other, t: t}, Key: testKey(), Origin: testOrigin})
	if err != nil {
		t.Fatal(err)
	}
	spoil := func(n int) []*Entry {
		var es []*Entry
		for i := range n {
			es = append(es, &Entry{Kind: UnitSpoiled, Time: epoch, Order: orderID("c"), Station: station1[:], Count: uint64(i + 1)})
		}
		return es
	}
	first, cp, err := l.AppendBatch(ctx, spoil(3))
	if err != nil {
		t.Fatal(err)
	}
	if first != 1 || cp.Size != 4 {
		t.Fatalf("after the conflict: first %d, checkpoint of size %d", first, cp.Size)
	}
	if _, err := Audit(bytes.NewReader(export(t, l)), testKey().Public(), nil); err != nil {
		t.Fatal(err)
	}

	// Two Logs over one MemStore race batches: every batch gets its own
	// indexes, and the tree audits (the counts do not: every batch counts
	// from 1).
	shared := NewMemStore()
	var logs [2]*Log
	for i := range logs {
		if logs[i], err = New(Config{Store: shared, Key: testKey(), Origin: testOrigin}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := logs[0].Append(ctx, &Entry{Kind: OrderLoaded, Time: epoch, Order: orderID("c"), Digest: digest("o"), Quota: 10000}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	owner := map[int64]int{}
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				k := 1 + (w+i)%5
				first, cp, err := logs[w%2].AppendBatch(ctx, spoil(k))
				if err != nil {
					t.Error(err)
					return
				}
				if cp.Size != first+int64(k) {
					t.Errorf("batch of %d at %d: checkpoint of size %d", k, first, cp.Size)
				}
				mu.Lock()
				for x := first; x < first+int64(k); x++ {
					if _, ok := owner[x]; ok {
						t.Errorf("index %d twice", x)
					}
					owner[x] = w
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	n, _ := shared.Size(ctx)
	if n != int64(len(owner))+1 {
		t.Fatalf("size %d, %d entries appended", n, len(owner)+1)
	}
	if _, err := Audit(bytes.NewReader(export(t, logs[1])), testKey().Public(), nil); !errors.Is(err, ErrCount) {
		t.Fatalf("got %v", err)
	}

	// A Store without AppendRecords gets the records one by one: the same
	// log; a failure after the first record is not retried.
	a, _ := newTestLog(t, testKey())
	b, err := New(Config{Store: plainStore{NewMemStore()}, Key: testKey(), Origin: testOrigin, Now: stepClock()})
	if err != nil {
		t.Fatal(err)
	}
	for _, lg := range []*Log{a, b} {
		if _, _, err := lg.AppendBatch(ctx, spoil(3)); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(export(t, a), export(t, b)) {
		t.Error("a batch stored record by record differs")
	}
	fs := &failSecond{Store: plainStore{NewMemStore()}}
	c, _ := New(Config{Store: fs, Key: testKey(), Origin: testOrigin})
	if _, _, err := c.AppendBatch(ctx, spoil(3)); !errors.Is(err, ErrPartialBatch) || fs.n != 2 {
		t.Fatalf("partial batch: %v after %d appends", err, fs.n)
	}
}
