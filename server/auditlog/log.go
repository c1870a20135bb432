package auditlog

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// maxAppendAttempts bounds how often Append retries after ErrConflict.
// Each attempt costs a signature; another writer wins every conflict, so
// the log always progresses, but one writer can lose many in a row.
const maxAppendAttempts = 1000

// Config configures a Log.
type Config struct {
	// Store holds the records and tree hashes.
	Store Store
	// Key is the log key: it signs every checkpoint (P-256 or Ed25519).
	Key crypto.Signer
	// Origin names the log in its checkpoints, 1 to 255 bytes of text,
	// such as "sbm production log <vendor-id>".
	Origin string
	// Now returns the time of new checkpoints; nil means time.Now.
	Now func() time.Time
}

// Log is an append-only audit log over a Store. It keeps no state of its
// own but the configuration, so several Logs (in one process or several)
// may share one Store: appends are serialised by the Store's ErrConflict.
type Log struct {
	store  Store
	key    crypto.Signer
	origin string
	now    func() time.Time
	mu     sync.Mutex // serialises this Log's appends
}

// New returns a Log for c.
func New(c Config) (*Log, error) {
	if c.Store == nil || c.Key == nil {
		return nil, errors.New("auditlog: config without store or key")
	}
	if len(c.Origin) == 0 || len(c.Origin) > maxOriginSize {
		return nil, fmt.Errorf("auditlog: origin of %d bytes, want 1 to %d", len(c.Origin), maxOriginSize)
	}
	if _, err := newLogVerifier(c.Key.Public()); err != nil {
		return nil, err
	}
	now := c.Now
	if now == nil {
		now = time.Now
	}
	return &Log{store: c.Store, key: c.Key, origin: c.Origin, now: now}, nil
}

func (l *Log) hashReader(ctx context.Context) tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		return l.store.ReadHashes(ctx, indexes)
	})
}

// Append adds e at the end of the log and returns its index and the
// checkpoint of the tree that ends with it, stored with it. When another
// writer of the Store appends first (ErrConflict), Append starts again from
// the new size; after many such losses it returns the ErrConflict. An
// entry with a zero Time gets the log's clock.
func (l *Log) Append(ctx context.Context, e *Entry) (int64, *Checkpoint, error) {
	if e.Time.IsZero() {
		withTime := *e
		withTime.Time = l.now()
		e = &withTime
	}
	data, err := e.MarshalBinary()
	if err != nil {
		return 0, nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for attempt := 0; ; attempt++ {
		n, cp, err := l.tryAppend(ctx, data)
		if errors.Is(err, ErrConflict) && attempt+1 < maxAppendAttempts {
			continue
		}
		if err != nil {
			return 0, nil, fmt.Errorf("auditlog: append: %w", err)
		}
		return n, cp, nil
	}
}

func (l *Log) tryAppend(ctx context.Context, data []byte) (int64, *Checkpoint, error) {
	n, err := l.store.Size(ctx)
	if err != nil {
		return 0, nil, err
	}
	hr := memoHashes(l.hashReader(ctx))
	hashes, err := tlog.StoredHashes(n, data, hr)
	if err != nil {
		return 0, nil, err
	}
	first := tlog.StoredHashIndex(0, n)
	root, err := tlog.TreeHash(n+1, tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		var old []int64
		for _, x := range indexes {
			if x < first {
				old = append(old, x)
			}
		}
		oh, err := hr.ReadHashes(old)
		if err != nil {
			return nil, err
		}
		for i, x := range indexes {
			if x >= first {
				if x-first >= int64(len(hashes)) {
					return nil, fmt.Errorf("stored hash %d not present", x)
				}
				out[i] = hashes[x-first]
			} else {
				out[i], oh = oh[0], oh[1:]
			}
		}
		return out, nil
	}))
	if err != nil {
		return 0, nil, err
	}
	cp, err := signCheckpoint(l.key, l.origin, n+1, root, l.now())
	if err != nil {
		return 0, nil, err
	}
	if err := l.store.Append(ctx, n, Record{Entry: data, Checkpoint: cp.Signed}, hashes); err != nil {
		return 0, nil, err
	}
	return n, cp, nil
}

// Size returns the number of entries in the log.
func (l *Log) Size(ctx context.Context) (int64, error) { return l.store.Size(ctx) }

