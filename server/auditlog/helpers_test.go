package auditlog

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/binary"
	"testing"
	"time"

	"github.com/sbm-project/sbm/internal/cbor"
)

// testKey returns the fixed Ed25519 log key of the tests and vectors.
func testKey() ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("sbm auditlog test key"))
	return ed25519.NewKeyFromSeed(seed[:])
}

// testP256Key returns a fixed P-256 log key.
func testP256Key(t testing.TB) *ecdsa.PrivateKey {
	seed := sha256.Sum256([]byte("sbm auditlog p-256 test key"))
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), seed[:])
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// epoch is the time of the first entry and checkpoint in the tests.
var epoch = time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)

// stepClock returns a clock that starts at epoch and advances a second
// per call.
func stepClock() func() time.Time {
	n := 0
	return func() time.Time { n++; return epoch.Add(time.Duration(n-1) * time.Second) }
}

const testOrigin = "sbm production log test"

func newTestLog(t testing.TB, key crypto.Signer) (*Log, *MemStore) {
	t.Helper()
	st := NewMemStore()
	l, err := New(Config{Store: st, Key: key, Origin: testOrigin, Now: stepClock()})
	if err != nil {
		t.Fatal(err)
	}
	return l, st
}

func orderID(name string) OrderID {
	h := sha256.Sum256([]byte("order " + name))
	return OrderID(h[:16])
}

func digest(s string) *[32]byte { d := sha256.Sum256([]byte(s)); return &d }

func deviceID(i int) []byte {
	id := make([]byte, 16)
	copy(id, "dev")
	binary.BigEndian.PutUint64(id[8:], uint64(i))
	return id
}

var station1 = sha256.Sum256([]byte("station 1"))

// production returns the entries of an order of quota units: loaded, then
// per device a certificate and a UPK, every 7th unit spoiled instead.
func production(order OrderID, quota, events int) []*Entry {
	t := epoch
	es := []*Entry{{Kind: OrderLoaded, Time: t, Order: order, Digest: digest("order"), Quota: uint64(quota)}}
	var certs, spoiled uint64
	for i := 0; len(es) < events; i++ {
		t = t.Add(time.Second)
		if i%7 == 6 {
			spoiled++
			es = append(es, &Entry{Kind: UnitSpoiled, Time: t, Order: order, Station: station1[:], Device: deviceID(i), Count: spoiled})
			continue
		}
		certs++
		es = append(es, &Entry{Kind: CertificateIssued, Time: t, Order: order, Station: station1[:], Device: deviceID(i), Digest: digest("cert"), Count: certs})
		if len(es) < events {
			es = append(es, &Entry{Kind: UPKIssued, Time: t, Order: order, Station: station1[:], Device: deviceID(i), Digest: digest("upk")})
		}
	}
	return es
}

func appendAll(t testing.TB, l *Log, es []*Entry) {
	t.Helper()
	for i, e := range es {
		n, _, err := l.Append(context.Background(), e)
		if err != nil {
			t.Fatal(err)
		}
		if n != int64(i) {
			t.Fatalf("append %d: index %d", i, n)
		}
	}
}

func export(t testing.TB, l *Log) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := l.Export(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// records splits an export file into its header and raw records.
func records(t testing.TB, file []byte) (header []byte, recs [][]byte) {
	t.Helper()
	d := cbor.NewDecoder(file)
	header, err := d.RawItem()
	if err != nil {
		t.Fatal(err)
	}
	for !d.Done() {
		r, err := d.RawItem()
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	return header, recs
}

func join(header []byte, recs [][]byte) []byte {
	out := append([]byte(nil), header...)
	for _, r := range recs {
		out = append(out, r...)
	}
	return out
}

// entryRecord returns the export record of entry index i with encoding e.
func entryRecord(i int64, e []byte) []byte { return appendEntryRecord(nil, i, e) }

// renumbered gives the entry records of rs the indexes of their positions
// (a tamperer hiding a deletion or insertion).
func renumbered(t testing.TB, header []byte, rs [][]byte) [][]byte {
	t.Helper()
	var out [][]byte
	i := int64(0)
	for _, r := range rs {
		if r[1] == recordEntry {
			f, err := decodeExport(join(header, [][]byte{r}))
			if err != nil {
				t.Fatal(err)
			}
			r = entryRecord(i, f.entries[0].data)
			i++
		}
		out = append(out, r)
	}
	return out
}

// modifiedRecord is the entry record of entry (at index i) naming another
// device.
func modifiedRecord(t testing.TB, i int64, entry []byte) []byte {
	t.Helper()
	e, err := ParseEntry(entry)
	if err != nil {
		t.Fatal(err)
	}
	e.Device = deviceID(1000)
	return entryRecord(i, mustMarshal(t, e))
}

func mustMarshal(t testing.TB, e *Entry) []byte {
	t.Helper()
	b, err := e.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
