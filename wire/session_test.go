package wire_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sbm-project/sbm/wire"
	"github.com/sbm-project/sbm/wire/internal/wiretest"
)

// host builds a request stream.
type host struct {
	b   []byte
	seq uint8
}

type body interface{ AppendCBOR([]byte) []byte }

func (h *host) req(t wire.Type, m body) *host {
	h.seq++
	var b []byte
	if m == nil {
		b = wire.AppendEmpty(nil)
	} else {
		b = m.AppendCBOR(nil)
	}
	h.b = wire.AppendFrame(h.b, t, h.seq, b)
	return h
}

func (h *host) hello() *host {
	return h.req(wire.TypeHello, &wire.Hello{MinVersion: 1, MaxVersion: 1})
}

func (h *host) data(off int, p []byte) *host {
	return h.req(wire.TypeData, &wire.Data{Offset: uint32(off), Bytes: p})
}

// serve runs a Session over the scripted input and returns how it ended
// and the response frames.
func serve(t *testing.T, tg wire.Target, cfg wire.Config, in []byte) (wire.EndReason, []wire.Frame, *wire.Session) {
	t.Helper()
	u := &wiretest.UART{In: in, Chunk: 61}
	if cfg.Inactivity == 0 {
		cfg.Inactivity = time.Second
	}
	s := wire.NewSession(u, u, tg, cfg)
	end, err := s.Serve()
	if err != nil {
		t.Fatalf("Serve: %v", err)
	}
	return end, wiretest.Frames(u.Out), s
}

// expect is one expected response: its type and, for ACK/NAK its offset,
// for RESULT its code.
type expect struct {
	typ  wire.Type
	arg  uint32
	desc string
}

