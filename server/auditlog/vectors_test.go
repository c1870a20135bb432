package auditlog

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/sbm-project/sbm/internal/hostcose"
	"golang.org/x/mod/sumdb/tlog"
)

var update = flag.Bool("update", false, "rewrite the test vectors in testdata/auditlog")

const vectorsDir = "../../testdata/auditlog"

type vectorFile struct {
	Description string              `json:"description"`
	Key         vectorKey           `json:"log_key"`
	Origin      string              `json:"origin"`
	Quotas      map[string]uint64   `json:"quotas"`
	Entries     []vectorEntry       `json:"entries"`
	Checkpoints []vectorCheckpoint  `json:"checkpoints"`
	Inclusion   []vectorInclusion   `json:"inclusion_proofs"`
	Consistency []vectorConsistency `json:"consistency_proofs"`
	Export      string              `json:"export_file"`
	Batch       *vectorBatch        `json:"batch"`
}

// vectorBatch is the same entries appended in four appends, the third a
// batch of three (Log.AppendBatch): one checkpoint for the three.
type vectorBatch struct {
	Description string             `json:"description"`
	Appends     [][]int64          `json:"appends"`
	Checkpoints []vectorCheckpoint `json:"checkpoints"`
	Export      string             `json:"export_file"`
}

type vectorKey struct {
	Alg    string `json:"alg"`
	Seed   string `json:"ed25519_seed"`
	Public string `json:"public"`
	KID    string `json:"kid"`
}

type vectorEntry struct {
	Index    int64  `json:"index"`
	Kind     string `json:"kind"`
	CBOR     string `json:"cbor"`
	LeafHash string `json:"leaf_hash"`
}

type vectorCheckpoint struct {
	Size    int64  `json:"size"`
	Root    string `json:"root"`
	Time    string `json:"time"`
	Payload string `json:"payload"`
	COSE    string `json:"cose_sign1"`
}

type vectorInclusion struct {
	Index int64    `json:"index"`
	Size  int64    `json:"size"`
	Proof []string `json:"proof"`
}

type vectorConsistency struct {
	Old   int64    `json:"old_size"`
	New   int64    `json:"new_size"`
	Proof []string `json:"proof"`
}

// vectorEntries are the six entries of the vector log.
func vectorEntries() []*Entry {
	o := orderID("vector")
	st := sha256.Sum256([]byte("station certificate"))
	at := func(s int) time.Time { return epoch.Add(time.Duration(s) * time.Second) }
	return []*Entry{
		{Kind: OrderLoaded, Time: at(0), Order: o, Digest: digest("signed order"), Quota: 3},
		{Kind: CertificateIssued, Time: at(1), Order: o, Station: st[:], Device: deviceID(1), Digest: digest("certificate 1"), Count: 1},
		{Kind: UPKIssued, Time: at(1), Order: o, Station: st[:], Device: deviceID(1), Digest: digest("upk 1")},
		{Kind: UnitSpoiled, Time: at(2), Order: o, Station: st[:], Device: deviceID(2), Count: 1},
		{Kind: CertificateIssued, Time: at(3), Order: o, Station: st[:], Device: deviceID(3), Digest: digest("certificate 3"), Count: 2},
		{Kind: DeviceRevoked, Time: at(4), Order: o, Device: deviceID(1), Digest: digest("certificate 1")},
	}
}

func hexes(hs []tlog.Hash) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = hex.EncodeToString(h[:])
	}
	return out
}

