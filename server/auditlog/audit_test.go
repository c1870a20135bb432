package auditlog

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"slices"
	"testing"
	"time"
)

const (
	tamperEntries = 20
	tamperQuota   = 16
)

// goodLog returns the export of a log of tamperEntries entries and the
// log's checkpoints.
func goodLog(t *testing.T) (*Log, []byte) {
	l, _ := newTestLog(t, testKey())
	appendAll(t, l, production(orderID("a"), tamperQuota, tamperEntries))
	return l, export(t, l)
}

func TestAuditGood(t *testing.T) {
	l, file := goodLog(t)
	rep, err := Audit(bytes.NewReader(file), testKey().Public(), map[OrderID]uint64{orderID("a"): tamperQuota})
	if err != nil {
		t.Fatal(err)
	}
	latest, _ := l.Latest(context.Background())
	if rep.Size != tamperEntries || rep.Checkpoints != tamperEntries || rep.Origin != testOrigin || rep.Latest.Root != latest.Root {
		t.Errorf("report %+v", rep)
	}
	o := rep.Orders[orderID("a")]
	// 19 events after the load: units 0 to 5 and 7 to 9 certified with a
	// UPK each, unit 6 spoiled.
	want := OrderReport{Quota: tamperQuota, Loaded: 0, Revoked: -1, Certified: 9, Spoiled: 1, UPKs: 9}
	if *o != want {
		t.Errorf("order report %+v, want %+v", *o, want)
	}
	if o.Remaining() != tamperQuota-10 {
		t.Errorf("remaining %d", o.Remaining())
	}
	if len(rep.Devices) != 9 {
		t.Errorf("%d devices", len(rep.Devices))
	}
	// Without the auditor's orders, the quotas come from the log.
	if _, err := Audit(bytes.NewReader(file), testKey().Public(), nil); err != nil {
		t.Fatal(err)
	}
}

