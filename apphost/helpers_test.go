package apphost

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/sbm"
	"github.com/sbm-project/sbm/vmcu"
	"github.com/sbm-project/sbm/wire"
)

// apps holds the example applications, built once per test binary.
var apps = map[string][]byte{}

// cache is shared by every run of the test binary, as a process would.
var cache = NewCache()

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "apphost-test-")
	if err != nil {
		panic(err)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		for _, name := range []string{"hello", "updater", "hostile"} {
			out := filepath.Join(dir, name+".wasm")
			cmd := exec.Command("go", "build", "-ldflags=-X main.version=test-"+name, "-o", out, "./examples/"+name)
			cmd.Dir = ".."
			cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
			if b, err := cmd.CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "building %s: %v\n%s", name, err, b)
				return 1
			}
			if apps[name], err = os.ReadFile(out); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}

// device is a virtual device with an application in its primary slot and
// the test on the other end of its UART.
type device struct {
	t    *testing.T
	d    *vmcu.Device
	app  *sbm.AppInfo
	uart io.ReadWriteCloser
	out  syncBuffer
}

// newDevice returns a device (board "default") with code programmed at the
// start of its primary slot and an AppInfo describing it.
func newDevice(t *testing.T, code []byte) *device {
	t.Helper()
	b, err := vmcu.LookupBoard("default")
	if err != nil {
		t.Fatal(err)
	}
	d := vmcu.NewMemory(b, 1)
	t.Cleanup(func() { d.Close() })
	g := b.Geometry
	r, _ := g.Region(hal.RegionPrimary)
	img := append([]byte(nil), code...)
	for len(img)%int(g.WriteSize) != 0 {
		img = append(img, g.Erased)
	}
	if err := d.Flash(hal.PrivSBM).Program(r.Start, img); err != nil {
		t.Fatal(err)
	}
	v := &device{t: t, d: d, app: &sbm.AppInfo{
		Version: "1.2.3", Size: uint32(len(code)), Digest: sha256.Sum256(code),
		ManifestDigest: sha256.Sum256([]byte("manifest")), SecurityCounter: 7,
		Region: r, SBMVersion: "0.1.0-test", Lifecycle: wire.LifecycleLocked,
	}}
	v.uart = d.UART().Pipe()
	go io.Copy(&v.out, v.uart)
	t.Cleanup(func() { v.uart.Close() })
	return v
}

// result is how a run ended.
type result struct {
	stop vmcu.Stop
	err  error // Run's result, if it returned
	ran  bool  // Run returned
}

// start powers the device on in the background, running the application
// with opts; the returned channel delivers the result.
func (v *device) start(ctx context.Context, opts *Options, hook func(hw *hal.Hardware)) <-chan result {
	if opts == nil {
		opts = &Options{}
	}
	if opts.Cache == nil {
		opts.Cache = cache
	}
	ch := make(chan result, 1)
	go func() {
		var res result
		fw := vmcu.FirmwareFunc(func(ctx context.Context, hw *hal.Hardware) {
			if hook != nil {
				hook(hw)
			}
			res.err = Run(ctx, hw, v.app, opts)
			res.ran = true
		})
		st, err := v.d.PowerOn(ctx, fw, vmcu.PowerOnOptions{})
		if err != nil {
			res.err = err
		}
		res.stop = st
		ch <- res
	}()
	return ch
}

// run runs the application to its end (at most a minute).
func (v *device) run(opts *Options) result {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return <-v.start(ctx, opts, nil)
}

// send writes a line to the device's UART.
func (v *device) send(line string) {
	v.t.Helper()
	if _, err := io.WriteString(v.uart, line+"\n"); err != nil {
		v.t.Fatal(err)
	}
}

