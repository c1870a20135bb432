package apphost_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sbm-project/sbm/apphost"
	"github.com/sbm-project/sbm/attest"
	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/image"
	"github.com/sbm-project/sbm/internal/firmware"
	"github.com/sbm-project/sbm/internal/hostcose"
	"github.com/sbm-project/sbm/programmer"
	"github.com/sbm-project/sbm/sbm"
	"github.com/sbm-project/sbm/sim"
	"github.com/sbm-project/sbm/trust"
	"github.com/sbm-project/sbm/upk"
	"github.com/sbm-project/sbm/vmcu"
	"github.com/sbm-project/sbm/wire"
	"github.com/sbm-project/sbm/wire/client"
)

// realDevice is a provisioned, locked device running the real SBM, with
// the test on its UART.
type realDevice struct {
	t         *testing.T
	ctx       context.Context
	c         *trust.Context
	d         *vmcu.Device
	prov      *programmer.Provisioned
	recipient upk.Recipient
	uartAddr  string
	host      io.ReadWriteCloser
	out       lockedBuffer
}

// newRealDevice provisions and locks a new device running fw.
func newRealDevice(t *testing.T, fw vmcu.Firmware) *realDevice {
	return newRealDeviceSuite(t, fw, trust.SuiteP256)
}

// newRealDeviceSuite is newRealDevice with a context of the given suite.
func newRealDeviceSuite(t *testing.T, fw vmcu.Firmware, suite trust.Suite) *realDevice {
	if testing.Short() {
		t.Skip("provisioning and programming a 2.6 MB application through the SBM")
	}
	return newRealDeviceOf(t, fw, newContext(t, suite))
}

// newContext returns a fresh security context of suite.
func newContext(t *testing.T, suite trust.Suite) *trust.Context {
	c, err := trust.Init(t.TempDir()+"/ctx", &trust.InitOptions{Suite: suite})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newRealDeviceOf is newRealDevice with the context c.
func newRealDeviceOf(t *testing.T, fw vmcu.Firmware, c *trust.Context) *realDevice {
	if testing.Short() {
		t.Skip("provisioning and programming a 2.6 MB application through the SBM")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	t.Cleanup(cancel)
	b, err := vmcu.LookupBoard("default")
	if err != nil {
		t.Fatal(err)
	}
	v := &realDevice{t: t, ctx: ctx, c: c, d: vmcu.NewMemory(b, 42)}
	v.host = v.d.UART().Pipe()
	go io.Copy(&v.out, v.host)
	addr, err := v.d.UART().ListenTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	v.uartAddr = addr.String()
	run := sim.StartDevice(ctx, v.d, fw)
	t.Cleanup(func() { run.Stop() })

	v.prov, err = programmer.Provision(ctx, c, v.d.DebugPort(), &programmer.ProvisionOptions{SBMImage: sbm.Descriptor()})
	if err != nil {
		t.Fatal(err)
	}
	_, id, err := c.LoadDevice(hex.EncodeToString(v.prov.ID))
	if err != nil {
		t.Fatal(err)
	}
	v.recipient = upk.Recipient{Kind: upk.Device, Key: id.KeyAgreement, DeviceID: id.ID}
	return v
}

// pack packages wasm and issues a UPK for the device.
func (v *realDevice) pack(wasm []byte, version string, counter uint32) (*image.Package, []byte) {
	res, err := image.Create(v.c, &firmware.Image{Data: wasm, Format: firmware.FormatWasm},
		&image.CreateOptions{Version: version, SecurityCounter: counter})
	if err != nil {
		v.t.Fatal(err)
	}
	u, err := upk.Issue(v.c, res.Package.Manifest, &res.CEK, v.recipient, nil)
	if err != nil {
		v.t.Fatal(err)
	}
	return res.Package, u
}

// program installs wasm over the UART as the programmer does.
func (v *realDevice) program(wasm []byte, version string, counter uint32) {
	p, u := v.pack(wasm, version, counter)
	cl, err := client.Dial(v.ctx, "tcp:"+v.uartAddr)
	if err != nil {
		v.t.Fatal(err)
	}
	defer cl.Close()
	if _, err := programmer.Program(v.ctx, cl, p, &programmer.ProgramOptions{UPK: u}); err != nil {
		v.t.Fatal(err)
	}
}

func (v *realDevice) send(line string) {
	if _, err := v.host.Write([]byte(line + "\n")); err != nil {
		v.t.Fatal(err)
	}
}

// TestRealSBM runs the applications through the real SBM on a provisioned,
// locked device (sim.FirmwareWithApps): the updater is programmed over the
// UART, verified and launched with the SBM's services; its certificate
// chain verifies against the device's anchors; its attestation token
// verifies on the host against the device certificate with the nonce and
// the measurement; then it downloads a package from 127.0.0.1 into
// staging and requests the update, and after the reset the SBM installs
// it and the new application (hello 2.0.0) runs.
func TestRealSBM(t *testing.T) {
	v := newRealDevice(t, sim.FirmwareWithApps(nil, &apphost.Options{Cache: apphost.TestCache}))
	out := &v.out
	// First programming over the UART; the SBM resets and launches v1.
	updater := apphost.BuiltApp("updater")
	v.program(updater, "1.0.0", 1)
	waitFor(t, out, "ready")
	for _, want := range []string{"application 1.0.0 on SBM", ", locked, security counter 1",
		fmt.Sprintf("measurement %x", sha256.Sum256(updater)), "last update: none"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	v.send("chain")
	waitFor(t, out, "chain: verified against the trust anchors")

	nonce := []byte("fresh nonce 0123")
	v.send("attest " + hex.EncodeToString(nonce))
	m := waitMatch(t, out, regexp.MustCompile(`token ([0-9a-f]+)\n`))
	tok, _ := hex.DecodeString(m[1])
	raw, err := hostcose.RawPublicKey(v.prov.Certificate.PublicKey)
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
	p2, u2 := v.pack(hello, "2.0.0", 2)
	// The UPK travels in the container, as the update server would send it.
	pkg, err := withUPK(p2, u2)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(pkg) }))
	defer srv.Close()
	v.send("update " + srv.URL + "/v2.pkg")
	waitFor(t, out, "hello: application 2.0.0 on SBM")
	waitFor(t, out, fmt.Sprintf("hello: measurement %x", sha256.Sum256(hello)))
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

// TestRealSBMHostile runs the hostile application on the real SBM and its
// services: every bad call fails, and no byte of the flash outside the
// staging slot changes while it runs (SBM, secure storage, primary slot).
func TestRealSBMHostile(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("x")) }))
	defer srv.Close()
	type outcome struct {
		err           error
		before, after []byte
	}
	done := make(chan outcome, 1)
	fw := vmcu.FirmwareFunc(func(ctx context.Context, hw *hal.Hardware) {
		sbm.Boot(hw, &sbm.Options{Launch: func(app *sbm.AppInfo) {
			var o outcome
			o.before = outsideStaging(hw.Flash)
			o.err = apphost.Run(ctx, hw, app, &apphost.Options{Cache: apphost.TestCache, Args: []string{srv.URL}})
			o.after = outsideStaging(hw.Flash)
			done <- o
		}})
	})
	v := newRealDevice(t, fw)
	v.program(apphost.BuiltApp("hostile"), "1.0.0", 1)
	var o outcome
	select {
	case o = <-done:
	case <-v.ctx.Done():
		t.Fatal("the hostile application did not finish")
	}
	if o.err != nil {
		t.Fatalf("Run: %v", o.err)
	}
	waitFor(t, &v.out, "hostile: done")
	i := strings.Index(v.out.String(), "bad ")
	apphost.CheckHostileOutput(t, v.out.String()[i:], true)
	if !bytes.Equal(o.before, o.after) {
		t.Error("the flash outside the staging slot changed")
	}
}