// Records of the tamper log's export: entry i is recs[2i], the checkpoint of
// size i+1 is recs[2i+1].
func TestAuditTampering(t *testing.T) {
	l, file := goodLog(t)
	header, recs := records(t, file)
	ctx := context.Background()
	entry := func(i int64) []byte { b, _ := l.Entry(ctx, i); return b }
	latest, _ := l.Latest(ctx)

	// A second log with the same key and a different history from entry 4.
	other, _ := newTestLog(t, testKey())
	es := production(orderID("a"), tamperQuota, tamperEntries)
	es[4] = &Entry{Kind: UPKIssued, Time: es[4].Time, Order: orderID("a"), Station: station1[:], Device: deviceID(1), Digest: digest("other upk")}
	appendAll(t, other, es)
	otherCP := func(size int64) []byte { c, _ := other.Checkpoint(ctx, size); return c.Signed }
	otherRec := func(size int64) []byte { return appendCheckpointRecord(nil, otherCP(size)) }

	forged := mustMarshal(t, &Entry{Kind: CertificateIssued, Time: epoch, Order: orderID("a"), Station: station1[:], Device: deviceID(99), Digest: digest("cert"), Count: 3})

	renumber := func(rs [][]byte) [][]byte { return renumbered(t, header, rs) }
	modified := func(i int64) []byte { return modifiedRecord(t, i, entry(i)) }

	for _, tc := range []struct {
		name      string
		file      []byte
		witnessed [][]byte
		want      error
		index     int64
	}{
		{"delete entry and checkpoint", join(header, slices.Delete(slices.Clone(recs), 10, 12)), nil, ErrDeleted, 5},
		{"delete entry only", join(header, slices.Delete(slices.Clone(recs), 10, 11)), nil, ErrDeleted, 5},
		{"delete two entries", join(header, slices.Delete(slices.Clone(recs), 10, 14)), nil, ErrDeleted, 5},
		{"delete and renumber", join(header, renumber(slices.Delete(slices.Clone(recs), 10, 12))), nil, ErrDeleted, 5},
		{"delete first", join(header, recs[2:]), nil, ErrDeleted, 0},
		{"modify", join(header, slices.Replace(slices.Clone(recs), 14, 15, modified(7))), nil, ErrModified, 7},
		{"modify last", join(header, slices.Replace(slices.Clone(recs), 38, 39, modified(19))), nil, ErrModified, 19},
		{"reorder", join(header, swap(recs, 6, 12)), nil, ErrReordered, 3},
		{"reorder with checkpoints", join(header, swap(swap(recs, 6, 12), 7, 13)), nil, ErrReordered, 3},
		{"insert duplicate index", join(header, slices.Insert(slices.Clone(recs), 8, entryRecord(4, forged))), nil, ErrInserted, 4},
		{"insert after duplicate", join(header, slices.Insert(slices.Clone(recs), 10, entryRecord(4, forged))), nil, ErrInserted, 5},
		{"insert and renumber", join(header, renumber(slices.Insert(slices.Clone(recs), 8, entryRecord(4, forged)))), nil, ErrInserted, 4},
		{"insert at end", join(header, append(slices.Clone(recs), entryRecord(20, forged))), nil, ErrInserted, 20},
		{"no checkpoints", join(header, everyOther(recs)), nil, ErrInserted, 0},
		{"truncate inside a record", file[:len(file)-10], nil, ErrTruncated, -1},
		{"truncate entries, keep checkpoint", join(header, append(slices.Clone(recs[:30]), recs[39])), nil, ErrTruncated, 15},
		{"truncate tail, witnessed", join(header, recs[:30]), [][]byte{latest.Signed}, ErrTruncated, 15},
		{"fork: same size", join(header, append(slices.Clone(recs), otherRec(20))), nil, ErrFork, 19},
		{"fork: witnessed", file, [][]byte{otherCP(12)}, ErrFork, 11},
		{"fork: inconsistent pair", join(header, slices.Replace(slices.Clone(recs), 19, 20, otherRec(10))), nil, ErrFork, 9},
		{"fork: inconsistent witness", join(header, slices.Delete(slices.Clone(recs), 19, 20)), [][]byte{otherCP(10)}, ErrFork, 9},
		{"checkpoint signature", join(header, slices.Replace(slices.Clone(recs), 9, 10, flipLast(recs[9]))), nil, ErrSignature, -1},
		{"checkpoint of another key", join(header, slices.Replace(slices.Clone(recs), 9, 10, foreignCheckpoint(t, 5))), nil, ErrSignature, -1},
		{"not an export", []byte("hello"), nil, ErrMalformed, -1},
		{"empty", nil, nil, ErrTruncated, -1},
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
			t.Log(err)
		})
	}
}

func swap(recs [][]byte, i, j int) [][]byte {
	out := slices.Clone(recs)
	out[i], out[j] = out[j], out[i]
	return out
}

func everyOther(recs [][]byte) [][]byte {
	var out [][]byte
	for i := 0; i < len(recs); i += 2 {
		out = append(out, recs[i])
	}
	return out
}

func flipLast(r []byte) []byte {
	out := slices.Clone(r)
	out[len(out)-1] ^= 1
	return out
}

func foreignCheckpoint(t *testing.T, size int64) []byte {
	seed := sha256.Sum256([]byte("another key"))
	cp, err := signCheckpoint(ed25519.NewKeyFromSeed(seed[:]), testOrigin, size, [32]byte{}, epoch)
	if err != nil {
		t.Fatal(err)
	}
	return appendCheckpointRecord(nil, cp.Signed)
}