func buildVectors(t *testing.T) (v *vectorFile, file, batchFile []byte) {
	ctx := context.Background()
	key := testKey()
	l, _ := newTestLog(t, key)
	es := vectorEntries()
	appendAll(t, l, es)
	kid, _ := hostcose.KeyID(key.Public())
	v = &vectorFile{
		Description: "sbm production audit log test vectors (docs/production.md, \"Audit log\"); the log key is a TEST key",
		Key: vectorKey{Alg: "EdDSA", Seed: hex.EncodeToString(key.Seed()),
			Public: hex.EncodeToString([]byte(key.Public().(ed25519.PublicKey))), KID: hex.EncodeToString(kid[:])},
		Origin: testOrigin,
		Quotas: map[string]uint64{orderID("vector").String(): 3},
		Export: "log.export",
	}
	for i := range es {
		b, _ := l.Entry(ctx, int64(i))
		h := tlog.RecordHash(b)
		v.Entries = append(v.Entries, vectorEntry{Index: int64(i), Kind: es[i].Kind.String(), CBOR: hex.EncodeToString(b), LeafHash: hex.EncodeToString(h[:])})
		cp, err := l.Checkpoint(ctx, int64(i+1))
		if err != nil {
			t.Fatal(err)
		}
		v.Checkpoints = append(v.Checkpoints, vectorCheckpointOf(cp))
	}
	n := int64(len(es))
	for i := range n {
		p, err := l.InclusionProof(ctx, i, n)
		if err != nil {
			t.Fatal(err)
		}
		v.Inclusion = append(v.Inclusion, vectorInclusion{Index: i, Size: n, Proof: hexes(p)})
	}
	for old := int64(1); old < n; old++ {
		p, err := l.ConsistencyProof(ctx, old, n)
		if err != nil {
			t.Fatal(err)
		}
		v.Consistency = append(v.Consistency, vectorConsistency{Old: old, New: n, Proof: hexes(p)})
	}
	v.Batch, batchFile = buildBatchVector(t, es)
	return v, export(t, l), batchFile
}

// batchAppends returns the appends of the batch vector: entries 0 and 1
// one by one, entries 2 to 4 as one batch, entry 5 alone.
func batchAppends() [][]int64 { return [][]int64{{0}, {1}, {2, 3, 4}, {5}} }

func vectorCheckpointOf(cp *Checkpoint) vectorCheckpoint {
	payload := marshalCheckpointPayload(cp.Origin, cp.Size, cp.Root, cp.Time)
	return vectorCheckpoint{Size: cp.Size, Root: hex.EncodeToString(cp.Root[:]),
		Time: cp.Time.Format(time.RFC3339), Payload: hex.EncodeToString(payload), COSE: hex.EncodeToString(cp.Signed)}
}

func buildBatchVector(t *testing.T, es []*Entry) (*vectorBatch, []byte) {
	l, _ := newTestLog(t, testKey())
	b := &vectorBatch{
		Description: "the entries appended as 0, 1, then 2 to 4 in one batch, then 5: checkpoints of sizes 1, 2, 5 and 6 only; in the export, entries 2 and 3 are followed by no checkpoint",
		Appends:     batchAppends(),
		Export:      "batch.export",
	}
	for _, a := range b.Appends {
		var batch []*Entry
		for _, i := range a {
			batch = append(batch, es[i])
		}
		first, cp, err := l.AppendBatch(context.Background(), batch)
		if err != nil {
			t.Fatal(err)
		}
		if first != a[0] {
			t.Fatalf("batch at %d, want %d", first, a[0])
		}
		b.Checkpoints = append(b.Checkpoints, vectorCheckpointOf(cp))
	}
	return b, export(t, l)
}

