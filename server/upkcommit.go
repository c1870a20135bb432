package server

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/sbm-project/sbm/server/auditlog"
	"github.com/sbm-project/sbm/server/store"
)

// Group commit of the UPKs the update service issues to devices.
//
// Each request makes its device's UPK itself (the ephemeral key, the
// ECDH and the signature run on all cores, in the requests' goroutines),
// then queues it here. One of the waiting requests at a time, the
// leader, stores every UPK queued so far in one transaction
// (store.ActionUPKs) with their upk-issued entries appended as one batch
// of the log (auditlog.Log.AppendBatch: one checkpoint signature, one
// commit and its fsync for the batch). While it commits, new requests
// queue for the next batch, so a batch holds what arrived during the
// previous one: no request waits for a timer, and under load the cost
// of the signature and the fsync is shared by the batch. When the leader
// is done it wakes the others; those whose UPK was stored answer, one of
// the rest leads the next batch.

// upkBatchMax bounds a batch (store.MaxUPKGrants at most).
const upkBatchMax = 64

// upkCommitTimeout bounds a batch's transaction (it does not run under
// any one request's context: a client giving up must not fail the
// others' UPKs).
const upkCommitTimeout = 30 * time.Second

// upkCommitter queues UPK grants and commits them in batches.
type upkCommitter struct {
	mu      sync.Mutex
	cond    sync.Cond
	queue   []*upkRequest
	running bool // a leader is committing a batch
}

// upkRequest is one queued grant and, once done, its outcome.
type upkRequest struct {
	grant store.UPKGrant
	id    []byte // the device ID, for the log entry
	done  bool
	err   error // the batch's error (store or log): nothing stored
}

// commit queues g, waits until a batch holding it is committed (leading
// one if no one else does) and returns the grant with its outcome: the
// UPK stored for the action in Stored, or the grant's refusal in Err; or
// the batch's error.
func (f *fleet) commitUPK(ctx context.Context, g store.UPKGrant, deviceID []byte) (*store.UPKGrant, error) {
	c := &f.upks
	req := &upkRequest{grant: g, id: deviceID}
	c.mu.Lock()
	if c.cond.L == nil {
		c.cond.L = &c.mu
	}
	c.queue = append(c.queue, req)
	for !req.done {
		if c.running {
			c.cond.Wait()
			continue
		}
		c.running = true
		n := min(len(c.queue), upkBatchMax)
		batch := c.queue[:n:n]
		c.queue = append([]*upkRequest(nil), c.queue[n:]...)
		c.mu.Unlock()
		f.commitBatch(ctx, batch)
		c.mu.Lock()
		for _, r := range batch {
			r.done = true
		}
		c.running = false
		c.cond.Broadcast()
	}
	c.mu.Unlock()
	return &req.grant, req.err
}

// commitBatch stores a batch's UPKs and logs them in one transaction. If
// the batch fails, each grant is tried alone, so that one grant's
// problem (a device record the log entry cannot be made of) does not
// refuse the others; the store's own failures then fail each.
func (f *fleet) commitBatch(ctx context.Context, batch []*upkRequest) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), upkCommitTimeout)
	defer cancel()
	err := f.storeUPKs(ctx, batch)
	if err == nil || len(batch) == 1 {
		for _, r := range batch {
			r.err = err
		}
		return
	}
	f.s.log.WarnContext(ctx, "upk batch failed, committing its grants one by one", "grants", len(batch), "err", err)
	for _, r := range batch {
		r.err = f.storeUPKs(ctx, []*upkRequest{r})
	}
}

// storeUPKs is one ActionUPKs of the batch, with its log entries.
func (f *fleet) storeUPKs(ctx context.Context, batch []*upkRequest) error {
	grants := make([]*store.UPKGrant, len(batch))
	ids := make(map[*store.UPKGrant][]byte, len(batch))
	for i, r := range batch {
		grants[i] = &r.grant
		ids[&r.grant] = r.id
	}
	f.s.metrics.upkBatch.Observe(float64(len(batch)))
	return f.s.store.ActionUPKs(ctx, grants, func(ctx context.Context, stored []*store.UPKGrant, ls auditlog.Store) error {
		entries := make([]*auditlog.Entry, len(stored))
		for i, g := range stored {
			oid, err := parseOrderID(g.Device.OrderID)
			if err != nil {
				return err
			}
			digest := sha256.Sum256(g.UPK)
			entries[i] = &auditlog.Entry{Kind: auditlog.UPKIssued, Order: oid, Station: UpdateServiceStation,
				Device: ids[g], Digest: &digest}
		}
		_, _, err := f.s.appendLogBatch(ctx, ls, entries)
		return err
	})
}
