package apphost

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestUpdater drives the updater application over the UART: boot info with
// the last update's result, the certificate chain, sign and attest, then
// downloads from a server on 127.0.0.1 into the staging slot and requests
// the update; forbidden hosts, missing files and oversized bodies are
// refused.
func TestUpdater(t *testing.T) {
	pkg := make([]byte, 300<<10+17)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range pkg {
		pkg[i] = byte(rng.Uint32())
	}
	big := make([]byte, 600<<10)
	mux := http.NewServeMux()
	mux.HandleFunc("/pkg", func(w http.ResponseWriter, r *http.Request) { w.Write(pkg) })
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.(http.Flusher).Flush() // no Content-Length: the limit applies while reading
		w.Write(big)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	v := newDevice(t, apps["updater"])
	fake := newFake(1 << 20)
	v.app.Services = fake
	done := v.start(t.Context(), &Options{MaxFetchSize: 512 << 10}, nil)
	v.waitFor("ready")
	for _, want := range []string{
		"updater: build test-updater",
		"application 1.2.3 on SBM 0.1.0-test",
		"last update: refused: downgrade: security counter 3 below 7",
	} {
		if !strings.Contains(v.out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, v.out.String())
		}
	}

	v.send("chain")
	v.waitFor("chain: verified against the trust anchors")
	fake.certs[1] = []byte("another CA") // the chain no longer verifies
	v.send("chain")
	v.waitFor("error: verifying the chain: sdk: verify_chain: signature (code 8)")

	d := sha256.Sum256([]byte("message"))
	v.send("sign " + hex.EncodeToString(d[:]))
	v.waitFor("signature " + hex.EncodeToString(d[:]) + hex.EncodeToString(d[:]))
	v.send("attest 00112233445566778899")
	v.waitFor("token " + hex.EncodeToString(fakeToken([]byte{0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99})))

	v.send("update http://example.com/pkg")
	v.waitFor("error: download: sdk: fetch_open: url not allowed (code 103)")
	v.send("update " + srv.URL + "/missing")
	v.waitFor("error: download: sdk: fetch_open: http status not 200 (code 105)")
	v.send("update " + srv.URL + "/big")
	v.waitFor("error: download: sdk: fetch_read: too large (code 4)")
	if fake.updates != 0 {
		t.Fatal("an update was requested after a failed download")
	}

	v.send("update " + srv.URL + "/pkg")
	v.waitFor("update: requested")
	if !bytes.Equal(fake.staging[:len(pkg)], pkg) {
		t.Error("the staging slot does not hold the package")
	}
	if fake.updates != 1 || fake.erases != 4 {
		t.Errorf("%d updates requested, %d erases; want 1 and 4", fake.updates, fake.erases)
	}
	v.send("quit")
	if res := <-done; !res.ran || res.err != nil {
		t.Fatalf("Run: ran %v, err %v", res.ran, res.err)
	}
}
