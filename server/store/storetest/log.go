package storetest

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/sbm-project/sbm/server/auditlog"
	"github.com/sbm-project/sbm/server/store"
)

// spoiledBatch returns an order-loaded entry of order id and quota, then
// n-1 unit-spoiled entries of it (counts 1 to n-1).
func spoiledBatch(id string, quota uint64, n int) []*auditlog.Entry {
	t := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	d := [32]byte{1}
	es := []*auditlog.Entry{{Kind: auditlog.OrderLoaded, Time: t, Order: orderID(id), Digest: &d, Quota: quota}}
	for i := 1; i < n; i++ {
		es = append(es, &auditlog.Entry{Kind: auditlog.UnitSpoiled, Time: t, Order: orderID(id), Station: []byte{1}, Count: uint64(i)})
	}
	return es
}

// testLogBatch appends batches to the log in store transactions: through
// Log.AppendBatch, and one AppendRecords of more records than one
// statement takes parameters; the store's export is the same as that of
// the same batches in a MemStore, and audits.
func testLogBatch(t *testing.T, open func() (store.Store, error)) {
	ctx := context.Background()
	s := mustOpen(t, open)

	// The reference: 12,000 entries in batches of auditlog.MaxBatch.
	const big = 12_000
	mem := auditlog.NewMemStore()
	ml, err := auditlog.New(auditlog.Config{Store: mem, Key: testLogKey, Origin: "storetest"})
	if err != nil {
		t.Fatal(err)
	}
	es := spoiledBatch("big", big, big)
	for start := 0; start < len(es); start += auditlog.MaxBatch {
		if _, _, err := ml.AppendBatch(ctx, es[start:min(start+auditlog.MaxBatch, len(es))]); err != nil {
			t.Fatal(err)
		}
	}
	recs, err := mem.ReadRecords(ctx, 0, big)
	if err != nil {
		t.Fatal(err)
	}
	indexes := make([]int64, tlog.StoredHashCount(big))
	for i := range indexes {
		indexes[i] = int64(i)
	}
	hashes, err := mem.ReadHashes(ctx, indexes)
	if err != nil {
		t.Fatal(err)
	}

	// All of it in one AppendRecords (3 × 12,000 record parameters and
	// 2 × 23,99x hash parameters: split into statements).
	err = s.LoadOrder(ctx, newOrder("big", big), nil, func(ctx context.Context, ls auditlog.Store) error {
		bs, ok := ls.(auditlog.BatchStore)
		if !ok {
			t.Fatalf("the store's log (%T) is not an auditlog.BatchStore", ls)
		}
		if err := bs.AppendRecords(ctx, 1, recs, hashes); !errors.Is(err, auditlog.ErrConflict) {
			t.Fatalf("append at 1 of an empty log: %v", err)
		}
		return bs.AppendRecords(ctx, 0, recs, hashes)
	})
	if err != nil {
		t.Fatal(err)
	}
	var want, got bytes.Buffer
	if err := ml.Export(ctx, &want); err != nil {
		t.Fatal(err)
	}
	l, err := auditlog.New(auditlog.Config{Store: s.Log(), Key: testLogKey, Origin: "storetest"})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Export(ctx, &got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatalf("export of the stored batch (%d bytes) differs from the MemStore's (%d bytes)", got.Len(), want.Len())
	}

	// A batch of 3 through Log.AppendBatch in a transaction.
	var first int64
	var cp *auditlog.Checkpoint
	err = s.LoadOrder(ctx, newOrder("small", 5), nil, func(ctx context.Context, ls auditlog.Store) error {
		tl, err := auditlog.New(auditlog.Config{Store: ls, Key: testLogKey, Origin: "storetest"})
		if err != nil {
			return err
		}
		first, cp, err = tl.AppendBatch(ctx, spoiledBatch("small", 5, 3))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if first != big || cp.Size != big+3 {
		t.Fatalf("batch at %d, checkpoint of size %d", first, cp.Size)
	}
	for size := int64(big + 1); size <= big+2; size++ {
		if _, err := l.Checkpoint(ctx, size); !errors.Is(err, auditlog.ErrNoCheckpoint) {
			t.Fatalf("checkpoint of size %d inside the batch: %v", size, err)
		}
	}
	stored, err := s.Log().ReadRecords(ctx, big, big+3)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored[0].Checkpoint) != 0 || len(stored[1].Checkpoint) != 0 || !bytes.Equal(stored[2].Checkpoint, cp.Signed) {
		t.Fatalf("stored checkpoints of %d, %d and %d bytes", len(stored[0].Checkpoint), len(stored[1].Checkpoint), len(stored[2].Checkpoint))
	}
	latest, err := l.Latest(ctx)
	if err != nil || latest.Root != cp.Root {
		t.Fatalf("latest %+v, %v", latest, err)
	}
	if rep := audit(t, s); rep.Size != big+3 || rep.Checkpoints != (big+auditlog.MaxBatch-1)/auditlog.MaxBatch+1 {
		t.Fatalf("audited %d entries and %d checkpoints", rep.Size, rep.Checkpoints)
	}
}
