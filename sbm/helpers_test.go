package sbm

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/image"
	"github.com/sbm-project/sbm/internal/firmware"
	"github.com/sbm-project/sbm/internal/hostcose"
	"github.com/sbm-project/sbm/sbm/mailbox"
	"github.com/sbm-project/sbm/trust"
	"github.com/sbm-project/sbm/upk"
	"github.com/sbm-project/sbm/vmcu"
	"github.com/sbm-project/sbm/wire"
)

// fixedNow is the clock of every test: contexts, packages, UPKs and the
// provisioning time floor.
var fixedNow = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func now() time.Time { return fixedNow }

// Shared security contexts: A and B are independent p256 contexts, E is
// an ed25519 context.
var ctxA, ctxB, ctxE *trust.Context

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sbm-test-")
	if err != nil {
		panic(err)
	}
	mk := func(name string, s trust.Suite) *trust.Context {
		c, err := trust.Init(filepath.Join(dir, name), &trust.InitOptions{Suite: s, Now: now})
		if err != nil {
			panic(err)
		}
		return c
	}
	ctxA, ctxB, ctxE = mk("a", trust.SuiteP256), mk("b", trust.SuiteP256), mk("e", trust.SuiteEd25519)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// dev is a virtual device under test, with the test playing the host.
type dev struct {
	t   testing.TB
	d   *vmcu.Device
	c   *trust.Context
	log bytes.Buffer

	launched  *AppInfo       // set by the Launch hook of the last boot
	app       func(*AppInfo) // if set, runs as the application (after launched is set)
	recovered bool           // the last boot entered recovery
	session   func(wire.Target)
	ka        *ecdh.PublicKey
	cert      *x509.Certificate
}

// newDev returns a blank "small" device with the SBM installed.
func newDev(t testing.TB, c *trust.Context, seed uint64) *dev {
	t.Helper()
	b, err := vmcu.LookupBoard("small")
	if err != nil {
		t.Fatal(err)
	}
	v := &dev{t: t, d: vmcu.NewMemory(b, seed), c: c}
	v.installSBM()
	return v
}

// installSBM programs Descriptor into the SBM region.
func (v *dev) installSBM() {
	f := v.d.Flash(hal.PrivSBM)
	g := f.Geometry()
	r, _ := g.Region(hal.RegionSBM)
	img := Descriptor()
	for len(img)%int(g.WriteSize) != 0 {
		img = append(img, g.Erased)
	}
	if err := f.Erase(r.Start); err != nil {
		v.t.Fatal(err)
	}
	if err := f.Program(r.Start, img); err != nil {
		v.t.Fatal(err)
	}
}

// firmware returns the SBM with test hooks: Launch records the
// application; a recovery session runs v.session once, then resets.
func (v *dev) firmware() vmcu.Firmware {
	return vmcu.FirmwareFunc(func(ctx context.Context, hw *hal.Hardware) {
		h := *hw
		h.Log = &v.log
		Boot(&h, &Options{
			Launch: func(a *AppInfo) {
				v.launched = a
				if v.app != nil {
					v.app(a)
				}
			},
			Serve: func(u hal.UART, t wire.Target, sys hal.System, _ time.Duration) bool {
				v.recovered = true
				if f := v.session; f != nil {
					v.session = nil
					f(t)
				}
				sys.Reset()
				return true
			},
		})
	})
}

// boot powers the device on once (warm keeps RAM: a reset).
func (v *dev) boot(warm, recovery bool) vmcu.Stop {
	v.t.Helper()
	v.launched, v.recovered = nil, false
	st, err := v.d.PowerOn(context.Background(), v.firmware(), vmcu.PowerOnOptions{Warm: warm, Recovery: recovery})
	if err != nil {
		v.t.Fatal(err)
	}
	if st.Reason == vmcu.StopCrashed {
		v.t.Fatalf("firmware crashed: %v\n%s", st.Panic, st.Stack)
	}
	return st
}