func check(t *testing.T, got []wire.Frame, want []expect) {
	t.Helper()
	if len(got) != len(want) {
		for _, f := range got {
			t.Logf("got %#02x seq %d %x", uint8(f.Type), f.Seq, f.Body)
		}
		t.Fatalf("got %d responses, want %d", len(got), len(want))
	}
	for i, w := range want {
		f := got[i]
		if f.Type != w.typ {
			t.Fatalf("response %d (%s): type %#02x, want %#02x (%x)", i, w.desc, uint8(f.Type), uint8(w.typ), f.Body)
		}
		if f.Seq != uint8(i+1) {
			t.Fatalf("response %d (%s): seq %d, want %d", i, w.desc, f.Seq, i+1)
		}
		switch f.Type {
		case wire.TypeAck, wire.TypeNak:
			var a wire.Ack
			if err := a.DecodeCBOR(f.Body); err != nil || a.Offset != w.arg {
				t.Fatalf("response %d (%s): offset %d (%v), want %d", i, w.desc, a.Offset, err, w.arg)
			}
		case wire.TypeResult:
			var r wire.Result
			if err := r.DecodeCBOR(f.Body); err != nil || uint32(r.Code) != w.arg {
				t.Fatalf("response %d (%s): code %v %q (%v), want %v", i, w.desc, r.Code, r.Detail, err, wire.Code(w.arg))
			}
		}
	}
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

func TestSessionHelloFirst(t *testing.T) {
	h := new(host).req(wire.TypeInfo, nil).
		req(wire.TypeHello, &wire.Hello{MinVersion: 2, MaxVersion: 9}).
		hello().
		req(wire.TypeInfo, nil).
		req(0x42, nil).
		req(wire.TypeAck, &wire.Ack{}) // a response type: ignored, no answer
	end, got, s := serve(t, wiretest.NewTarget(), wire.Config{}, h.b)
	if end != wire.EndTimeout {
		t.Fatalf("end %v", end)
	}
	check(t, got, []expect{
		{wire.TypeResult, uint32(wire.CodeState), "info before hello"},
		{wire.TypeResult, uint32(wire.CodeUnsupported), "no common version"},
		{wire.TypeHelloReply, 0, "hello"},
		{wire.TypeInfoReply, 0, "info"},
		{wire.TypeResult, uint32(wire.CodeUnsupported), "unknown request"},
	})
	var hr wire.HelloReply
	if err := hr.DecodeCBOR(got[2].Body); err != nil || hr.Version != 1 || hr.MaxData != wire.DefaultMaxData || hr.Window != 4*wire.DefaultMaxData || hr.Inactivity != 1000 {
		t.Fatalf("hello reply %+v, %v", hr, err)
	}
	var info wire.DeviceInfo
	if err := info.DecodeCBOR(got[3].Body); err != nil || info.SBMVersion != "1.0.0" || len(info.ID) != 16 {
		t.Fatalf("info %+v, %v", info, err)
	}
	if st := s.Stats(); st.Ignored != 1 || st.Requests != 5 {
		t.Fatalf("stats %+v", st)
	}
}

func TestSessionTransfer(t *testing.T) {
	pkg := pattern(1000)
	cap := wire.Config{MaxData: 100}
	tests := []struct {
		name   string
		script func(h *host)
		want   []expect
		stored int
		end    wire.EndReason
	}{
		{"in order, finish, reset", func(h *host) {
			h.hello().req(wire.TypeBegin, &wire.Begin{Size: 1000})
			for off := 0; off < 1000; off += 100 {
				h.data(off, pkg[off:off+100])
			}
			h.req(wire.TypeFinish, nil).req(wire.TypeFinish, nil).req(wire.TypeReset, nil)
		}, append(append([]expect{{wire.TypeHelloReply, 0, "hello"}, {wire.TypeResult, 0, "begin"}},
			acks(100, 1000, 100)...), expect{wire.TypeResult, 0, "finish"}, expect{wire.TypeResult, 0, "finish again"},
			expect{wire.TypeResult, 0, "reset"}), 1000, wire.EndInstalled},
		{"duplicate, gap, overlap", func(h *host) {
			h.hello().req(wire.TypeBegin, &wire.Begin{Size: 1000})
			h.data(0, pkg[:100]).data(0, pkg[:100]).data(200, pkg[200:300]).data(50, pkg[50:150]).data(100, pkg[100:200])
			h.req(wire.TypeStatus, nil).req(wire.TypeFinish, nil).req(wire.TypeReset, nil)
		}, []expect{{wire.TypeHelloReply, 0, "hello"}, {wire.TypeResult, 0, "begin"},
			{wire.TypeAck, 100, "first"}, {wire.TypeAck, 100, "duplicate"}, {wire.TypeNak, 100, "gap"},
			{wire.TypeAck, 100, "overlap"}, {wire.TypeAck, 200, "resent"}, {wire.TypeStatusReply, 0, "status"},
			{wire.TypeResult, uint32(wire.CodeState), "finish incomplete"}, {wire.TypeResult, 0, "reset"}}, 200, wire.EndReset},
		{"data before begin, beyond size, too large", func(h *host) {
			h.hello().data(0, pkg[:10]).req(wire.TypeBegin, &wire.Begin{Size: 10}).data(0, pkg[:11]).
				data(0, pattern(101)).data(0, pkg[:10])
		}, []expect{{wire.TypeHelloReply, 0, "hello"}, {wire.TypeResult, uint32(wire.CodeState), "no transfer"},
			{wire.TypeResult, 0, "begin"}, {wire.TypeResult, uint32(wire.CodeOffset), "beyond size"},
			{wire.TypeResult, uint32(wire.CodeTooLarge), "over max data"}, {wire.TypeAck, 10, "data"}}, 10, wire.EndTimeout},
		{"begin too large, malformed", func(h *host) {
			h.hello().req(wire.TypeBegin, &wire.Begin{Size: 1 << 30}).req(wire.TypeBegin, &wire.Hello{MinVersion: 1, MaxVersion: 1}).
				req(wire.TypeFinish, nil)
		}, []expect{{wire.TypeHelloReply, 0, "hello"}, {wire.TypeResult, uint32(wire.CodeTooLarge), "too large"},
			{wire.TypeResult, uint32(wire.CodeMalformed), "malformed"}, {wire.TypeResult, uint32(wire.CodeTooLarge), "finish repeats the failure"}}, 0, wire.EndTimeout},
		{"abort", func(h *host) {
			h.hello().req(wire.TypeBegin, &wire.Begin{Size: 1000}).data(0, pkg[:100]).req(wire.TypeAbort, nil).data(100, pkg[100:200])
		}, []expect{{wire.TypeHelloReply, 0, "hello"}, {wire.TypeResult, 0, "begin"}, {wire.TypeAck, 100, "data"},
			{wire.TypeResult, 0, "abort"}, {wire.TypeResult, uint32(wire.CodeState), "data after abort"}}, 100, wire.EndTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := new(host)
			tt.script(h)
			tg := wiretest.NewTarget()
			tg.Capacity = 1 << 20
			end, got, _ := serve(t, tg, cap, h.b)
			check(t, got, tt.want)
			if end != tt.end {
				t.Fatalf("end %v, want %v", end, tt.end)
			}
			if st := tg.Stored(); !bytes.Equal(st, pkg[:tt.stored]) {
				t.Fatalf("stored %d bytes, want the first %d of the package", len(st), tt.stored)
			}
		})
	}
}

