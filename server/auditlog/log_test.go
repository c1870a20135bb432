package auditlog

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"sync"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

func tlogStoredHashes(t *testing.T, l *Log, n int64, data []byte) ([]tlog.Hash, error) {
	t.Helper()
	h, err := tlog.StoredHashes(n, data, l.hashReader(context.Background()))
	if err != nil {
		t.Fatal(err)
	}
	return h, nil
}

func treeHashWith(t *testing.T, l *Log, n int64, added []tlog.Hash) tlog.Hash {
	t.Helper()
	ctx := context.Background()
	old, err := l.store.ReadHashes(ctx, seq(tlog.StoredHashIndex(0, n)))
	if err != nil {
		t.Fatal(err)
	}
	all := append(old, added...)
	h, err := tlog.TreeHash(n+1, tlog.HashReaderFunc(func(ix []int64) ([]tlog.Hash, error) { return readHashes(all, ix) }))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func seq(n int64) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(i)
	}
	return out
}

func TestLogProofs(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		key  crypto.Signer
	}{{"ed25519", testKey()}, {"p256", testP256Key(t)}} {
		t.Run(tc.name, func(t *testing.T) {
			l, _ := newTestLog(t, tc.key)
			es := production(orderID("p"), 100, 40)
			var cps []*Checkpoint
			for i, e := range es {
				n, cp, err := l.Append(ctx, e)
				if err != nil || n != int64(i) || cp.Size != n+1 {
					t.Fatalf("append %d: %d, %v, %v", i, n, cp, err)
				}
				v, err := VerifyCheckpoint(cp.Signed, tc.key.Public())
				if err != nil {
					t.Fatal(err)
				}
				if v.Root != cp.Root || v.Size != cp.Size || !v.Time.Equal(cp.Time) || v.Origin != testOrigin {
					t.Fatalf("verified %+v, signed %+v", v, cp)
				}
				cps = append(cps, cp)
			}
			for size := int64(1); size <= int64(len(es)); size++ {
				cp := cps[size-1]
				for i := int64(0); i < size; i++ {
					p, err := l.InclusionProof(ctx, i, size)
					if err != nil {
						t.Fatal(err)
					}
					e, _ := l.Entry(ctx, i)
					if err := VerifyInclusion(cp, i, e, p); err != nil {
						t.Fatal(err)
					}
					if i+1 < size {
						other, _ := l.Entry(ctx, i+1)
						if err := VerifyInclusion(cp, i, other, p); err == nil {
							t.Fatalf("entry %d verified at %d", i+1, i)
						}
					}
				}
				for old := int64(1); old <= size; old++ {
					p, err := l.ConsistencyProof(ctx, old, size)
					if err != nil {
						t.Fatal(err)
					}
					if err := VerifyConsistency(cps[old-1], cp, p); err != nil {
						t.Fatal(err)
					}
				}
			}
			if _, err := l.InclusionProof(ctx, 0, int64(len(es))+1); err == nil {
				t.Error("proof for a tree larger than the log")
			}
			if _, err := l.ConsistencyProof(ctx, 5, 4); err == nil {
				t.Error("consistency proof backwards")
			}
		})
	}
}

func TestVerifyCheckpointRefuses(t *testing.T) {
	l, _ := newTestLog(t, testKey())
	_, cp, err := l.Append(context.Background(), production(orderID("v"), 1, 1)[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyCheckpoint(cp.Signed, testP256Key(t).Public()); !errors.Is(err, ErrCheckpoint) {
		t.Errorf("other key: %v", err)
	}
	bad := bytes.Clone(cp.Signed)
	bad[len(bad)-1] ^= 1
	if _, err := VerifyCheckpoint(bad, testKey().Public()); !errors.Is(err, ErrCheckpoint) {
		t.Errorf("flipped signature: %v", err)
	}
	if _, err := VerifyCheckpoint(cp.Signed[:len(cp.Signed)-1], testKey().Public()); !errors.Is(err, ErrCheckpoint) {
		t.Errorf("truncated: %v", err)
	}
}

// TestSharedStore has two Logs (two service instances) append to one store
// concurrently: every entry gets its own index, and the result audits.
func TestSharedStore(t *testing.T) {
	st := NewMemStore()
	var logs []*Log
	for range 2 {
		l, err := New(Config{Store: st, Key: testKey(), Origin: testOrigin})
		if err != nil {
			t.Fatal(err)
		}
		logs = append(logs, l)
	}
	ctx := context.Background()
	if _, _, err := logs[0].Append(ctx, &Entry{Kind: OrderLoaded, Time: epoch, Order: orderID("s"), Digest: digest("o"), Quota: 1000}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[int64]bool{}
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				n, _, err := logs[w%2].Append(ctx, &Entry{Kind: UnitSpoiled, Time: epoch, Order: orderID("s"), Station: station1[:], Count: 1})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seen[n] {
					t.Errorf("index %d twice", n)
				}
				seen[n] = true
				mu.Unlock()
				_ = i
			}
		}()
	}
	wg.Wait()
	if n, _ := st.Size(ctx); n != 101 {
		t.Fatalf("size %d", n)
	}
	// The counts are wrong (every entry says 1), the tree is not.
	_, err := Audit(bytes.NewReader(export(t, logs[1])), testKey().Public(), nil)
	if !errors.Is(err, ErrCount) {
		t.Fatalf("got %v", err)
	}
}

func TestNewRefuses(t *testing.T) {
	for _, c := range []Config{
		{Key: testKey(), Origin: "x"},
		{Store: NewMemStore(), Origin: "x"},
		{Store: NewMemStore(), Key: testKey()},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) succeeded", c)
		}
	}
}

func TestAppendZeroTime(t *testing.T) {
	l, _ := newTestLog(t, testKey())
	ctx := context.Background()
	e := &Entry{Kind: OrderLoaded, Order: orderID("z"), Digest: digest("o"), Quota: 1}
	if _, _, err := l.Append(ctx, e); err != nil {
		t.Fatal(err)
	}
	b, _ := l.Entry(ctx, 0)
	got, err := ParseEntry(b)
	if err != nil || !got.Time.Equal(epoch) || !e.Time.IsZero() {
		t.Fatalf("entry %+v, %v (caller's %v)", got, err, e.Time)
	}
}
