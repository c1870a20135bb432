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

// MaxBatch is the most entries one AppendBatch takes: a batch is held in
// memory (at most MaxBatch entries of MaxEntrySize bytes and their tree
// hashes, about 300 KB) and stored in one store transaction.
const MaxBatch = 256

// ErrNoCheckpoint is returned by Log.Checkpoint for a size whose record
// holds no checkpoint: the entry was appended in a batch, not as its last.
var ErrNoCheckpoint = errors.New("auditlog: no checkpoint of this size")

// ErrPartialBatch is returned by AppendBatch when its Store is not a
// BatchStore and storing a record after the first failed: the records
// before it are stored, the last of them without a checkpoint. Over a
// store transaction (which the caller then rolls back) nothing is stored.
var ErrPartialBatch = errors.New("auditlog: batch partly stored")

// Append adds e at the end of the log and returns its index and the
// checkpoint of the tree that ends with it, stored with it. When another
// writer of the Store appends first (ErrConflict), Append starts again from
// the new size; after many such losses it returns the ErrConflict. An
// entry with a zero Time gets the log's clock. It is AppendBatch of one
// entry.
func (l *Log) Append(ctx context.Context, e *Entry) (int64, *Checkpoint, error) {
	return l.AppendBatch(ctx, []*Entry{e})
}

// AppendBatch adds entries, in order, at the end of the log and returns
// the index of the first and the checkpoint of the tree that ends with the
// last, the one checkpoint signed: it is stored with the last record, and
// the others have none (an empty Record.Checkpoint). Entries with a zero
// Time get the log's clock (one reading for the batch). The records are
// stored together when the Store is a BatchStore, else one Store.Append at
// a time (see ErrPartialBatch). Conflicts are retried as by Append. A
// batch has 1 to MaxBatch entries.
func (l *Log) AppendBatch(ctx context.Context, entries []*Entry) (first int64, cp *Checkpoint, err error) {
	if len(entries) == 0 || len(entries) > MaxBatch {
		return 0, nil, fmt.Errorf("auditlog: append: batch of %d entries, want 1 to %d", len(entries), MaxBatch)
	}
	data := make([][]byte, len(entries))
	var now time.Time
	for i, e := range entries {
		if e.Time.IsZero() {
			if now.IsZero() {
				now = l.now()
			}
			withTime := *e
			withTime.Time = now
			e = &withTime
		}
		if data[i], err = e.MarshalBinary(); err != nil {
			if len(entries) > 1 {
				err = fmt.Errorf("batch entry %d: %w", i, err)
			}
			return 0, nil, err
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for attempt := 0; ; attempt++ {
		n, cp, err := l.tryAppend(ctx, data)
		if errors.Is(err, ErrConflict) && !errors.Is(err, ErrPartialBatch) && attempt+1 < maxAppendAttempts {
			continue
		}
		if err != nil {
			return 0, nil, fmt.Errorf("auditlog: append: %w", err)
		}
		return n, cp, nil
	}
}

// batchHashes is a tlog.HashReader over the store's stored hashes (those
// below base, memoized) and the hashes a batch adds (from base on).
type batchHashes struct {
	old    tlog.HashReader
	base   int64
	hashes []tlog.Hash
}

func (b *batchHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	var old []int64
	for _, x := range indexes {
		if x < b.base {
			old = append(old, x)
		}
	}
	var oh []tlog.Hash
	if len(old) > 0 {
		var err error
		if oh, err = b.old.ReadHashes(old); err != nil {
			return nil, err
		}
		if len(oh) != len(old) {
			return nil, fmt.Errorf("read %d hashes, want %d", len(oh), len(old))
		}
	}
	for i, x := range indexes {
		if x >= b.base {
			if x-b.base >= int64(len(b.hashes)) {
				return nil, fmt.Errorf("stored hash %d not present", x)
			}
			out[i] = b.hashes[x-b.base]
		} else {
			out[i], oh = oh[0], oh[1:]
		}
	}
	return out, nil
}

func (l *Log) tryAppend(ctx context.Context, data [][]byte) (int64, *Checkpoint, error) {
	n, err := l.store.Size(ctx)
	if err != nil {
		return 0, nil, err
	}
	k := int64(len(data))
	base := tlog.StoredHashIndex(0, n)
	hr := &batchHashes{old: memoHashes(l.hashReader(ctx)), base: base,
		hashes: make([]tlog.Hash, 0, tlog.StoredHashCount(n+k)-base)}
	for i, d := range data {
		h, err := tlog.StoredHashes(n+int64(i), d, hr)
		if err != nil {
			return 0, nil, err
		}
		hr.hashes = append(hr.hashes, h...)
	}
	root, err := tlog.TreeHash(n+k, hr)
	if err != nil {
		return 0, nil, err
	}
	cp, err := signCheckpoint(l.key, l.origin, n+k, root, l.now())
	if err != nil {
		return 0, nil, err
	}
	recs := make([]Record, k)
	for i, d := range data {
		recs[i] = Record{Entry: d, Checkpoint: []byte{}}
	}
	recs[k-1].Checkpoint = cp.Signed
	if err := l.storeRecords(ctx, n, recs, hr.hashes); err != nil {
		return 0, nil, err
	}
	return n, cp, nil
}

// storeRecords stores recs at index with their hashes, in one
// BatchStore.AppendRecords or one Store.Append per record.
func (l *Log) storeRecords(ctx context.Context, index int64, recs []Record, hashes []tlog.Hash) error {
	if bs, ok := l.store.(BatchStore); ok {
		return bs.AppendRecords(ctx, index, recs, hashes)
	}
	for i, r := range recs {
		x := index + int64(i)
		h := int64(tlog.StoredHashCount(x+1) - tlog.StoredHashCount(x))
		if err := l.store.Append(ctx, x, r, hashes[:h]); err != nil {
			if i > 0 {
				return fmt.Errorf("%w: records [%d, %d) stored, record %d: %w", ErrPartialBatch, index, x, x, err)
			}
			return err
		}
		hashes = hashes[h:]
	}
	return nil
}

// Size returns the number of entries in the log.
func (l *Log) Size(ctx context.Context) (int64, error) { return l.store.Size(ctx) }

// Latest returns the checkpoint of the whole log, or an error if it is
// empty. It always exists: every append stores the checkpoint of the tree
// that ends with its last entry, so the log's last record holds one.
func (l *Log) Latest(ctx context.Context) (*Checkpoint, error) {
	n, err := l.store.Size(ctx)
	if err != nil {
		return nil, err
	}
	return l.Checkpoint(ctx, n)
}

// Checkpoint returns the stored checkpoint of the tree of the given size.
// A size that ends inside a batch (Log.AppendBatch) has none: the error
// is then ErrNoCheckpoint.
func (l *Log) Checkpoint(ctx context.Context, size int64) (*Checkpoint, error) {
	if size < 1 {
		return nil, fmt.Errorf("auditlog: no checkpoint of size %d", size)
	}
	recs, err := l.store.ReadRecords(ctx, size-1, size)
	if err != nil {
		return nil, err
	}
	if len(recs[0].Checkpoint) == 0 {
		return nil, fmt.Errorf("%w: size %d ends inside a batch", ErrNoCheckpoint, size)
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
