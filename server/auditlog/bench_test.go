package auditlog

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/sbm-project/sbm/internal/cose"
	"github.com/sbm-project/sbm/internal/hostcose"
	"golang.org/x/mod/sumdb/tlog"
)

// baseline measures, in this run, the operations an append is compared with:
// one SHA-256 of an entry, one checkpoint signature and its verification.
type baseline struct{ sha256, sign, verify float64 } // ns

func measureBaseline(key crypto.Signer) baseline {
	entry := mustMarshalB(production(orderID("b"), 10, 2)[1])
	payload := marshalCheckpointPayload(testOrigin, 1<<20, tlog.Hash{}, epoch)
	signed, _ := hostcose.Sign1(key, ContentTypeCheckpoint, payload, nil)
	msg, _ := cose.DecodeSign1(signed)
	v, _ := newLogVerifier(key.Public())
	// testing.Benchmark cannot run inside a benchmark: time a loop of
	// about 200ms instead.
	ns := func(f func()) float64 {
		n, start := 0, time.Now()
		for time.Since(start) < 200*time.Millisecond {
			for range 16 {
				f()
			}
			n += 16
		}
		return float64(time.Since(start).Nanoseconds()) / float64(n)
	}
	return baseline{
		sha256: ns(func() { sha256.Sum256(entry) }),
		sign:   ns(func() { hostcose.Sign1(key, ContentTypeCheckpoint, payload, nil) }),
		verify: ns(func() { msg.Verify(v.alg, v.raw) }),
	}
}

func mustMarshalB(e *Entry) []byte {
	b, err := e.MarshalBinary()
	if err != nil {
		panic(err)
	}
	return b
}

func benchKeys(b *testing.B) []struct {
	name string
	key  crypto.Signer
} {
	return []struct {
		name string
		key  crypto.Signer
	}{{"ed25519", testKey()}, {"p256", testP256Key(b)}}
}

