package wire

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// readAll pushes b through a fresh FrameReader in chunks of chunk bytes
// and returns the frames (with copied bodies) and the reader's stats.
func readAll(b []byte, chunk int) ([]Frame, ReaderStats) {
	var r FrameReader
	var out []Frame
	for len(b) > 0 {
		p := b[:min(chunk, len(b))]
		b = b[len(p):]
		for len(p) > 0 {
			n, f, ok := r.Push(p)
			p = p[n:]
			if ok {
				f.Body = append([]byte{}, f.Body...)
				out = append(out, f)
			}
		}
	}
	return out, r.Stats()
}

func TestFrameRoundTrip(t *testing.T) {
	bodies := [][]byte{
		{},
		{0},
		make([]byte, 300),
		bytes.Repeat([]byte{0xFF}, 1000),
		seq(1, 254),
		bytes.Repeat([]byte{0x5A}, MaxBody),
	}
	for _, chunk := range []int{1, 7, 256, 1 << 20} {
		var stream []byte
		for i, b := range bodies {
			stream = AppendFrame(stream, Type(i+1), uint8(200+i), b)
		}
		frames, st := readAll(stream, chunk)
		if len(frames) != len(bodies) || st.Frames != uint32(len(bodies)) {
			t.Fatalf("chunk %d: got %d frames, stats %+v", chunk, len(frames), st)
		}
		for i, f := range frames {
			if f.Type != Type(i+1) || f.Seq != uint8(200+i) || !bytes.Equal(f.Body, bodies[i]) {
				t.Fatalf("chunk %d: frame %d = %v/%d/%d bytes", chunk, i, f.Type, f.Seq, len(f.Body))
			}
		}
	}
}

func TestFrameMaxEncoded(t *testing.T) {
	for _, fill := range []byte{0, 1, 0xFF} {
		body := bytes.Repeat([]byte{fill}, MaxBody)
		f := AppendFrame(make([]byte, 0, MaxEncoded), TypeData, 1, body)
		if len(f) > MaxEncoded {
			t.Fatalf("fill %#x: encoded frame is %d bytes, MaxEncoded %d", fill, len(f), MaxEncoded)
		}
		if allocs := testing.AllocsPerRun(10, func() {
			AppendFrame(f[:0], TypeData, 1, body)
		}); allocs != 0 {
			t.Fatalf("AppendFrame allocates %v times into a buffer with room", allocs)
		}
	}
}

func TestFrameCRCFailure(t *testing.T) {
	good := AppendFrame(nil, TypeInfo, 9, []byte{0xA0})
	// Flip every bit of the encoded frame (except the delimiter); every
	// change must be rejected, never delivered as a different frame.
	for i := 0; i < len(good)-1; i++ {
		for bit := 0; bit < 8; bit++ {
			bad := append([]byte(nil), good...)
			bad[i] ^= 1 << bit
			frames, _ := readAll(bad, 64)
			for _, f := range frames {
				if f.Type != TypeInfo || f.Seq != 9 || !bytes.Equal(f.Body, []byte{0xA0}) {
					t.Fatalf("flip byte %d bit %d delivered a different frame %+v", i, bit, f)
				}
				if bad[i] != 0 {
					t.Fatalf("flip byte %d bit %d was not detected", i, bit)
				}
			}
		}
	}
	// A frame with a wrong CRC is counted and the next one still decodes.
	raw := []byte{byte(TypeInfo), 9, 0xA0, 1, 2, 3, 4}
	stream := append(appendCOBS(nil, raw), good...)
	frames, st := readAll(stream, 3)
	if len(frames) != 1 || st.BadCRC != 1 {
		t.Fatalf("got %d frames, stats %+v; want 1 frame and 1 bad CRC", len(frames), st)
	}
}

func TestFrameErrors(t *testing.T) {
	good := AppendFrame(nil, TypeStatus, 3, []byte{0xA0})
	oversized := appendCOBS(nil, bytes.Repeat([]byte{7}, MaxFrame+1))
	exact := AppendFrame(nil, TypeData, 1, bytes.Repeat([]byte{7}, MaxBody))
	tests := []struct {
		name   string
		stream []byte
		frames int
		want   ReaderStats
	}{
		{"empty frames", []byte{0, 0, 0}, 0, ReaderStats{}},
		{"oversized", oversized, 0, ReaderStats{Oversized: 1}},
		{"huge garbage", bytes.Repeat([]byte{0xFF}, 3*MaxEncoded), 0, ReaderStats{}},
		{"huge garbage then frame", append(append(bytes.Repeat([]byte{0xFF}, 3*MaxEncoded), 0), good...), 1, ReaderStats{Frames: 1, Oversized: 1}},
		{"largest frame", exact, 1, ReaderStats{Frames: 1}},
		{"oversized then good", append(oversized, good...), 1, ReaderStats{Frames: 1, Oversized: 1}},
		{"truncated block", []byte{0x09, 1, 2, 0}, 0, ReaderStats{Malformed: 1}},
		{"too short", appendCOBS(nil, []byte{1, 2, 3, 4, 5}), 0, ReaderStats{Malformed: 1}},
		{"truncated frame then good", append(good[:len(good)-3:len(good)-3], append([]byte{0}, good...)...), 1, ReaderStats{Frames: 1, Malformed: 1}},
		{"missing delimiter", good[:len(good)-1], 0, ReaderStats{}},
		{"leading garbage", append([]byte{0x12, 0x34, 0x56, 0}, good...), 1, ReaderStats{Frames: 1, Malformed: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, chunk := range []int{1, 100, 1 << 20} {
				frames, st := readAll(tt.stream, chunk)
				if len(frames) != tt.frames || st != tt.want {
					t.Fatalf("chunk %d: %d frames, stats %+v; want %d, %+v", chunk, len(frames), st, tt.frames, tt.want)
				}
			}
		})
	}
}

// TestFrameReaderRandom: random streams never panic and the reader
// delivers only frames whose CRC is correct.
func TestFrameReaderRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var fr FrameReader
	buf := make([]byte, 5000)
	for i := 0; i < 500; i++ {
		n := r.IntN(len(buf))
		for j := range buf[:n] {
			buf[j] = byte(r.Uint32())
			if r.IntN(50) == 0 {
				buf[j] = 0
			}
		}
		p := buf[:n]
		for len(p) > 0 {
			k, f, ok := fr.Push(p)
			p = p[k:]
			if ok && len(f.Body) > MaxBody {
				t.Fatalf("body of %d bytes", len(f.Body))
			}
		}
	}
}

// TestCRCCheckValue pins the CRC variant the spec names: a frame's last
// four bytes before COBS are the CRC-32C (check value 0xE3069283 over
// "123456789") of type, sequence number and body, little-endian.
func TestCRCCheckValue(t *testing.T) {
	body := []byte("3456789")
	enc := AppendFrame(nil, Type('1'), '2', body)
	raw, ok := decodeCOBS(enc[:len(enc)-1]) // without the delimiter
	if !ok {
		t.Fatal("frame does not decode")
	}
	if got := binary.LittleEndian.Uint32(raw[len(raw)-4:]); got != 0xE3069283 {
		t.Fatalf("CRC-32C(123456789) = %#x", got)
	}
}