// waitFor waits until the UART output contains s.
func (v *device) waitFor(s string) {
	v.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(v.out.String(), s) {
		if time.Now().After(deadline) {
			v.t.Fatalf("timed out waiting for %q; UART output:\n%s", s, v.out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fakeServices implements sbm.Services for tests, with a staging slot in
// memory and the same argument checks the SBM makes.
type fakeServices struct {
	mu        sync.Mutex
	info      sbm.BootInfo
	staging   []byte
	writes    int
	erases    int
	updates   int
	recovery  int
	onUpdate  func() // called by RequestUpdate (e.g. a reset)
	certs     [][]byte
	trusted   []byte // the only chain VerifyChain accepts
	lastNonce []byte
}

func newFake(stagingSize int) *fakeServices {
	f := &fakeServices{
		info: sbm.BootInfo{
			DeviceID: [16]byte{0xde, 0xad, 0xbe, 0xef}, SBMVersion: "0.1.0-test", AppVersion: "1.2.3",
			Lifecycle: wire.LifecycleLocked, SecurityCounter: 7,
			LastUpdate: uint8(wire.CodeDowngrade), LastUpdateDetail: "security counter 3 below 7",
		},
		staging: bytes.Repeat([]byte{0xff}, stagingSize),
		certs:   [][]byte{[]byte("leaf certificate"), []byte("ca certificate")},
	}
	f.trusted = f.chain()
	return f
}

func (f *fakeServices) chain() []byte {
	var b []byte
	for _, c := range f.certs {
		b = binary.BigEndian.AppendUint16(b, uint16(len(c)))
		b = append(b, c...)
	}
	return b
}

func (f *fakeServices) BootInfo() sbm.BootInfo { return f.info }

func (f *fakeServices) CertificateChain(dst []byte) ([]byte, error) {
	return append(dst, f.chain()...), nil
}

func (f *fakeServices) VerifyChain(chain []byte, now uint64) error {
	if !bytes.Equal(chain, f.trusted) {
		return wire.Errorf(wire.CodeSignature, "chain does not verify")
	}
	return nil
}

func (f *fakeServices) Sign(dst, digest []byte) ([]byte, error) {
	if len(digest) != 32 {
		return nil, wire.Errorf(wire.CodeMalformed, "digest size")
	}
	return append(append(dst, digest...), digest...), nil
}

func (f *fakeServices) TLSSign(dst, th []byte) ([]byte, error) {
	if len(th) != 32 && len(th) != 48 {
		return nil, wire.Errorf(wire.CodeMalformed, "transcript hash size")
	}
	return append(append(dst, "tls:"...), th...), nil
}

func (f *fakeServices) Report(dst, nonce []byte) ([]byte, error) {
	if len(nonce) != 0 && (len(nonce) < 8 || len(nonce) > 64) {
		return nil, wire.Errorf(wire.CodeMalformed, "nonce size")
	}
	return append(append(dst, "report:"...), nonce...), nil
}

// fakeToken is what the fake Attest returns for nonce.
func fakeToken(nonce []byte) []byte { return append([]byte("token:"), nonce...) }

func (f *fakeServices) Attest(dst, nonce []byte) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(nonce) < 8 || len(nonce) > 64 {
		return nil, wire.Errorf(wire.CodeMalformed, "nonce size")
	}
	f.lastNonce = append([]byte(nil), nonce...)
	return append(dst, fakeToken(nonce)...), nil
}

func (f *fakeServices) StagingSize() uint32 { return uint32(len(f.staging)) }

func (f *fakeServices) StagingErase() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.erases++
	for i := range f.staging {
		f.staging[i] = 0xff
	}
	return nil
}

func (f *fakeServices) StagingWrite(off uint32, p []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if uint64(off)+uint64(len(p)) > uint64(len(f.staging)) {
		return wire.Errorf(wire.CodeTooLarge, "past the staging slot")
	}
	for _, b := range f.staging[off : off+uint32(len(p))] {
		if b != 0xff {
			return fmt.Errorf("staging write: %w", hal.ErrNotErased)
		}
	}
	f.writes++
	copy(f.staging[off:], p)
	return nil
}

func (f *fakeServices) StagingRead(off uint32, p []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if uint64(off)+uint64(len(p)) > uint64(len(f.staging)) {
		return wire.Errorf(wire.CodeTooLarge, "past the staging slot")
	}
	copy(p, f.staging[off:])
	return nil
}

func (f *fakeServices) RequestUpdate() error {
	f.mu.Lock()
	f.updates++
	hook := f.onUpdate
	f.mu.Unlock()
	if hook != nil {
		hook()
	}
	return nil
}

func (f *fakeServices) RequestRecovery() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.recovery++
}
