package apphost_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sbm-project/sbm/apphost"
	"github.com/sbm-project/sbm/attest"
	"github.com/sbm-project/sbm/image"
	"github.com/sbm-project/sbm/internal/firmware"
	"github.com/sbm-project/sbm/internal/hostcose"
	"github.com/sbm-project/sbm/programmer"
	"github.com/sbm-project/sbm/sbm"
	"github.com/sbm-project/sbm/sim"
	"github.com/sbm-project/sbm/trust"
	"github.com/sbm-project/sbm/upk"
	"github.com/sbm-project/sbm/vmcu"
	"github.com/sbm-project/sbm/wire/client"
)

// TestRealSBM runs the applications through the real SBM on a provisioned,
// locked device (sim.FirmwareWithApps): the updater is programmed over the
// UART, verified and launched with the SBM's services; its certificate
// chain verifies against the device's anchors; its attestation token
// verifies on the host against the device certificate with the nonce and
// the measurement; then it downloads a package from 127.0.0.1 into
// staging and requests the update, and after the reset the SBM installs
// it and the new application (hello 2.0.0) runs.
func TestRealSBM(t *testing.T) {
	if testing.Short() {
		t.Skip("provisioning, programming and an update of a 2.6 MB application")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	c, err := trust.Init(t.TempDir()+"/ctx", &trust.InitOptions{Suite: trust.SuiteP256})
	if err != nil {
		t.Fatal(err)
	}
	b, err := vmcu.LookupBoard("default")
	if err != nil {
		t.Fatal(err)
	}
	d := vmcu.NewMemory(b, 42)
	var out lockedBuffer
	host := d.UART().Pipe()
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := host.Read(buf)
			out.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	addr, err := d.UART().ListenTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	run := sim.StartDevice(ctx, d, sim.FirmwareWithApps(nil, &apphost.Options{Cache: apphost.TestCache}))
	defer run.Stop()

	prov, err := programmer.Provision(ctx, c, d.DebugPort(), &programmer.ProvisionOptions{SBMImage: sbm.Descriptor()})
	if err != nil {
		t.Fatal(err)
	}
	_, id, err := c.LoadDevice(hex.EncodeToString(prov.ID))
	if err != nil {
		t.Fatal(err)
	}
	recipient := upk.Recipient{Kind: upk.Device, Key: id.KeyAgreement, DeviceID: id.ID}
	pack := func(wasm []byte, version string, counter uint32) (*image.Package, []byte) {
		res, err := image.Create(c, &firmware.Image{Data: wasm, Format: firmware.FormatWasm},
			&image.CreateOptions{Version: version, SecurityCounter: counter})
		if err != nil {
			t.Fatal(err)
		}
		u, err := upk.Issue(c, res.Package.Manifest, &res.CEK, recipient, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res.Package, u
	}

	// First programming over the UART; the SBM resets and launches v1.
	updater := apphost.BuiltApp("updater")
	p1, u1 := pack(updater, "1.0.0", 1)
	cl, err := client.Dial(ctx, "tcp:"+addr.String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := programmer.Program(ctx, cl, p1, &programmer.ProgramOptions{UPK: u1}); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	waitFor(t, &out, "ready")
	for _, want := range []string{"application 1.0.0 on SBM", ", locked, security counter 1",
		fmt.Sprintf("measurement %x", sha256.Sum256(updater)), "last update: none"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	send := func(line string) {
		if _, err := host.Write([]byte(line + "\n")); err != nil {
			t.Fatal(err)
		}
	}

	send("chain")
	waitFor(t, &out, "chain: verified against the trust anchors")

	nonce := []byte("fresh nonce 0123")
	send("attest " + hex.EncodeToString(nonce))
	m := waitMatch(t, &out, regexp.MustCompile(`token ([0-9a-f]+)\n`))
	tok, _ := hex.DecodeString(m[1])
	raw, err := hostcose.RawPublicKey(prov.Certificate.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	claims, err := attest.Verify(tok, -7, raw)
	if err != nil {
		t.Fatalf("token does not verify: %v", err)
	}
	if !bytes.Equal(claims.Nonce, nonce) || claims.App.Measurement != sha256.Sum256(updater) || claims.App.Version != "1.0.0" {
		t.Errorf("claims: nonce %q, app %x %s", claims.Nonce, claims.App.Measurement, claims.App.Version)
	}

	// The update: hello 2.0.0 downloaded from 127.0.0.1 into staging.
	hello := apphost.BuiltApp("hello")
	p2, u2 := pack(hello, "2.0.0", 2)
	// The UPK travels in the container, as the update server would send it.
	pkg, err := withUPK(p2, u2)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(pkg) }))
	defer srv.Close()
	send("update " + srv.URL + "/v2.pkg")
	waitFor(t, &out, "hello: application 2.0.0 on SBM")
	waitFor(t, &out, fmt.Sprintf("hello: measurement %x", sha256.Sum256(hello)))
}

// withUPK returns the container of p carrying the device UPK u.
func withUPK(p *image.Package, u []byte) ([]byte, error) {
	q := *p
	q.UPKs = [][]byte{u}
	return q.MarshalBinary()
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func waitFor(t *testing.T, b *lockedBuffer, s string) {
	t.Helper()
	waitMatch(t, b, regexp.MustCompile(regexp.QuoteMeta(s)))
}

func waitMatch(t *testing.T, b *lockedBuffer, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if m := re.FindStringSubmatch(b.String()); m != nil {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %v; UART output:\n%s", re, printable(b.String()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// printable drops the connection protocol's binary frames from the UART
// output.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || (r >= ' ' && r < 0x7f) {
			return r
		}
		return -1
	}, s)
}