func acks(from, to, step int) []expect {
	var e []expect
	for off := from; off <= to; off += step {
		e = append(e, expect{wire.TypeAck, uint32(off), "data"})
	}
	return e
}

func TestSessionTargetErrors(t *testing.T) {
	pkg := pattern(300)
	tg := wiretest.NewTarget()
	tg.FailAt, tg.FailErr = 150, wire.Errorf(wire.CodeSignature, "manifest signature does not verify")
	h := new(host).hello().req(wire.TypeBegin, &wire.Begin{Size: 300}).
		data(0, pkg[:100]).data(100, pkg[100:200]).data(200, pkg[200:300]).
		req(wire.TypeStatus, nil).req(wire.TypeFinish, nil)
	_, got, _ := serve(t, tg, wire.Config{MaxData: 100}, h.b)
	check(t, got, []expect{{wire.TypeHelloReply, 0, ""}, {wire.TypeResult, 0, "begin"}, {wire.TypeAck, 100, ""},
		{wire.TypeResult, uint32(wire.CodeSignature), "write fails"}, {wire.TypeResult, uint32(wire.CodeState), "after failure"},
		{wire.TypeStatusReply, 0, ""}, {wire.TypeResult, uint32(wire.CodeSignature), "finish repeats the failure"}})
	var r wire.Result
	if err := r.DecodeCBOR(got[3].Body); err != nil || r.Detail != "manifest signature does not verify" {
		t.Fatalf("detail %q, %v", r.Detail, err)
	}
	var st wire.StatusReply
	if err := st.DecodeCBOR(got[5].Body); err != nil || st.State != wire.StateIdle || st.Code != wire.CodeSignature {
		t.Fatalf("status %+v, %v", st, err)
	}
	if _, _, aborts, _ := tg.Counts(); aborts != 1 {
		t.Fatalf("%d aborts, want 1", aborts)
	}

	// Finish fails: the code reaches the host, the session is not installed.
	tg = wiretest.NewTarget()
	tg.FinishErr = wire.Errorf(wire.CodeDigest, "plaintext digest mismatch")
	h = new(host).hello().req(wire.TypeBegin, &wire.Begin{Size: 100}).data(0, pkg[:100]).
		req(wire.TypeFinish, nil).req(wire.TypeReset, nil)
	end, got, _ := serve(t, tg, wire.Config{}, h.b)
	check(t, got, []expect{{wire.TypeHelloReply, 0, ""}, {wire.TypeResult, 0, ""}, {wire.TypeAck, 100, ""},
		{wire.TypeResult, uint32(wire.CodeDigest), "finish"}, {wire.TypeResult, 0, "reset"}})
	if end != wire.EndReset {
		t.Fatalf("end %v after a failed install", end)
	}
}

