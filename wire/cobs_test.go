package wire

import (
	"bytes"
	"encoding/hex"
	"math/rand/v2"
	"testing"
)

func seq(from, to int) []byte {
	var b []byte
	for i := from; i <= to; i++ {
		b = append(b, byte(i))
	}
	return b
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// TestCOBSVectors checks the encoder against the examples of the COBS
// paper and Wikipedia, including 0x00 runs and 254/255-byte blocks.
func TestCOBSVectors(t *testing.T) {
	tests := []struct {
		name    string
		in, enc []byte
	}{
		{"empty", nil, []byte{0x01}},
		{"one zero", []byte{0}, []byte{0x01, 0x01}},
		{"two zeros", []byte{0, 0}, []byte{0x01, 0x01, 0x01}},
		{"zero run", make([]byte, 5), []byte{1, 1, 1, 1, 1, 1}},
		{"zero inside", []byte{0x11, 0x22, 0x00, 0x33}, []byte{0x03, 0x11, 0x22, 0x02, 0x33}},
		{"no zero", []byte{0x11, 0x22, 0x33, 0x44}, []byte{0x05, 0x11, 0x22, 0x33, 0x44}},
		{"trailing zeros", []byte{0x11, 0x00, 0x00, 0x00}, []byte{0x02, 0x11, 0x01, 0x01, 0x01}},
		{"253 non-zero", seq(1, 253), cat([]byte{0xFE}, seq(1, 253))},
		{"254 non-zero", seq(1, 254), cat([]byte{0xFF}, seq(1, 254))},
		{"255 non-zero", seq(1, 255), cat([]byte{0xFF}, seq(1, 254), []byte{0x02, 0xFF})},
		{"zero then 254", cat([]byte{0}, seq(1, 254)), cat([]byte{0x01, 0xFF}, seq(1, 254))},
		{"254 then zero", cat(seq(2, 255), []byte{0}), cat([]byte{0xFF}, seq(2, 255), []byte{0x01, 0x01})},
		{"253, zero, one", cat(seq(3, 255), []byte{0, 1}), cat([]byte{0xFE}, seq(3, 255), []byte{0x02, 0x01})},
		{"508 non-zero", cat(seq(1, 254), seq(1, 254)), cat([]byte{0xFF}, seq(1, 254), []byte{0xFF}, seq(1, 254))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := appendCOBS(nil, tt.in)
			want := append(append([]byte(nil), tt.enc...), 0)
			if !bytes.Equal(got, want) {
				t.Fatalf("encode:\n got %s\nwant %s", hex.EncodeToString(got), hex.EncodeToString(want))
			}
			dec, ok := decodeCOBS(tt.enc)
			if !ok || !bytes.Equal(dec, tt.in) {
				t.Fatalf("decode = %x, %v; want %x", dec, ok, tt.in)
			}
		})
	}
}

// decodeCOBS decodes one encoded frame without its delimiter.
func decodeCOBS(enc []byte) ([]byte, bool) {
	var d cobsDecoder
	var out []byte
	for _, b := range enc {
		if b == 0 {
			return nil, false
		}
		if v, ok := d.step(b); ok {
			out = append(out, v)
		}
	}
	if out == nil {
		out = []byte{}
	}
	return out, d.complete()
}

func TestCOBSRoundTripRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		n := r.IntN(1200)
		p := make([]byte, n)
		for j := range p {
			switch r.IntN(4) {
			case 0:
				p[j] = 0
			default:
				p[j] = byte(r.Uint32())
			}
		}
		if r.IntN(4) == 0 { // long non-zero runs
			for j := range p {
				p[j] |= 1
			}
		}
		enc := appendCOBS(nil, p)
		if bytes.IndexByte(enc[:len(enc)-1], 0) >= 0 || enc[len(enc)-1] != 0 {
			t.Fatalf("encoding of %d bytes contains a zero", n)
		}
		if max := n + n/254 + 2; len(enc) > max {
			t.Fatalf("encoding of %d bytes is %d bytes, over the bound %d", n, len(enc), max)
		}
		dec, ok := decodeCOBS(enc[:len(enc)-1])
		if !ok || !bytes.Equal(dec, p) {
			t.Fatalf("round trip of %d bytes failed", n)
		}
	}
}

func TestCOBSTruncated(t *testing.T) {
	for _, enc := range [][]byte{{0x03, 0x11}, {0xFF, 1, 2, 3}, {0x05}} {
		if _, ok := decodeCOBS(enc); ok {
			t.Errorf("decodeCOBS(%x) accepted a truncated block", enc)
		}
	}
}