// TestVectors regenerates testdata/auditlog and compares it byte for byte
// (go test -run TestVectors -update rewrites it).
func TestVectors(t *testing.T) {
	v, file, batchFile := buildVectors(t)
	js, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	js = append(js, '\n')
	files := map[string][]byte{"vectors.json": js, "log.export": file, "batch.export": batchFile}
	if *update {
		if err := os.MkdirAll(vectorsDir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range files {
			if err := os.WriteFile(filepath.Join(vectorsDir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(vectorsDir, name))
		if err != nil {
			t.Fatalf("%v (run with -update to create)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from what the code produces (run with -update if the change is intended)", name)
		}
	}
	rep, err := Audit(bytes.NewReader(file), testKey().Public(), map[OrderID]uint64{orderID("vector"): 3})
	if err != nil {
		t.Fatal(err)
	}
	if o := rep.Orders[orderID("vector")]; o.Certified != 2 || o.Spoiled != 1 || o.Remaining() != 0 || o.DevicesRevoked != 1 {
		t.Errorf("vector order %+v", o)
	}
	brep, err := Audit(bytes.NewReader(batchFile), testKey().Public(), map[OrderID]uint64{orderID("vector"): 3})
	if err != nil {
		t.Fatal(err)
	}
	if brep.Checkpoints != 4 || brep.Latest.Root != rep.Latest.Root {
		t.Errorf("batch vector: %d checkpoints, root %x, want 4 and %x", brep.Checkpoints, brep.Latest.Root, rep.Latest.Root)
	}
	if _, recs := records(t, batchFile); len(recs) != 6+4 {
		t.Errorf("batch vector export of %d records, want 10", len(recs))
	}
}

// TestVectorHashes recomputes the vector roots with the RFC 6962 formulas
// alone, independently of tlog.
func TestVectorHashes(t *testing.T) {
	v, _, _ := buildVectors(t)
	var leaves [][]byte
	for _, e := range v.Entries {
		b, _ := hex.DecodeString(e.CBOR)
		h := sha256.Sum256(append([]byte{0x00}, b...))
		if hex.EncodeToString(h[:]) != e.LeafHash {
			t.Fatalf("leaf %d", e.Index)
		}
		leaves = append(leaves, h[:])
	}
	for _, c := range append(slices.Clone(v.Checkpoints), v.Batch.Checkpoints...) {
		root := mth(leaves[:c.Size])
		if hex.EncodeToString(root) != c.Root {
			t.Errorf("size %d: RFC 6962 root %x, checkpoint %s", c.Size, root, c.Root)
		}
	}
	// The proofs are RFC 6962's PATH (§2.1.1) and PROOF (§2.1.2), in order.
	for _, p := range v.Inclusion {
		if got := hexList(path(int(p.Index), leaves[:p.Size])); !slices.Equal(got, p.Proof) {
			t.Errorf("inclusion %d in %d: RFC 6962 %v, vector %v", p.Index, p.Size, got, p.Proof)
		}
	}
	for _, p := range v.Consistency {
		if got := hexList(subproof(int(p.Old), leaves[:p.New], true)); !slices.Equal(got, p.Proof) {
			t.Errorf("consistency %d to %d: RFC 6962 %v, vector %v", p.Old, p.New, got, p.Proof)
		}
	}
}

func hexList(hs [][]byte) []string {
	out := []string{}
	for _, h := range hs {
		out = append(out, hex.EncodeToString(h))
	}
	return out
}

func split(n int) int {
	k := 1
	for k*2 < n {
		k *= 2
	}
	return k
}

// path is RFC 6962's PATH(m, D[n]).
func path(m int, leaves [][]byte) [][]byte {
	if len(leaves) <= 1 {
		return nil
	}
	k := split(len(leaves))
	if m < k {
		return append(path(m, leaves[:k]), mth(leaves[k:]))
	}
	return append(path(m-k, leaves[k:]), mth(leaves[:k]))
}

// subproof is RFC 6962's SUBPROOF(m, D[n], b).
func subproof(m int, leaves [][]byte, b bool) [][]byte {
	n := len(leaves)
	if m == n {
		if b {
			return nil
		}
		return [][]byte{mth(leaves)}
	}
	k := split(n)
	if m <= k {
		return append(subproof(m, leaves[:k], b), mth(leaves[k:]))
	}
	return append(subproof(m-k, leaves[k:], false), mth(leaves[:k]))
}

// mth is RFC 6962's MTH over leaf hashes: split at the largest power of two
// smaller than n, node = SHA-256(0x01 ‖ left ‖ right).
func mth(leaves [][]byte) []byte {
	if len(leaves) == 1 {
		return leaves[0]
	}
	k := split(len(leaves))
	h := sha256.New()
	h.Write([]byte{0x01})
	h.Write(mth(leaves[:k]))
	h.Write(mth(leaves[k:]))
	return h.Sum(nil)
}
