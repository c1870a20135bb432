package client

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/sbm-project/sbm/wire"
)

// TestHelloIgnoresStaleReplies plays a device whose line still holds the
// answers of an earlier session (as a pty buffers them while nobody reads):
// a HELLO reply with the same sequence number but no nonce arrives first.
// The client must take only the reply that echoes its nonce.
func TestHelloIgnoresStaleReplies(t *testing.T) {
	host, dev := net.Pipe()
	defer dev.Close()
	c := New(host)
	defer c.Close()
	go func() {
		var fr wire.FrameReader
		buf := make([]byte, 256)
		for {
			n, err := dev.Read(buf)
			if err != nil {
				return
			}
			p := buf[:n]
			for len(p) > 0 {
				used, f, ok := fr.Push(p)
				p = p[used:]
				if !ok || f.Type != wire.TypeHello {
					continue
				}
				var h wire.Hello
				if err := h.DecodeCBOR(f.Body); err != nil {
					return
				}
				stale := wire.HelloReply{Version: 1, MaxData: 256, Window: 256, Inactivity: 1000, MaxFrame: 4134}
				fresh := wire.HelloReply{Version: 1, MaxData: 1024, Window: 4096, Inactivity: 1000, MaxFrame: 4134, Nonce: h.Nonce}
				out := wire.AppendFrame(nil, wire.TypeHelloReply, f.Seq, stale.AppendCBOR(nil))
				out = wire.AppendFrame(out, wire.TypeHelloReply, f.Seq, fresh.AppendCBOR(nil))
				dev.Write(out)
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p, err := c.Hello(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p.MaxData != 1024 || p.Window != 4096 {
		t.Fatalf("client took the stale reply: %+v", p)
	}
}

// TestHelloIgnoresStaleErrors: an error answer with the HELLO's sequence
// number (left over from an earlier session's request) must not abort the
// HELLO when the real reply follows; a device that only refuses is
// reported.
func TestHelloIgnoresStaleErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		answerOK bool
	}{{"stale error then reply", true}, {"only a refusal", false}} {
		t.Run(tc.name, func(t *testing.T) {
			host, dev := net.Pipe()
			defer dev.Close()
			c := New(host)
			defer c.Close()
			c.SetTimeout(300 * time.Millisecond)
			go func() {
				var fr wire.FrameReader
				buf := make([]byte, 256)
				for {
					n, err := dev.Read(buf)
					if err != nil {
						return
					}
					p := buf[:n]
					for len(p) > 0 {
						used, f, ok := fr.Push(p)
						p = p[used:]
						if !ok || f.Type != wire.TypeHello {
							continue
						}
						var h wire.Hello
						h.DecodeCBOR(f.Body)
						refusal := wire.Result{Code: wire.CodeState, Detail: "hello first"}
						out := wire.AppendFrame(nil, wire.TypeResult, f.Seq, refusal.AppendCBOR(nil))
						if tc.answerOK {
							r := wire.HelloReply{Version: 1, MaxData: 1024, Window: 4096, Inactivity: 1000, MaxFrame: 4134, Nonce: h.Nonce}
							out = wire.AppendFrame(out, wire.TypeHelloReply, f.Seq, r.AppendCBOR(nil))
						}
						dev.Write(out)
					}
				}
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := c.Hello(ctx)
			if tc.answerOK && err != nil {
				t.Fatalf("a stale error aborted the HELLO: %v", err)
			}
			if !tc.answerOK && err == nil {
				t.Fatal("a device that only refuses was accepted")
			}
		})
	}
}