// programRootHash writes c's root key hash into the fuses.
func (v *dev) programRootHash(c *trust.Context) {
	raw, err := hostcose.RawPublicKey(c.RootPublicKey())
	if err != nil {
		v.t.Fatal(err)
	}
	if err := hal.ProgramRootKeyHash(v.d.Fuses(), sha256.Sum256(raw)); err != nil {
		v.t.Fatal(err)
	}
}

// provisionRequest returns the OpProvision request for context c.
func provisionRequest(t testing.TB, c *trust.Context, classKey bool) *mailbox.Request {
	raw, err := hostcose.RawPublicKey(c.RootPublicKey())
	if err != nil {
		t.Fatal(err)
	}
	req := &mailbox.Request{Op: mailbox.OpProvision, Suite: 1, RootKey: raw,
		VendorID: c.VendorID(), ClassID: c.ClassID(),
		ImageKeyCert: c.ImageSigningKeyCert(), UpdateKeyCert: c.UpdateAuthorityKeyCert(),
		SecurityCounter: 1, Time: uint64(fixedNow.Unix())}
	if c.Suite() == trust.SuiteEd25519 {
		req.Suite = 2
	}
	if classKey {
		k, err := c.ExportClassKey()
		if err != nil {
			t.Fatal(err)
		}
		req.ClassKey = k
	}
	return req
}

// exchange writes req into the mailbox, resets the device (RAM kept) and
// returns the SBM's response.
func (v *dev) exchange(req *mailbox.Request) mailbox.Response {
	v.t.Helper()
	frame, err := mailbox.Frame(nil, mailbox.MagicRequest, mailbox.EncodeRequest(nil, req))
	if err != nil {
		v.t.Fatal(err)
	}
	dp := v.d.DebugPort()
	ctx := context.Background()
	if err := dp.Write(ctx, vmcu.RAMBase+mailbox.Offset, frame); err != nil {
		v.t.Fatal(err)
	}
	v.boot(true, false)
	h, err := dp.Read(ctx, vmcu.RAMBase+mailbox.Offset, mailbox.HeaderSize)
	if err != nil {
		v.t.Fatal(err)
	}
	n, err := mailbox.ParseHeader(h, mailbox.MagicResponse)
	if err != nil {
		v.t.Fatalf("no response: %v\nlog:\n%s", err, v.log.String())
	}
	f, _ := dp.Read(ctx, vmcu.RAMBase+mailbox.Offset, mailbox.HeaderSize+n)
	body, err := mailbox.Unframe(f, mailbox.MagicResponse)
	if err != nil {
		v.t.Fatal(err)
	}
	resp, err := mailbox.DecodeResponse(body)
	if err != nil {
		v.t.Fatal(err)
	}
	resp.CSR = bytes.Clone(resp.CSR)
	resp.KeyAgreement = bytes.Clone(resp.KeyAgreement)
	resp.DeviceID = bytes.Clone(resp.DeviceID)
	return resp
}

// provision runs the whole birth flow for v.c: root key hash into fuses,
// OpProvision, certificate from the device CA, OpInstallCertificate.
func (v *dev) provision(classKey bool) {
	v.t.Helper()
	v.programRootHash(v.c)
	resp := v.exchange(provisionRequest(v.t, v.c, classKey))
	if resp.Code != 0 {
		v.t.Fatalf("provision: code %d %s", resp.Code, resp.Detail)
	}
	csr, err := x509.ParseCertificateRequest(resp.CSR)
	if err != nil {
		v.t.Fatal(err)
	}
	if err := csr.CheckSignature(); err != nil {
		v.t.Fatal(err)
	}
	v.ka, err = v.c.Suite().KeyAgreementCurve().NewPublicKey(resp.KeyAgreement)
	if err != nil {
		v.t.Fatal(err)
	}
	id := v.d.ID()
	v.cert, err = v.c.IssueDeviceCertificate(csr, id[:], v.ka, fixedNow)
	if err != nil {
		v.t.Fatal(err)
	}
	if r := v.exchange(&mailbox.Request{Op: mailbox.OpInstallCertificate, Certificate: v.cert.Raw}); r.Code != 0 {
		v.t.Fatalf("install certificate: code %d %s", r.Code, r.Detail)
	}
}