// outsideStaging reads the whole flash except the staging slot.
func outsideStaging(f hal.Flash) []byte {
	g := f.Geometry()
	st, _ := g.Region(hal.RegionStaging)
	b := make([]byte, g.Size)
	if err := f.Read(0, b); err != nil {
		panic(err)
	}
	return append(b[:st.Start:st.Start], b[st.End():]...)
}

// TestRealSBMNotRunnable: an image the runtime cannot execute (an ELF file,
// validly packaged and installed) is a recorded state, not a silent
// failure: the SBM stores CodeAppStart with the reason as the last error
// and stays in recovery, where the next programming works and clears it.
func TestRealSBMNotRunnable(t *testing.T) {
	v := newRealDevice(t, sim.FirmwareWithApps(nil, &apphost.Options{Cache: apphost.TestCache}))
	elf := append([]byte("\x7fELF\x01\x01\x01"), bytes.Repeat([]byte{0x42}, 4000)...)
	v.program(elf, "1.0.0", 1)
	deadline := time.Now().Add(20 * time.Second)
	var st *sbm.State
	for {
		var err error
		if st, err = sbm.ReadState(v.d.Flash(hal.PrivSBM), v.d.PUF()); err != nil {
			t.Fatal(err)
		}
		if st.LastError == wire.CodeAppStart || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st.LastError != wire.CodeAppStart || st.LastErrorDetail != "an ELF image, not WebAssembly" {
		t.Fatalf("last error %d %q", st.LastError, st.LastErrorDetail)
	}
	// In recovery: the updater can be programmed right away.
	v.program(apphost.BuiltApp("updater"), "1.0.1", 1)
	waitFor(t, &v.out, "ready")
	if st, _ := sbm.ReadState(v.d.Flash(hal.PrivSBM), v.d.PUF()); st.LastError != 0 {
		t.Fatalf("last error not cleared: %d %q", st.LastError, st.LastErrorDetail)
	}
}

// TestRealSBMRefusesNativeFormat: a package whose manifest says it is an
// ELF image is refused by the SBM of a WebAssembly device before any
// payload byte is stored, with CodeAppStart; the running state is
// unchanged.
func TestRealSBMRefusesNativeFormat(t *testing.T) {
	v := newRealDevice(t, sim.FirmwareWithApps(nil, &apphost.Options{Cache: apphost.TestCache}))
	res, err := image.Create(v.c, &firmware.Image{Data: bytes.Repeat([]byte{0x42}, 3000), Format: firmware.FormatELF},
		&image.CreateOptions{Version: "1.0.0", SecurityCounter: 1})
	if err != nil {
		t.Fatal(err)
	}
	u, err := upk.Issue(v.c, res.Package.Manifest, &res.CEK, v.recipient, nil)
	if err != nil {
		t.Fatal(err)
	}
	primary := func() []byte {
		f := v.d.Flash(hal.PrivSBM)
		r, _ := f.Geometry().Region(hal.RegionPrimary)
		b := make([]byte, 8192)
		f.Read(r.Start, b)
		return b
	}
	before := primary()
	cl, err := client.Dial(v.ctx, "tcp:"+v.uartAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	_, err = programmer.Program(v.ctx, cl, res.Package, &programmer.ProgramOptions{UPK: u})
	var we *wire.Error
	if !errors.As(err, &we) || we.Code != wire.CodeAppStart || !strings.Contains(we.Detail, "the package is elf; this device runs wasm") {
		t.Fatalf("an ELF package: %v", err)
	}
	if !bytes.Equal(primary(), before) {
		t.Fatal("the primary slot changed")
	}
}