// Latest returns the checkpoint of the whole log, or an error if it is
// empty.
func (l *Log) Latest(ctx context.Context) (*Checkpoint, error) {
	n, err := l.store.Size(ctx)
	if err != nil {
		return nil, err
	}
	return l.Checkpoint(ctx, n)
}

// Checkpoint returns the stored checkpoint of the tree of the given size.
func (l *Log) Checkpoint(ctx context.Context, size int64) (*Checkpoint, error) {
	if size < 1 {
		return nil, fmt.Errorf("auditlog: no checkpoint of size %d", size)
	}
	recs, err := l.store.ReadRecords(ctx, size-1, size)
	if err != nil {
		return nil, err
	}
	return parseCheckpoint(recs[0].Checkpoint)
}

// Entry returns the entry at index i, in its canonical encoding.
func (l *Log) Entry(ctx context.Context, i int64) ([]byte, error) {
	recs, err := l.store.ReadRecords(ctx, i, i+1)
	if err != nil {
		return nil, err
	}
	return recs[0].Entry, nil
}

// InclusionProof returns the proof that entry index is in the tree of the
// given size (RFC 6962 audit path), for VerifyInclusion.
func (l *Log) InclusionProof(ctx context.Context, index, size int64) (tlog.RecordProof, error) {
	if err := l.checkSize(ctx, size); err != nil {
		return nil, err
	}
	if index < 0 || index >= size {
		return nil, fmt.Errorf("auditlog: entry %d not in a tree of size %d", index, size)
	}
	p, err := tlog.ProveRecord(size, index, l.hashReader(ctx))
	if err != nil {
		return nil, fmt.Errorf("auditlog: inclusion proof: %w", err)
	}
	return p, nil
}

// ConsistencyProof returns the proof that the tree of size oldSize is a
// prefix of the tree of size newSize (RFC 6962), for VerifyConsistency.
func (l *Log) ConsistencyProof(ctx context.Context, oldSize, newSize int64) (tlog.TreeProof, error) {
	if err := l.checkSize(ctx, newSize); err != nil {
		return nil, err
	}
	if oldSize < 1 || oldSize > newSize {
		return nil, fmt.Errorf("auditlog: no consistency proof from size %d to %d", oldSize, newSize)
	}
	p, err := tlog.ProveTree(newSize, oldSize, l.hashReader(ctx))
	if err != nil {
		return nil, fmt.Errorf("auditlog: consistency proof: %w", err)
	}
	return p, nil
}

func (l *Log) checkSize(ctx context.Context, size int64) error {
	n, err := l.store.Size(ctx)
	if err != nil {
		return err
	}
	if size < 1 || size > n {
		return fmt.Errorf("auditlog: tree size %d, log has %d entries", size, n)
	}
	return nil
}

// VerifyInclusion checks that entry (a canonical encoding) is at index in
// the tree of the verified checkpoint cp.
func VerifyInclusion(cp *Checkpoint, index int64, entry []byte, proof tlog.RecordProof) error {
	if err := tlog.CheckRecord(proof, cp.Size, cp.Root, index, tlog.RecordHash(entry)); err != nil {
		return fmt.Errorf("auditlog: entry %d not in tree of size %d: %w", index, cp.Size, err)
	}
	return nil
}

// VerifyConsistency checks that the tree of the verified checkpoint older
// is a prefix of that of newer.
func VerifyConsistency(older, newer *Checkpoint, proof tlog.TreeProof) error {
	if err := tlog.CheckTree(proof, newer.Size, newer.Root, older.Size, older.Root); err != nil {
		return fmt.Errorf("auditlog: tree of size %d not a prefix of size %d: %w", older.Size, newer.Size, err)
	}
	return nil
}

// memoHashes remembers what r read: an append reads the same stored hashes
// twice (for the new hashes, then for the root), which a store answers
// once.
func memoHashes(r tlog.HashReader) tlog.HashReader {
	seen := map[int64]tlog.Hash{}
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		var missing []int64
		for _, x := range indexes {
			if _, ok := seen[x]; !ok {
				missing = append(missing, x)
			}
		}
		if len(missing) > 0 {
			got, err := r.ReadHashes(missing)
			if err != nil {
				return nil, err
			}
			if len(got) != len(missing) {
				return nil, fmt.Errorf("read %d hashes, want %d", len(got), len(missing))
			}
			for i, x := range missing {
				seen[x] = got[i]
			}
		}
		out := make([]tlog.Hash, len(indexes))
		for i, x := range indexes {
			out[i] = seen[x]
		}
		return out, nil
	})
}