// state reads the public secure-storage state.
func (v *dev) state() *State {
	v.t.Helper()
	s, err := ReadState(v.d.Flash(hal.PrivSBM), v.d.PUF())
	if err != nil {
		v.t.Fatal(err)
	}
	return s
}

// region returns the bytes of a region.
func (v *dev) region(k hal.RegionKind) []byte {
	f := v.d.Flash(hal.PrivSBM)
	r, _ := f.Geometry().Region(k)
	b := make([]byte, r.Size)
	if err := f.Read(r.Start, b); err != nil {
		v.t.Fatal(err)
	}
	return b
}

// release is a package built by a context, before any device UPK.
type release struct {
	c       *trust.Context
	created *image.Created
	data    []byte
	version string
}

// appData returns n bytes of deterministic application content.
func appData(n int, tag byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ tag
	}
	return b
}

// newRelease builds a package of data with 1 KiB chunks.
func newRelease(t testing.TB, c *trust.Context, data []byte, version string, counter uint32) *release {
	t.Helper()
	cr, err := image.Create(c, &firmware.Image{Data: data, Format: firmware.FormatBinary},
		&image.CreateOptions{Version: version, SecurityCounter: counter, ChunkSize: 1024, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return &release{c: c, created: cr, data: data, version: version}
}

// upkFor issues a UPK of rel for recipient r.
func (rel *release) upkFor(t testing.TB, r upk.Recipient, opts *upk.Options) []byte {
	t.Helper()
	if opts == nil {
		opts = &upk.Options{Now: now}
	}
	u, err := upk.Issue(rel.c, rel.created.Package.Manifest, &rel.created.CEK, r, opts)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// deviceRecipient names v.
func (v *dev) recipient() upk.Recipient {
	id := v.d.ID()
	return upk.Recipient{Kind: upk.Device, Key: v.ka, DeviceID: id[:]}
}

// container returns rel's package with exactly the UPK u.
func (rel *release) container(t testing.TB, u []byte) []byte {
	t.Helper()
	p := *rel.created.Package
	p.UPKs = [][]byte{u}
	b, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// forDevice returns rel's package with a fresh device UPK for v.
func (rel *release) forDevice(v *dev) []byte {
	return rel.container(v.t, rel.upkFor(v.t, v.recipient(), nil))
}

// send drives the Target as the protocol would: Begin, Write in pieces
// of step bytes, Finish. It returns the first error.
func send(t wire.Target, pkg []byte, step int) error {
	if err := t.Begin(uint32(len(pkg))); err != nil {
		return err
	}
	for off := 0; off < len(pkg); off += step {
		end := min(off+step, len(pkg))
		if err := t.Write(uint32(off), pkg[off:end]); err != nil {
			return err
		}
	}
	return t.Finish()
}

// install sends pkg in a recovery session and returns the Target's
// answer.
func (v *dev) install(pkg []byte) error {
	v.t.Helper()
	var err error
	ran := false
	v.session = func(t wire.Target) { ran = true; err = send(t, pkg, 1000) }
	v.boot(false, true)
	if !ran {
		v.t.Fatalf("no recovery session\nlog:\n%s", v.log.String())
	}
	return err
}

// expectBoot boots normally and checks that version runs with data.
func (v *dev) expectBoot(rel *release) {
	v.t.Helper()
	v.boot(false, false)
	if v.launched == nil {
		v.t.Fatalf("no application launched\nlog:\n%s", v.log.String())
	}
	if v.launched.Version != rel.version || v.launched.Digest != sha256.Sum256(rel.data) {
		v.t.Fatalf("launched %s, want %s", v.launched.Version, rel.version)
	}
	primary := v.region(hal.RegionPrimary)
	if !bytes.Equal(primary[:len(rel.data)], rel.data) {
		v.t.Fatal("primary slot does not hold the application")
	}
}

// codeOfErr returns the wire code of err.
func codeOfErr(err error) wire.Code {
	if we, ok := err.(*wire.Error); ok {
		return we.Code
	}
	if err == nil {
		return 0
	}
	return 255
}

func hexs(b []byte) string { return fmt.Sprintf("%x", b) }