// TestSessionInactivity: silence and garbage both end the session; only
// valid requests keep it alive.
func TestSessionInactivity(t *testing.T) {
	tests := []struct {
		name  string
		input func(u *wiretest.UART, i int)
	}{
		{"silence", func(u *wiretest.UART, i int) {}},
		{"garbage", func(u *wiretest.UART, i int) { u.In = []byte{1, 2, 3, 0, 0xFF, 0} }},
		{"bad CRC", func(u *wiretest.UART, i int) {
			f := wire.AppendFrame(nil, wire.TypeStatus, 1, wire.AppendEmpty(nil))
			f[2] ^= 1
			u.In = f
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			u := &wiretest.UART{}
			u.OnIdle = func(u *wiretest.UART) {
				calls++
				if calls < 10000 {
					u.T += 100 * time.Millisecond
					tt.input(u, calls)
				}
			}
			s := wire.NewSession(u, u, wiretest.NewTarget(), wire.Config{Inactivity: 5 * time.Second})
			end, err := s.Serve()
			if end != wire.EndTimeout || err != nil {
				t.Fatalf("Serve = %v, %v", end, err)
			}
			if calls > 60 {
				t.Fatalf("session lasted %d idle periods of 100 ms with a 5 s timeout", calls)
			}
		})
	}
	// Valid requests keep the session alive past the timeout.
	calls := 0
	u := &wiretest.UART{}
	u.OnIdle = func(u *wiretest.UART) {
		calls++
		if calls <= 200 {
			u.T += 100 * time.Millisecond
			u.In = wire.AppendFrame(nil, wire.TypeStatus, 1, wire.AppendEmpty(nil))
		}
	}
	end, _ := wire.NewSession(u, u, wiretest.NewTarget(), wire.Config{Inactivity: time.Second}).Serve()
	if end != wire.EndTimeout || calls <= 200 {
		t.Fatalf("end %v after %d requests", end, calls)
	}
}

type brokenUART struct{ wiretest.UART }

var errBroken = errors.New("uart broken")

func (b *brokenUART) Read(p []byte, timeout time.Duration) (int, error) { return 0, errBroken }

func TestSessionLinkFailure(t *testing.T) {
	u := &brokenUART{}
	end, err := wire.NewSession(u, u, wiretest.NewTarget(), wire.Config{}).Serve()
	if end != wire.EndLink || !errors.Is(err, errBroken) {
		t.Fatalf("Serve = %v, %v", end, err)
	}
}

// garbage returns a random stream: random bytes, frames with a valid CRC
// and random type and body, and oversized frames.
func garbage(r *rand.Rand, n int) []byte {
	var b []byte
	for len(b) < n {
		switch r.IntN(4) {
		case 0:
			p := make([]byte, r.IntN(300))
			for i := range p {
				p[i] = byte(r.Uint32())
			}
			b = append(b, p...)
		case 1, 2:
			body := make([]byte, r.IntN(64))
			for i := range body {
				body[i] = byte(r.Uint32())
			}
			if r.IntN(2) == 0 && len(body) > 0 {
				body[0] = 0xA0 | byte(r.IntN(4)) // a map head, to get further into the decoders
			}
			b = wire.AppendFrame(b, wire.Type(r.Uint32()), uint8(r.Uint32()), body)
		default:
			p := make([]byte, wire.MaxEncoded+r.IntN(2000))
			for i := range p {
				p[i] = byte(r.Uint32()) | 1
			}
			b = append(append(b, p...), 0)
		}
	}
	return b
}

// TestSessionGarbage feeds random garbage and then checks that the
// session still answers INFO correctly and never touched the Target.
func TestSessionGarbage(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for round := 0; round < 20; round++ {
		tg := wiretest.NewTarget()
		in := garbage(r, 200_000)
		in = append(in, 0) // end any partial frame, as a host does on connecting
		in = append(in, new(host).hello().req(wire.TypeInfo, nil).b...)
		u := &wiretest.UART{In: in, Chunk: 1 + r.IntN(300)}
		s := wire.NewSession(u, u, tg, wire.Config{Inactivity: time.Hour})
		if end, err := s.Serve(); end != wire.EndTimeout || err != nil {
			// Garbage may contain a valid RESET; that is a legitimate end.
			if end != wire.EndReset {
				t.Fatalf("round %d: Serve = %v, %v", round, end, err)
			}
			continue
		}
		frames := wiretest.Frames(u.Out)
		last := frames[len(frames)-1]
		var info wire.DeviceInfo
		if last.Type != wire.TypeInfoReply || info.DecodeCBOR(last.Body) != nil || info.SBMVersion != "1.0.0" {
			t.Fatalf("round %d: last response %#02x %x", round, uint8(last.Type), last.Body)
		}
		if begins, writes, _, finishes := tg.Counts(); writes != 0 || finishes != 0 || begins != 0 {
			t.Fatalf("round %d: garbage reached the target: %d begins, %d writes, %d finishes", round, begins, writes, finishes)
		}
		if st := s.Stats(); st.Oversized == 0 || st.BadCRC+st.Malformed == 0 {
			t.Fatalf("round %d: stats %+v", round, st)
		}
	}
}
