package demo

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"testing"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/sbm"
	"github.com/sbm-project/sbm/vmcu"
)

// testRecord returns a well-formed secure-storage record (sbm/storage.go)
// with PUF helper data, a counter and a signature-table entry for version,
// and a MAC of zeros.
func testRecord(seq uint32, version string) []byte {
	tlv := func(b []byte, tag byte, v []byte) []byte {
		b = append(b, tag)
		b = binary.LittleEndian.AppendUint16(b, uint16(len(v)))
		return append(b, v...)
	}
	var body []byte
	body = tlv(body, 9, make([]byte, hal.PUFHelperSize))
	body = tlv(body, 11, []byte{2, 0, 0, 0})
	app := binary.LittleEndian.AppendUint32(nil, 1000)
	app = append(app, bytes.Repeat([]byte{0xAA}, 32)...) // image digest
	app = append(app, bytes.Repeat([]byte{0xBB}, 32)...) // manifest digest
	app = binary.LittleEndian.AppendUint32(app, 2)
	body = tlv(body, 13, append(app, version...))
	rec := append([]byte("SBM2"), binary.LittleEndian.AppendUint32(nil, seq)...)
	rec = binary.LittleEndian.AppendUint32(rec, uint32(len(body)))
	rec = append(rec, body...)
	sum := sha256.Sum256(rec)
	rec = append(rec, sum[:]...)
	return append(rec, make([]byte, 32)...)
}

func TestForgeTable(t *testing.T) {
	b, err := vmcu.LookupBoard("default")
	if err != nil {
		t.Fatal(err)
	}
	g := b.Geometry
	img := bytes.Repeat([]byte{g.Erased}, int(g.Size))
	if _, err := forgeTable(img, g, 1, [32]byte{}); err == nil {
		t.Fatal("forgeTable found a record in erased flash")
	}
	r, _ := g.Region(hal.RegionSecure)
	first, _ := g.SectorAt(r.Start)
	last, _ := g.SectorAt(r.End() - 1)
	bank1 := g.Sectors[first+(last-first+1)/2].Start
	older, newer := testRecord(6, "1.0.0"), testRecord(7, "2.0.0")
	copy(img[r.Start:], older)
	copy(img[bank1:], newer)

	digest := sha256.Sum256(attackerCode)
	seq, err := forgeTable(img, g, uint32(len(attackerCode)), digest)
	if err != nil || seq != 7 {
		t.Fatalf("forgeTable = %d, %v; want the newest record, 7", seq, err)
	}
	st, err := sbm.ReadState(&imageFlash{g, img}, nil) // integrity only
	if err != nil {
		t.Fatal(err)
	}
	if st.Seq != 7 || st.App == nil || st.App.Digest != digest || st.App.Size != uint32(len(attackerCode)) ||
		st.App.Version != "2.0.0" || st.App.SecurityCounter != 2 || st.App.ManifestDigest[0] != 0xBB {
		t.Fatalf("after the forgery the integrity-only view reads %+v, %+v", st, st.App)
	}
	if !bytes.Equal(img[r.Start:r.Start+uint32(len(older))], older) {
		t.Error("the older record changed")
	}
	if end := bank1 + uint32(len(newer)); !bytes.Equal(img[end-32:end], newer[len(newer)-32:]) {
		t.Error("the MAC changed")
	}
}