// TestAuditRules checks logs the log key signed whose content breaks an
// order's rules, as a faulty or dishonest service would write them.
func TestAuditRules(t *testing.T) {
	a, b := orderID("a"), orderID("b")
	t0 := epoch
	load := func(o OrderID, q uint64) *Entry {
		return &Entry{Kind: OrderLoaded, Time: t0, Order: o, Digest: digest("order"), Quota: q}
	}
	cert := func(o OrderID, dev int, count uint64) *Entry {
		return &Entry{Kind: CertificateIssued, Time: t0, Order: o, Station: station1[:], Device: deviceID(dev), Digest: digest("cert"), Count: count}
	}
	upk := func(o OrderID, dev int) *Entry {
		return &Entry{Kind: UPKIssued, Time: t0, Order: o, Station: station1[:], Device: deviceID(dev), Digest: digest("upk")}
	}
	spoil := func(o OrderID, count uint64) *Entry {
		return &Entry{Kind: UnitSpoiled, Time: t0, Order: o, Station: station1[:], Count: count}
	}
	revoke := &Entry{Kind: OrderRevoked, Time: t0, Order: a}
	devRevoke := func(o OrderID, dev int, d *[32]byte) *Entry {
		return &Entry{Kind: DeviceRevoked, Time: t0, Order: o, Device: deviceID(dev), Digest: d}
	}
	quotas := map[OrderID]uint64{a: 3, b: 2}
	for _, tc := range []struct {
		name  string
		es    []*Entry
		want  error // nil: the log passes
		index int64
	}{
		{"exactly the quota", []*Entry{load(a, 3), cert(a, 1, 1), upk(a, 1), cert(a, 2, 2), spoil(a, 1)}, nil, 0},
		{"two orders", []*Entry{load(a, 3), load(b, 2), cert(b, 1, 1), cert(a, 2, 1), cert(b, 3, 2)}, nil, 0},
		{"over quota", []*Entry{load(a, 3), cert(a, 1, 1), cert(a, 2, 2), cert(a, 3, 3), cert(a, 4, 4)}, ErrOverQuota, 4},
		{"over quota with spoiled", []*Entry{load(a, 3), cert(a, 1, 1), spoil(a, 1), spoil(a, 2), cert(a, 2, 2)}, ErrOverQuota, 4},
		{"count skips", []*Entry{load(a, 3), cert(a, 1, 1), cert(a, 2, 3)}, ErrCount, 2},
		{"count repeats", []*Entry{load(a, 3), cert(a, 1, 1), cert(a, 2, 1)}, ErrCount, 2},
		{"spoiled count skips", []*Entry{load(a, 3), spoil(a, 2)}, ErrCount, 1},
		{"device certified twice", []*Entry{load(a, 3), cert(a, 1, 1), cert(a, 1, 2)}, ErrDevice, 2},
		{"device certified in two orders", []*Entry{load(a, 3), load(b, 2), cert(a, 1, 1), cert(b, 1, 1)}, ErrDevice, 3},
		{"UPK without certificate", []*Entry{load(a, 3), cert(a, 1, 1), upk(a, 2)}, ErrDevice, 2},
		{"UPK under another order", []*Entry{load(a, 3), load(b, 2), cert(a, 1, 1), upk(b, 1)}, ErrDevice, 3},
		{"device revoked", []*Entry{load(a, 3), cert(a, 1, 1), cert(a, 2, 2), devRevoke(a, 1, digest("cert")), devRevoke(a, 2, nil)}, nil, 0},
		{"device revoked after its order", []*Entry{load(a, 3), cert(a, 1, 1), revoke, devRevoke(a, 1, nil)}, nil, 0},
		{"revocation of a device never certified", []*Entry{load(a, 3), cert(a, 1, 1), devRevoke(a, 2, nil)}, ErrDevice, 2},
		{"revocation before the certificate", []*Entry{load(a, 3), devRevoke(a, 1, nil), cert(a, 1, 1)}, ErrDevice, 1},
		{"revocation under another order", []*Entry{load(a, 3), load(b, 2), cert(a, 1, 1), devRevoke(b, 1, nil)}, ErrDevice, 3},
		{"device revoked twice", []*Entry{load(a, 3), cert(a, 1, 1), devRevoke(a, 1, nil), devRevoke(a, 1, nil)}, ErrDevice, 3},
		{"revocation of another certificate", []*Entry{load(a, 3), cert(a, 1, 1), devRevoke(a, 1, digest("clone"))}, ErrDevice, 2},
		{"revocation of an unloaded order", []*Entry{devRevoke(a, 1, nil)}, ErrOrder, 0},
		{"unknown order", []*Entry{load(orderID("c"), 3)}, ErrOrder, 0},
		{"quota differs", []*Entry{load(a, 4)}, ErrOrder, 0},
		{"not loaded", []*Entry{cert(a, 1, 1)}, ErrOrder, 0},
		{"loaded twice", []*Entry{load(a, 3), load(a, 3)}, ErrOrder, 1},
		{"after revocation", []*Entry{load(a, 3), cert(a, 1, 1), revoke, cert(a, 2, 2)}, ErrOrder, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, _ := newTestLog(t, testKey())
			appendAll(t, l, tc.es)
			rep, err := Audit(bytes.NewReader(export(t, l)), testKey().Public(), quotas)
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				var revoked uint64
				for id, o := range rep.Orders {
					if o.Certified+o.Spoiled > o.Quota {
						t.Errorf("order %v: %+v", id, o)
					}
					revoked += o.DevicesRevoked
				}
				var want uint64
				for _, e := range tc.es {
					if e.Kind == DeviceRevoked {
						want++
					}
				}
				if revoked != want || len(rep.RevokedDevices) != int(want) {
					t.Errorf("%d devices revoked, %d in the report's map, want %d", revoked, len(rep.RevokedDevices), want)
				}
				return
			}
			var ae *AuditError
			if !errors.Is(err, tc.want) || !errors.As(err, &ae) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if ae.Index != tc.index {
				t.Errorf("%v: index %d, want %d", err, ae.Index, tc.index)
			}
			if rep == nil {
				t.Error("no report with a rule error")
			}
			t.Log(err)
		})
	}
}

