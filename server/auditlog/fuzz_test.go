package auditlog

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func FuzzParseEntry(f *testing.F) {
	for _, e := range sampleEntries() {
		b, err := e.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseEntry(b)
		if err != nil {
			return
		}
		// Only canonical encodings decode: re-encoding gives the input.
		again, err := e.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded %+v does not encode: %v", e, err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("decoded %x, re-encoded %x", b, again)
		}
	})
}

func exportSeeds(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join(vectorsDir, "log.export")); err == nil {
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte{0x82, 0x6c, 's', 'b', 'm', '-', 'a', 'u', 'd', 'i', 't', 'l', 'o', 'g', 0x01})
	f.Add([]byte{})
}

func FuzzDecodeExport(f *testing.F) {
	exportSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		ef, err := decodeExport(b)
		if err != nil {
			return
		}
		// What decodes re-encodes to the same bytes, record by record.
		out := append([]byte(nil), b[:15]...)
		ei, ci := 0, 0
		for rec := 1; ei < len(ef.entries) || ci < len(ef.checkpoints); rec++ {
			switch {
			case ei < len(ef.entries) && ef.entries[ei].record == rec:
				out = appendEntryRecord(out, ef.entries[ei].index, ef.entries[ei].data)
				ei++
			case ci < len(ef.checkpoints) && ef.checkpoints[ci].record == rec:
				out = appendCheckpointRecord(out, ef.checkpoints[ci].data)
				ci++
			default:
				t.Fatalf("record %d missing", rec)
			}
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("decoded %x, re-encoded %x", b, out)
		}
	})
}

func FuzzAudit(f *testing.F) {
	exportSeeds(f)
	pub := testKey().Public()
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, err := Audit(bytes.NewReader(b), pub, nil)
		if err == nil && (rep.Latest == nil) != (rep.Size == 0) {
			t.Fatalf("report %+v", rep)
		}
	})
}
