package secpkg

import (
	"bytes"
	"encoding/binary"
	"testing"
)

func TestContainer(t *testing.T) {
	man, upk, pay := bytes.Repeat([]byte{1}, 100), bytes.Repeat([]byte{2}, 50), bytes.Repeat([]byte{3}, 40)
	upks := func(n int) []record {
		var r []record
		for j := 0; j < n; j++ {
			r = append(r, record{2, upk})
		}
		return r
	}
	recs := func(rs ...[]record) []record {
		var out []record
		for _, r := range rs {
			out = append(out, r...)
		}
		return out
	}
	M, P := []record{{1, man}}, []record{{3, pay}}
	valid := container(recs(M, upks(2), P)...)
	withHeader := func(off int, b byte) []byte {
		v := bytes.Clone(valid)
		v[off] = b
		return v
	}
	tests := []struct {
		name string
		file []byte
		want []error
	}{
		{"valid", valid, nil},
		{"no upk", container(recs(M, P)...), nil},
		{"16 upks", container(recs(M, upks(16), P)...), nil},
		{"17 upks", container(recs(M, upks(17), P)...), []error{ErrTooLarge}},
		{"empty", nil, []error{ErrTruncated}},
		{"magic only", Magic[:], []error{ErrTruncated}},
		{"bad magic", withHeader(1, 'X'), []error{ErrMalformed}},
		{"flags", withHeader(9, 1), []error{ErrMalformed}},
		{"reserved", withHeader(11, 1), []error{ErrMalformed}},
		{"unknown type", withHeader(8, 4), []error{ErrMalformed}},
		{"type 0", withHeader(8, 0), []error{ErrMalformed}},
		{"upk first", container(recs(upks(1), M, P)...), []error{ErrMalformed}},
		{"payload first", container(recs(P, M)...), []error{ErrMalformed}},
		{"two manifests", container(recs(M, M, P)...), []error{ErrMalformed}},
		{"upk after payload", container(recs(M, P, upks(1))...), []error{ErrTrailingData}},
		{"two payloads", container(recs(M, P, P)...), []error{ErrTrailingData}},
		{"no payload", container(recs(M, upks(1))...), []error{ErrTruncated}},
		{"trailing byte", append(bytes.Clone(valid), 0), []error{ErrTrailingData}},
		{"cut in payload", valid[:len(valid)-1], []error{ErrTruncated}},
		{"cut in header", container(M...)[:8+100+8+4], []error{ErrTruncated}},
		{"manifest 2049 bytes", container(record{1, make([]byte, 2049)}, record{3, pay}), []error{ErrTooLarge}},
		{"manifest 2048 bytes", container(record{1, make([]byte, 2048)}, record{3, pay}), nil},
		{"upk 2049 bytes", container(record{1, man}, record{2, make([]byte, 2049)}, record{3, pay}), []error{ErrTooLarge}},
	}
	for _, tt := range tests {
		c, err := ParseContainer(bytes.NewReader(tt.file), int64(len(tt.file)))
		checkErr(t, tt.name, err, tt.want...)
		if err == nil && tt.name == "valid" {
			if c.Manifest != (Span{16, 100}) || c.NumUPKs != 2 || c.UPKs[1] != (Span{16 + 100 + 8 + 50 + 8, 50}) ||
				c.Payload != (Span{int64(len(valid) - 40), 40}) {
				t.Errorf("spans %+v", c)
			}
		}
	}
	// A huge declared length does not make the parser read or allocate it.
	huge := container(M...)
	huge = append(huge, 3, 0, 0, 0, 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(huge[len(huge)-4:], 0xffffffff)
	_, err := ParseContainer(bytes.NewReader(huge), int64(len(huge)))
	checkErr(t, "huge length", err, ErrTruncated)

	c, _ := ParseContainer(bytes.NewReader(valid), int64(len(valid)))
	m := &Manifest{PayloadSize: 24, ChunkSize: 256}
	checkErr(t, "payload size matches", c.CheckPayload(m))
	m.PayloadSize = 25
	checkErr(t, "payload record short", c.CheckPayload(m), ErrTruncated)
	m.PayloadSize = 23
	checkErr(t, "payload record long", c.CheckPayload(m), ErrTrailingData)
}
