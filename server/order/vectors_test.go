package order

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sbm-project/sbm/internal/hostcose"
	"github.com/sbm-project/sbm/trust"
)

var update = flag.Bool("update", false, "rewrite the test vectors in testdata/order")

const vectorsDir = "../../testdata/order"

// vectorOrder is the order of the vectors, for the contexts in
// testdata/vectors (their vendor and class).
func vectorOrder(c *trust.Context) *Order {
	o := &Order{
		VendorID:  c.VendorID(),
		ClassID:   c.ClassID(),
		Count:     5,
		NotBefore: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:  time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
		Stations:  [][32]byte{sha256.Sum256([]byte("station certificate"))},
		Release:   sha256.Sum256([]byte("release manifest")),
		Lines:     map[string]uint64{"line-1": 3, "line-2": 2},
	}
	for i := range o.ID {
		o.ID[i] = byte(i)
	}
	return o
}

type vector struct {
	Description string `json:"description"`
	Context     string `json:"context"`
	ID          string `json:"id"`
	Payload     string `json:"payload_cbor"`
	File        string `json:"cose_sign1_file"`
	ValidAt     string `json:"valid_at"`
	ExpiredAt   string `json:"expired_at"`
}

// TestVectors: the signed orders in testdata/order are what Sign makes
// for the vector order (ES256 per RFC 6979 and Ed25519 are deterministic),
// and Verify accepts them with the vector contexts.
func TestVectors(t *testing.T) {
	var vectors []vector
	for _, suite := range []string{"p256", "ed25519"} {
		c, err := trust.Open(filepath.Join("../../testdata/vectors", "context-"+suite), nil)
		if err != nil {
			t.Fatal(err)
		}
		o := vectorOrder(c)
		signed, err := Sign(c, o)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := hostcose.Parse(signed, ContentType)
		if err != nil {
			t.Fatal(err)
		}
		file := "order-" + suite + ".cose"
		path := filepath.Join(vectorsDir, file)
		if *update {
			if err := os.WriteFile(path, signed, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		stored, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(stored, signed) {
			t.Errorf("%s: Sign makes other bytes than the vector (go test -update to rewrite it)", file)
		}
		validAt := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
		got, err := Verify(c, stored, validAt)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if got.IDString() != "000102030405060708090a0b0c0d0e0f" || got.Count != 5 || got.Lines["line-2"] != 2 || !got.AllowsStation(o.Stations[0]) {
			t.Errorf("%s read back as %+v", file, got)
		}
		if _, err := Verify(c, stored, o.NotAfter); err == nil {
			t.Errorf("%s accepted at its not-after", file)
		}
		vectors = append(vectors, vector{
			Description: "a production order (docs/production.md) signed by the root key of testdata/vectors/context-" + suite,
			Context:     "testdata/vectors/context-" + suite,
			ID:          got.IDString(),
			Payload:     hex.EncodeToString(msg.Payload),
			File:        file,
			ValidAt:     validAt.Format(time.RFC3339),
			ExpiredAt:   o.NotAfter.Format(time.RFC3339),
		})
	}
	js, err := json.MarshalIndent(vectors, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	js = append(js, '\n')
	path := filepath.Join(vectorsDir, "vectors.json")
	if *update {
		if err := os.WriteFile(path, js, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if stored, err := os.ReadFile(path); err != nil || !bytes.Equal(stored, js) {
		t.Errorf("vectors.json differs (go test -update to rewrite it): %v", err)
	}
}
