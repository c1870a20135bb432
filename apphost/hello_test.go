package apphost

import (
	"encoding/hex"
	"strings"
	"testing"
)

// TestHello runs the hello application from a device's primary slot with
// the services: its output is on the UART, boot info comes from the
// services, and an attestation request over the UART gets a token.
func TestHello(t *testing.T) {
	v := newDevice(t, apps["hello"])
	fake := newFake(1 << 20)
	v.app.Services = fake
	done := v.start(t.Context(), &Options{}, nil)
	v.waitFor("send a nonce")
	out := v.out.String()
	for _, want := range []string{
		"hello: hello, world (build test-hello)",
		"hello: application 1.2.3 on SBM 0.1.0-test",
		"hello: device deadbeef000000000000000000000000, locked, security counter 7",
		"hello: measurement " + hex.EncodeToString(v.app.Digest[:]),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	nonce := []byte("0123456789abcdef")
	v.send(hex.EncodeToString(nonce))
	v.waitFor("token " + hex.EncodeToString(fakeToken(nonce)))
	v.send("zz")
	v.waitFor("error: nonce")
	v.send("0102")
	v.waitFor("error: sdk: attest: bad argument (code 101)")
	v.send("quit")
	res := <-done
	if !res.ran || res.err != nil {
		t.Fatalf("Run: ran %v, err %v (stop %v)", res.ran, res.err, res.stop.Reason)
	}
	v.waitFor("hello: bye")
}
