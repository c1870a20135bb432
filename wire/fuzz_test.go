package wire_test

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/sbm-project/sbm/wire"
	"github.com/sbm-project/sbm/wire/internal/wiretest"
)

// FuzzFrameDecode: the COBS/CRC decoder never panics, never delivers more
// than MaxBody, and every frame it delivers re-encodes to a frame that
// decodes to the same thing.
func FuzzFrameDecode(f *testing.F) {
	f.Add(wire.AppendFrame(nil, wire.TypeInfo, 1, wire.AppendEmpty(nil)), uint16(3))
	f.Add(append([]byte{0, 0, 1, 2}, wire.AppendFrame(nil, wire.TypeData, 7, make([]byte, 600))...), uint16(100))
	f.Add(bytes.Repeat([]byte{0xFF}, 5000), uint16(4096))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint16) {
		var r wire.FrameReader
		c := max(1, int(chunk))
		for len(data) > 0 {
			p := data[:min(c, len(data))]
			data = data[len(p):]
			for len(p) > 0 {
				n, fr, ok := r.Push(p)
				if n <= 0 || n > len(p) {
					t.Fatalf("Push consumed %d of %d", n, len(p))
				}
				p = p[n:]
				if !ok {
					continue
				}
				if len(fr.Body) > wire.MaxBody {
					t.Fatalf("body of %d bytes", len(fr.Body))
				}
				enc := wire.AppendFrame(nil, fr.Type, fr.Seq, fr.Body)
				got := wiretest.Frames(enc)
				if len(got) != 1 || got[0].Type != fr.Type || got[0].Seq != fr.Seq || !bytes.Equal(got[0].Body, fr.Body) {
					t.Fatalf("re-encoded frame does not round-trip")
				}
			}
		}
	})
}

// FuzzMessageDecode: every body decoder rejects or accepts without
// panicking, and what it accepts re-encodes to something it decodes to the
// same value.
func FuzzMessageDecode(f *testing.F) {
	f.Add(uint8(0), (&wire.Hello{MinVersion: 1, MaxVersion: 1}).AppendCBOR(nil))
	f.Add(uint8(4), (&wire.Data{Offset: 3, Bytes: []byte{1, 2}}).AppendCBOR(nil))
	f.Add(uint8(9), (&wire.DeviceInfo{ID: []byte{1}, SBMVersion: "x"}).AppendCBOR(nil))
	f.Add(uint8(8), (&wire.StatusReply{State: 1, Size: 9, Received: 3, Code: 5, Detail: "d"}).AppendCBOR(nil))
	f.Add(uint8(7), (&wire.Result{Code: 8, Detail: "bad"}).AppendCBOR(nil))
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		news := []func() codec{
			func() codec { return new(wire.Hello) },
			func() codec { return new(wire.HelloReply) },
			func() codec { return new(wire.GetCert) },
			func() codec { return new(wire.Begin) },
			func() codec { return new(wire.Data) },
			func() codec { return new(wire.Ack) },
			func() codec { return new(wire.CertReply) },
			func() codec { return new(wire.Result) },
			func() codec { return new(wire.StatusReply) },
			func() codec { return new(wire.DeviceInfo) },
		}
		_ = wire.DecodeEmpty(body)
		m := news[int(which)%len(news)]()
		if err := m.DecodeCBOR(body); err != nil {
			return
		}
		again := news[int(which)%len(news)]()
		if err := again.DecodeCBOR(m.AppendCBOR(nil)); err != nil {
			t.Fatalf("%T: re-encoding of an accepted body is rejected: %v", m, err)
		}
		if !reflect.DeepEqual(m, again) {
			t.Fatalf("%T: %+v re-decodes as %+v", m, m, again)
		}
	})
}

type codec interface {
	AppendCBOR([]byte) []byte
	DecodeCBOR([]byte) error
}

// FuzzSession feeds arbitrary bytes to a Session: it must not panic, must
// keep the Target contract (in-order writes only after a successful
// BEGIN), and must end (inactivity) once the input is exhausted.
func FuzzSession(f *testing.F) {
	pkg := bytes.Repeat([]byte{0x5A}, 300)
	valid := new(host).hello().req(wire.TypeInfo, nil).req(wire.TypeBegin, &wire.Begin{Size: 300}).
		data(0, pkg[:200]).data(100, pkg[100:200]).data(200, pkg[200:]).req(wire.TypeStatus, nil).
		req(wire.TypeGetCert, &wire.GetCert{}).req(wire.TypeFinish, nil).req(wire.TypeReset, nil).b
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add(new(host).data(0, pkg).hello().data(0, pkg).b)
	f.Fuzz(func(t *testing.T, data []byte) {
		tg := wiretest.NewTarget()
		tg.Cert = []byte{0x30, 0x03, 1, 2, 3}
		tg.Capacity = 1 << 16
		u := &wiretest.UART{In: data, Chunk: 17}
		s := wire.NewSession(u, u, tg, wire.Config{MaxData: 128, Inactivity: time.Second})
		end, err := s.Serve()
		if err != nil || (end != wire.EndTimeout && end != wire.EndReset && end != wire.EndInstalled) {
			t.Fatalf("Serve = %v, %v", end, err)
		}
		begins, writes, _, _ := tg.Counts()
		if tg.Contract() != 0 {
			t.Fatalf("%d Target contract violations", tg.Contract())
		}
		if begins == 0 && writes != 0 {
			t.Fatalf("%d writes without BEGIN", writes)
		}
		for _, fr := range wiretest.Frames(u.Out) {
			if !fr.Type.IsResponse() {
				t.Fatalf("device sent request type %#02x", uint8(fr.Type))
			}
		}
	})
}
