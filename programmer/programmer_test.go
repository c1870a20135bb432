package programmer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/image"
	"github.com/sbm-project/sbm/internal/firmware"
	"github.com/sbm-project/sbm/sbm"
	"github.com/sbm-project/sbm/sbm/mailbox"
	"github.com/sbm-project/sbm/sim"
	"github.com/sbm-project/sbm/trust"
	"github.com/sbm-project/sbm/upk"
	"github.com/sbm-project/sbm/vmcu"
	"github.com/sbm-project/sbm/wire"
	"github.com/sbm-project/sbm/wire/client"
)

// bench is a provisioned virtual device running the SBM in-process.
type bench struct {
	ctx     *trust.Context
	run     *sim.Running
	dev     *vmcu.Device
	prov    *Provisioned
	launch  chan *sbm.AppInfo
	console bytes.Buffer
}

func newBench(t testing.TB, board string, lock bool) *bench {
	t.Helper()
	c, err := trust.Init(filepath.Join(t.TempDir(), "ctx"), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := vmcu.LookupBoard(board)
	if err != nil {
		t.Fatal(err)
	}
	be := &bench{ctx: c, dev: vmcu.NewMemory(b, 1), launch: make(chan *sbm.AppInfo, 8)}
	be.run = sim.StartDevice(context.Background(), be.dev, sim.Firmware(&sbm.Options{
		Launch: func(a *sbm.AppInfo) { be.launch <- a },
	}))
	t.Cleanup(func() { be.run.Stop() })
	be.prov, err = Provision(context.Background(), c, be.dev.DebugPort(), &ProvisionOptions{SBMImage: sbm.Descriptor(), NoLock: !lock})
	if err != nil {
		t.Fatal(err)
	}
	return be
}

// release packages data for the bench device.
func (be *bench) release(t testing.TB, data []byte, version string, counter uint32) (*image.Package, []byte, *[32]byte) {
	t.Helper()
	res, err := image.Create(be.ctx, &firmware.Image{Data: data, Format: firmware.FormatBinary}, &image.CreateOptions{Version: version, SecurityCounter: counter})
	if err != nil {
		t.Fatal(err)
	}
	_, id, err := be.ctx.LoadDevice(fmt.Sprintf("%x", be.prov.ID))
	if err != nil {
		t.Fatal(err)
	}
	u, err := upk.Issue(be.ctx, res.Package.Manifest, &res.CEK, upk.Recipient{Kind: upk.Device, Key: id.KeyAgreement, DeviceID: id.ID}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res.Package, u, &res.CEK
}

func (be *bench) client() *client.Client { return client.New(be.dev.UART().Pipe()) }

// TestProvisionAndProgram provisions a device, programs it over its UART
// and sees the new application verified and launched; then a second
// provisioning by another context is refused.
func TestProvisionAndProgram(t *testing.T) {
	be := newBench(t, "small", true)
	if be.dev.Locks() != 7 {
		t.Fatalf("locks = %#x, want all three blown", be.dev.Locks())
	}
	data := bytes.Repeat([]byte("application "), 2000)
	p, u, _ := be.release(t, data, "1.2.3", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := be.client()
	defer cl.Close()
	res, err := Program(ctx, cl, p, &ProgramOptions{UPK: u})
	if err != nil {
		t.Fatal(err)
	}
	if res.Before.AppVersion != "" || res.Stats.Bytes != res.Bytes {
		t.Fatalf("result %+v", res)
	}
	select {
	case a := <-be.launch:
		if a.Version != "1.2.3" || a.Digest != sha256.Sum256(data) {
			t.Fatalf("launched %s %x", a.Version, a.Digest)
		}
	case <-ctx.Done():
		t.Fatal("the new application was not launched")
	}
	// The locked device refuses a second provisioning.
	other, _ := trust.Init(filepath.Join(t.TempDir(), "other"), nil)
	if _, err := Provision(ctx, other, be.dev.DebugPort(), &ProvisionOptions{SBMImage: sbm.Descriptor()}); !errors.Is(err, vmcu.ErrDebugLocked) {
		t.Fatalf("provisioning a locked device: %v", err)
	}
}

// TestProvisionRefusesForeignRoot: a device bound to one root cannot be
// re-provisioned for another before lock either: the root hash fuse is
// write-once.
func TestProvisionRefusesForeignRoot(t *testing.T) {
	be := newBench(t, "small", false)
	other, _ := trust.Init(filepath.Join(t.TempDir(), "other"), nil)
	_, err := Provision(context.Background(), other, be.dev.DebugPort(), &ProvisionOptions{SBMImage: sbm.Descriptor()})
	if !errors.Is(err, ErrProvisioned) {
		t.Fatalf("err = %v, want ErrProvisioned", err)
	}
}

// TestProgramRefusals checks that Program reports the device's reason.
func TestProgramRefusals(t *testing.T) {
	be := newBench(t, "small", false)
	p, _, cek := be.release(t, []byte("app"), "1.0.0", 1)
	cl := be.client()
	defer cl.Close()
	ctx := context.Background()
	if _, err := Program(ctx, cl, p, nil); !errors.Is(err, ErrNoUPK) {
		t.Fatalf("no UPK: %v", err)
	}
	class, err := upk.Issue(be.ctx, p.Manifest, cek, upk.ClassRecipient(be.ctx), nil)
	if err != nil {
		t.Fatal(err)
	}
	var we *wire.Error
	if _, err := Program(ctx, cl, p, &ProgramOptions{UPK: class}); !errors.As(err, &we) || we.Code != wire.CodeNotRecipient {
		t.Fatalf("class UPK on a device without the class key: %v", err)
	}
}

var programSize = flag.Int("program-size", 1<<20, "payload size for BenchmarkProgram")

// BenchmarkProgram programs a package through the real SBM on a virtual
// device whose UART is paced at the line rate (10 bits per byte, both
// directions), and reports the payload throughput as a fraction of the line
// rate: line-fraction for the transfer, end-to-end-fraction including the
// SBM's authentication and install. At 115200 baud one 1 MiB iteration takes
// about 90 s: run it with -benchtime 1x.
func BenchmarkProgram(b *testing.B) {
	for _, baud := range []int{115200, 1000000} {
		b.Run(fmt.Sprintf("baud=%d", baud), func(b *testing.B) {
			be := newBench(b, "default", false)
			be.dev.UART().SetBaud(baud)
			data := make([]byte, *programSize)
			for i := range data {
				data[i] = byte(i * 31)
			}
			line := float64(baud) / 10
			var sendSecs, totalSecs float64
			n := 0
			for b.Loop() {
				p, u, _ := be.release(b, data, fmt.Sprintf("1.0.%d", n), uint32(n+1))
				if n > 0 {
					be.dev.Reset(true) // back to recovery
				}
				cl := be.client()
				t0 := time.Now()
				res, err := Program(context.Background(), cl, p, &ProgramOptions{UPK: u})
				if err != nil {
					b.Fatal(err)
				}
				totalSecs += time.Since(t0).Seconds()
				sendSecs += res.Stats.Duration.Seconds()
				cl.Close()
				<-be.launch
				n++
			}
			b.ReportMetric(float64(n*len(data))/sendSecs/line, "line-fraction")
			b.ReportMetric(float64(n*len(data))/totalSecs/line, "end-to-end-fraction")
		})
	}
}

// TestProvisionRefusesClone: a second chip claiming the ID of a device
// that is in the production records (a clone) is refused before it is
// touched: no root hash in its fuses, no certificate, no locks; the genuine
// device's production record is kept and its attestation identity intact.
func TestProvisionRefusesClone(t *testing.T) {
	be := newBench(t, "small", true)
	idHex := fmt.Sprintf("%x", be.prov.ID)
	b, err := vmcu.LookupBoard("small")
	if err != nil {
		t.Fatal(err)
	}
	clone := vmcu.NewMemory(b, 1) // the same seed: the same device ID
	if clone.ID() != be.dev.ID() {
		t.Fatal("test set-up: the clone has another ID")
	}
	run := sim.StartDevice(context.Background(), clone, sim.Firmware(nil))
	defer run.Stop()
	_, err = Provision(context.Background(), be.ctx, clone.DebugPort(), &ProvisionOptions{SBMImage: sbm.Descriptor()})
	if !errors.Is(err, trust.ErrDeviceExists) {
		t.Fatalf("provisioning a clone: err = %v, want trust.ErrDeviceExists", err)
	}
	want := "device " + idHex + ": a device with this ID was already certified (possible clone)"
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	if h, err := hal.ReadRootKeyHash(clone.Fuses()); err != nil || h != ([32]byte{}) {
		t.Errorf("the clone's root key hash fuses were written: %x %v", h, err)
	}
	if clone.Locks() != 0 {
		t.Errorf("the clone's locks = %#x, want none blown", clone.Locks())
	}
	rec, ident, err := be.ctx.LoadDevice(idHex)
	if err != nil {
		t.Fatal(err)
	}
	if !ident.Certificate.Equal(be.prov.Certificate) || !rec.Locked {
		t.Fatal("the genuine device's production record was replaced")
	}
}

// TestProvisionRecordsSBMMeasurement: the production record holds the
// SBM measurement the device reports (what attestation verifies).
func TestProvisionRecordsSBMMeasurement(t *testing.T) {
	be := newBench(t, "small", false)
	m, err := sbm.Measurement(be.dev.Flash(hal.PrivSBM))
	if err != nil {
		t.Fatal(err)
	}
	if got := be.prov.Record.SBMMeasurement; got != fmt.Sprintf("%x", m) {
		t.Fatalf("recorded SBM measurement %s, device's %x", got, m)
	}
}

// failingPort fails the debug write of the n-th mailbox request.
type failingPort struct {
	DebugPort
	n, writes int
}

func (p *failingPort) Write(ctx context.Context, addr uint32, data []byte) error {
	if addr == uint32(vmcu.RAMBase+mailbox.Offset) {
		if p.writes++; p.writes == p.n {
			return errors.New("link lost")
		}
	}
	return p.DebugPort.Write(ctx, addr, data)
}

// TestProvisionRetry: a provisioning that failed before the certificate
// was installed recorded nothing, so the same chip can be provisioned
// again; once it has a record, it cannot.
func TestProvisionRetry(t *testing.T) {
	c, err := trust.Init(filepath.Join(t.TempDir(), "ctx"), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := vmcu.LookupBoard("small")
	if err != nil {
		t.Fatal(err)
	}
	dev := vmcu.NewMemory(b, 7)
	run := sim.StartDevice(context.Background(), dev, sim.Firmware(nil))
	defer run.Stop()
	opts := &ProvisionOptions{SBMImage: sbm.Descriptor(), NoLock: true}
	// The second mailbox request installs the certificate: it is lost.
	if _, err := Provision(context.Background(), c, &failingPort{DebugPort: dev.DebugPort(), n: 2}, opts); err == nil {
		t.Fatal("provisioning over a failing link succeeded")
	}
	if ids, _ := c.Devices(); len(ids) != 0 {
		t.Fatalf("a failed provisioning recorded %v", ids)
	}
	p, err := Provision(context.Background(), c, dev.DebugPort(), opts)
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	if _, err := Provision(context.Background(), c, dev.DebugPort(), opts); !errors.Is(err, trust.ErrDeviceExists) {
		t.Fatalf("provisioning device %x again: %v, want trust.ErrDeviceExists", p.ID, err)
	}
}

// TestRootIndexCounter: the programmer advances the SBM's root-index fuse
// counter.
func TestRootIndexCounter(t *testing.T) {
	if rootIndexCounter != sbm.FuseRootIndex {
		t.Fatalf("programmer uses fuse counter %d, the SBM %d", rootIndexCounter, sbm.FuseRootIndex)
	}
}