// BenchmarkAppend is Log.Append on a MemStore (encode, tree hashes, root,
// one checkpoint signature, store), with its cost as multiples of one
// SHA-256 of an entry and of one checkpoint signature measured in the same
// run.
func BenchmarkAppend(b *testing.B) {
	for _, k := range benchKeys(b) {
		b.Run(k.name, func(b *testing.B) {
			base := measureBaseline(k.key)
			l, _ := newTestLog(b, k.key)
			es := production(orderID("b"), 1<<30, 1000)
			ctx := context.Background()
			i := 0
			for b.Loop() {
				if _, _, err := l.Append(ctx, es[i%len(es)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
			per := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			b.ReportMetric(per/base.sha256, "×sha256")
			b.ReportMetric(per/base.sign, "×sign")
			b.ReportMetric(base.sign, "sign-ns")
		})
	}
}

// BenchmarkAppendBatch is Log.AppendBatch of 1, 8 and 32 entries on a
// MemStore (one checkpoint signature per batch): µs/entry is the time per
// entry, ×sign/entry the same against one checkpoint signature measured in
// the same run.
func BenchmarkAppendBatch(b *testing.B) {
	for _, k := range benchKeys(b) {
		for _, size := range []int{1, 8, 32} {
			b.Run(fmt.Sprintf("%s/batch=%d", k.name, size), func(b *testing.B) {
				base := measureBaseline(k.key)
				l, _ := newTestLog(b, k.key)
				es := production(orderID("b"), 1<<30, 1024)
				ctx := context.Background()
				i := 0
				for b.Loop() {
					start := i % (len(es) / size) * size
					if _, _, err := l.AppendBatch(ctx, es[start:start+size]); err != nil {
						b.Fatal(err)
					}
					i++
				}
				per := float64(b.Elapsed().Nanoseconds()) / float64(b.N) / float64(size)
				b.ReportMetric(per/1e3, "µs/entry")
				b.ReportMetric(per/base.sign, "×sign/entry")
				b.ReportMetric(base.sign, "sign-ns")
			})
		}
	}
}

// unsignedLog returns a log of n entries whose records carry no real
// checkpoint (for proof benchmarks, which do not read them).
func unsignedLog(b *testing.B, n int) *Log {
	l, st := newTestLog(b, testKey())
	ctx := context.Background()
	es := production(orderID("b"), 1<<30, 1000)
	for i := range n {
		data := mustMarshalB(es[i%len(es)])
		hashes, err := tlog.StoredHashes(int64(i), data, l.hashReader(ctx))
		if err != nil {
			b.Fatal(err)
		}
		if err := st.Append(ctx, int64(i), Record{Entry: data}, hashes); err != nil {
			b.Fatal(err)
		}
	}
	return l
}

// BenchmarkProof is building and checking inclusion and consistency proofs
// in a tree of 100,000 entries, against one SHA-256 and one signature.
func BenchmarkProof(b *testing.B) {
	const n = 100_000
	base := measureBaseline(testKey())
	l := unsignedLog(b, n)
	ctx := context.Background()
	root, _ := tlog.TreeHash(n, l.hashReader(ctx))
	old, _ := tlog.TreeHash(n/3, l.hashReader(ctx))
	cp := &Checkpoint{Size: n, Root: root}
	oldCP := &Checkpoint{Size: n / 3, Root: old}
	entry, _ := l.Entry(ctx, 12345)
	report := func(b *testing.B) {
		per := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		b.ReportMetric(per/base.sha256, "×sha256")
		b.ReportMetric(per/base.sign, "×sign")
	}
	b.Run("inclusion", func(b *testing.B) {
		for b.Loop() {
			if _, err := l.InclusionProof(ctx, 12345, n); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
	p, _ := l.InclusionProof(ctx, 12345, n)
	b.Run("verify-inclusion", func(b *testing.B) {
		for b.Loop() {
			if err := VerifyInclusion(cp, 12345, entry, p); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
	b.Run("consistency", func(b *testing.B) {
		for b.Loop() {
			if _, err := l.ConsistencyProof(ctx, n/3, n); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
	tp, _ := l.ConsistencyProof(ctx, n/3, n)
	b.Run("verify-consistency", func(b *testing.B) {
		for b.Loop() {
			if err := VerifyConsistency(oldCP, cp, tp); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
}

func signedExport(t testing.TB, key crypto.Signer, n int) []byte {
	l, _ := newTestLog(t, key)
	appendAll(t, l, production(orderID("b"), n, n))
	return export(t, l)
}

// BenchmarkAudit audits an export of 100,000 entries (and as many
// checkpoints); set up takes as long again (100,000 signatures).
func BenchmarkAudit(b *testing.B) {
	for _, k := range benchKeys(b) {
		b.Run(k.name+"/entries=100000", func(b *testing.B) {
			const n = 100_000
			file := signedExport(b, k.key, n)
			base := measureBaseline(k.key)
			b.SetBytes(int64(len(file)))
			for b.Loop() {
				if _, err := Audit(bytes.NewReader(file), k.key.Public(), map[OrderID]uint64{orderID("b"): n}); err != nil {
					b.Fatal(err)
				}
			}
			per := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			b.ReportMetric(per/1e9, "s/audit")
			b.ReportMetric(per/n/base.verify, "×verify/entry")
		})
	}
}

// TestAuditSpeed audits 10,000 entries and logs the time (100,000 in
// BenchmarkAudit).
func TestAuditSpeed(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	const n = 10_000
	start := time.Now()
	file := signedExport(t, testKey(), n)
	built := time.Since(start)
	start = time.Now()
	rep, err := Audit(bytes.NewReader(file), testKey().Public(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Size != n {
		t.Fatalf("size %d", rep.Size)
	}
	t.Logf("%d entries: built and exported in %v, audited in %v (%s)", n, built.Round(time.Millisecond),
		time.Since(start).Round(time.Millisecond), fmt.Sprintf("%d bytes", len(file)))
}