// TestAuditMalformedEntry checks that a signed entry that does not decode is
// named (a service bug, not a tampering).
func TestAuditMalformedEntry(t *testing.T) {
	l, st := newTestLog(t, testKey())
	appendAll(t, l, production(orderID("a"), 3, 2))
	// Append raw garbage through the store, as a buggy service could.
	ctx := context.Background()
	n, _ := st.Size(ctx)
	data := []byte{0xa0}
	hashes, _ := tlogStoredHashes(t, l, n, data)
	root := treeHashWith(t, l, n, hashes)
	cp, _ := signCheckpoint(testKey(), testOrigin, n+1, root, time.Unix(0, 0))
	if err := st.Append(ctx, n, Record{Entry: data, Checkpoint: cp.Signed}, hashes); err != nil {
		t.Fatal(err)
	}
	_, err := Audit(bytes.NewReader(export(t, l)), testKey().Public(), nil)
	var ae *AuditError
	if !errors.Is(err, ErrMalformed) || !errors.Is(err, ErrEntry) || !errors.As(err, &ae) || ae.Index != 2 {
		t.Fatalf("got %v", err)
	}
}

func TestAuditP256AndEmpty(t *testing.T) {
	key := testP256Key(t)
	l, _ := newTestLog(t, key)
	empty := export(t, l)
	rep, err := Audit(bytes.NewReader(empty), key.Public(), nil)
	if err != nil || rep.Size != 0 || rep.Latest != nil {
		t.Fatalf("empty log: %+v, %v", rep, err)
	}
	appendAll(t, l, production(orderID("p"), 10, 12))
	rep, err = Audit(bytes.NewReader(export(t, l)), key.Public(), map[OrderID]uint64{orderID("p"): 10})
	if err != nil || rep.Size != 12 {
		t.Fatalf("P-256 log: %+v, %v", rep, err)
	}
	// The Ed25519 test key did not sign it.
	if _, err := Audit(bytes.NewReader(export(t, l)), testKey().Public(), nil); !errors.Is(err, ErrSignature) {
		t.Fatalf("wrong key: %v", err)
	}
	// An empty export cannot hide a witnessed checkpoint.
	a := &Auditor{Key: key.Public(), Witnessed: [][]byte{rep.Latest.Signed}}
	if _, err := a.Audit(bytes.NewReader(empty)); !errors.Is(err, ErrTruncated) {
		t.Fatalf("empty export with a witness: %v", err)
	}
}
