package auditlog

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/mod/sumdb/tlog"
)

// ErrConflict is returned by Store.Append when the index is not the
// store's current size: another writer appended first. Nothing was stored.
var ErrConflict = errors.New("auditlog: append conflict")

// Record is what the log stores at one index: the entry and, if the entry
// was the last of its append, the checkpoint signed for the tree that ends
// with it.
type Record struct {
	// Entry is the entry's canonical encoding.
	Entry []byte
	// Checkpoint is the signed checkpoint of size index+1, or empty (zero
	// length) when the entry was appended in a batch (Log.AppendBatch)
	// and is not its last: no checkpoint of this size was signed. The last
	// record of the log always holds one.
	Checkpoint []byte
}

// Store is the log's storage. Implementations must be safe for concurrent
// use; records and hashes, once appended, never change.
type Store interface {
	// Size returns the number of records.
	Size(ctx context.Context) (int64, error)
	// Append stores, atomically, record number index and the tree hashes
	// it adds (tlog.StoredHashes), which go at the stored-hash indexes from
	// tlog.StoredHashIndex(0, index) on. It returns ErrConflict, storing
	// nothing, unless index equals the current size.
	Append(ctx context.Context, index int64, rec Record, hashes []tlog.Hash) error
	// ReadRecords returns the records with indexes in [start, end).
	ReadRecords(ctx context.Context, start, end int64) ([]Record, error)
	// ReadHashes returns the stored hashes at the given stored-hash indexes.
	ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error)
}

// BatchStore is a Store that also stores several records at once, which
// Log.AppendBatch uses when its Store has it.
type BatchStore interface {
	Store
	// AppendRecords stores, atomically, the records numbered index,
	// index+1, … and the tree hashes they add, back to back (the
	// tlog.StoredHashes of each in order), which go at the stored-hash
	// indexes from tlog.StoredHashIndex(0, index) on. It returns
	// ErrConflict, storing nothing, unless index equals the current size.
	AppendRecords(ctx context.Context, index int64, recs []Record, hashes []tlog.Hash) error
}

// checkBatch checks that recs are not empty and hashes fit them.
func checkBatch(index int64, recs []Record, hashes []tlog.Hash) error {
	if len(recs) == 0 {
		return fmt.Errorf("auditlog: append %d: no records", index)
	}
	end := index + int64(len(recs))
	if want := tlog.StoredHashCount(end) - tlog.StoredHashCount(index); int64(len(hashes)) != want {
		return fmt.Errorf("auditlog: append [%d, %d): %d hashes do not fit the tree (want %d)", index, end, len(hashes), want)
	}
	return nil
}

// MemStore is a Store and BatchStore in memory, for tests.
type MemStore struct {
	mu      sync.Mutex
	records []Record
	hashes  []tlog.Hash
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore { return new(MemStore) }

// Size implements Store.
func (m *MemStore) Size(ctx context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return int64(len(m.records)), ctx.Err()
}

// Append implements Store.
func (m *MemStore) Append(ctx context.Context, index int64, rec Record, hashes []tlog.Hash) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.appendLocked(index, []Record{rec}, hashes)
}

// AppendRecords implements BatchStore.
func (m *MemStore) AppendRecords(ctx context.Context, index int64, recs []Record, hashes []tlog.Hash) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.appendLocked(index, recs, hashes)
}

func (m *MemStore) appendLocked(index int64, recs []Record, hashes []tlog.Hash) error {
	if index != int64(len(m.records)) {
		return fmt.Errorf("%w: index %d, size %d", ErrConflict, index, len(m.records))
	}
	if int64(len(m.hashes)) != tlog.StoredHashIndex(0, index) {
		return fmt.Errorf("auditlog: append %d: %d stored hashes do not fit the tree", index, len(m.hashes))
	}
	if err := checkBatch(index, recs, hashes); err != nil {
		return err
	}
	for _, r := range recs {
		m.records = append(m.records, Record{Entry: clone(r.Entry), Checkpoint: clone(r.Checkpoint)})
	}
	m.hashes = append(m.hashes, hashes...)
	return nil
}

// ReadRecords implements Store.
func (m *MemStore) ReadRecords(ctx context.Context, start, end int64) ([]Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if start < 0 || end < start || end > int64(len(m.records)) {
		return nil, fmt.Errorf("auditlog: records [%d, %d) out of range (size %d)", start, end, len(m.records))
	}
	out := make([]Record, end-start)
	for i := range out {
		r := m.records[start+int64(i)]
		out[i] = Record{Entry: clone(r.Entry), Checkpoint: clone(r.Checkpoint)}
	}
	return out, nil
}

// ReadHashes implements Store.
func (m *MemStore) ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return readHashes(m.hashes, indexes)
}

func readHashes(hashes []tlog.Hash, indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(hashes)) {
			return nil, fmt.Errorf("auditlog: stored hash %d not present (have %d)", x, len(hashes))
		}
		out[i] = hashes[x]
	}
	return out, nil
}

// clone copies b; an empty b (an absent checkpoint) stays empty and
// non-nil.
func clone(b []byte) []byte { return append([]byte{}, b...) }
