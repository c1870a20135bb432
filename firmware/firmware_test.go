package firmware

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sbm-project/sbm/firmware/mps2/chip"
	"github.com/sbm-project/sbm/firmware/qemu"
	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/image"
	"github.com/sbm-project/sbm/internal/firmware"
	"github.com/sbm-project/sbm/programmer"
	"github.com/sbm-project/sbm/sbm"
	"github.com/sbm-project/sbm/sim"
	"github.com/sbm-project/sbm/trust"
	"github.com/sbm-project/sbm/upk"
	"github.com/sbm-project/sbm/vmcu"
	"github.com/sbm-project/sbm/wire"
	"github.com/sbm-project/sbm/wire/client"
)

// cacheDir is where scripts/firmware.sh keeps the firmware toolchain.
func cacheDir() string {
	if d := os.Getenv("SBM_FIRMWARE_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "sbm-firmware")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "sbm-firmware")
}

// TestFirmwareBootsUnderQEMU builds the firmware with scripts/firmware.sh
// and boots every variant under QEMU (the script checks each one reports
// success). It takes minutes, so it runs only when asked for and when the
// toolchain is already cached (it never installs LLVM or builds TinyGo):
//
//	./scripts/firmware.sh   # once: installs and caches the toolchain
//	SBM_FIRMWARE_TEST=1 go test ./firmware -run TestFirmwareBootsUnderQEMU -v
//
// SBM_FIRMWARE_BOARDS="mps2-an385 mps2-an505" (passed on to the script)
// also builds and boots the Cortex-M33 board.
func TestFirmwareBootsUnderQEMU(t *testing.T) {
	if os.Getenv("SBM_FIRMWARE_TEST") != "1" {
		t.Skip("firmware build not requested: set SBM_FIRMWARE_TEST=1 (takes minutes; see docs/silicon.md)")
	}
	tinygo := filepath.Join(cacheDir(), "tinygo-0.37.0", "bin", "tinygo")
	if _, err := os.Stat(tinygo); err != nil {
		t.Skipf("firmware toolchain not cached (%s missing): run ./scripts/firmware.sh once", tinygo)
	}
	for _, tool := range []string{"qemu-system-arm", "ld.lld-16", "llvm-size-16"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: run ./scripts/firmware.sh once", tool)
		}
	}
	start := time.Now()
	cmd := exec.Command("bash", filepath.Join("..", "scripts", "firmware.sh"))
	cmd.Env = append(os.Environ(), "SBM_FIRMWARE_OUT="+t.TempDir())
	out, err := cmd.CombinedOutput()
	t.Logf("scripts/firmware.sh (%v):\n%s", time.Since(start).Round(time.Second), out)
	if err != nil {
		t.Fatalf("scripts/firmware.sh: %v", err)
	}
	log := string(out)
	for _, want := range []string{
		"sha256(\"abc\") = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
		"variant full", "variant ed25519", "variant p256", "sbm-mps2-an385-board.elf", "app-mps2-an385.bin",
		"sbm: no SBM installed",
		"ok   Ed25519 sign, verify, refuse a forgery",
		"ok   P-256 sign, verify, refuse a forgery",
		"ok   cose.VerifySignature EdDSA",
		"ok   x509lite.CheckSignature ES256",
		"sbm core linked",
		"== ok",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("firmware output lacks %q", want)
		}
	}
	if strings.Contains(log, "FAIL") {
		t.Error("a firmware self-check failed")
	}
}

// requireFirmwareToolchain skips t unless SBM_FIRMWARE_TEST=1 and the
// toolchain scripts/firmware.sh installs is cached.
func requireFirmwareToolchain(t *testing.T) {
	t.Helper()
	if os.Getenv("SBM_FIRMWARE_TEST") != "1" {
		t.Skip("firmware build not requested: set SBM_FIRMWARE_TEST=1 (takes minutes; see docs/silicon.md)")
	}
	tinygo := filepath.Join(cacheDir(), "tinygo-0.37.0", "bin", "tinygo")
	if _, err := os.Stat(tinygo); err != nil {
		t.Skipf("firmware toolchain not cached (%s missing): run ./scripts/firmware.sh once", tinygo)
	}
	for _, tool := range []string{"qemu-system-arm", "ld.lld-16", "llvm-size-16", "arm-none-eabi-gcc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: run ./scripts/firmware.sh once", tool)
		}
	}
}

// buildBoard builds the board variant of the SBM firmware and the native
// application with scripts/firmware.sh and returns the output directory.
// SBM_FIRMWARE_PREBUILT=DIR uses the ELF and application already in DIR
// instead (from an earlier SBM_FIRMWARE_VARIANTS="board board-ed25519" run
// of the script).
func buildBoard(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("SBM_FIRMWARE_PREBUILT"); dir != "" {
		return dir
	}
	out := t.TempDir()
	start := time.Now()
	cmd := exec.Command("bash", filepath.Join("..", "scripts", "firmware.sh"), "--no-qemu")
	cmd.Env = append(os.Environ(), "SBM_FIRMWARE_OUT="+out, "SBM_FIRMWARE_VARIANTS=board board-ed25519", "SBM_FIRMWARE_BOARDS=mps2-an385")
	log, err := cmd.CombinedOutput()
	t.Logf("scripts/firmware.sh (%v):\n%s", time.Since(start).Round(time.Second), log)
	if err != nil {
		t.Fatalf("scripts/firmware.sh: %v", err)
	}
	return out
}

// qemuDevice is one emulated chip running the SBM firmware under QEMU.
type qemuDevice struct {
	m    *qemu.Machine
	id   [hal.IDSize]byte
	prov *programmer.Provisioned
}

// newQEMUDevice makes a chip file, boots the blank chip (the SBM waits in
// recovery, not provisioned) and provisions it for c through the chip
// file's debug port; then it powers the locked chip on.
func newQEMUDevice(t *testing.T, ctx context.Context, c *trust.Context, elf, name string) *qemuDevice {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	d := &qemuDevice{}
	rand.Read(d.id[:])
	chipFile := filepath.Join(dir, "chip.img")
	if err := qemu.CreateChip(chipFile, d.id); err != nil {
		t.Fatal(err)
	}
	d.m = &qemu.Machine{ELF: elf, Chip: chipFile}
	t.Cleanup(func() {
		d.m.Stop()
		if t.Failed() {
			t.Logf("%s console:\n%s", name, d.m.Console())
		}
	})
	if err := d.m.PowerOn(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := d.m.WaitConsole(ctx, 0, "sbm: no SBM installed"); err != nil {
		t.Fatal(err)
	}
	var plog bytes.Buffer
	prov, err := programmer.Provision(ctx, c, &qemu.DebugPort{Chip: chipFile, Machine: d.m},
		&programmer.ProvisionOptions{SBMImage: sbm.Descriptor(), Log: &plog, Timeout: 60 * time.Second})
	t.Logf("provisioning %s:\n%s", name, plog.String())
	if err != nil {
		t.Fatalf("provision %s: %v", name, err)
	}
	d.prov = prov
	locks, err := qemu.ReadFuseWord(chipFile, hal.FuseLocks)
	if err != nil || locks != hal.LockDebug|hal.LockSBMWriteProtect|hal.LockSecureHidden {
		t.Fatalf("lock fuses %#x, %v: want all three blown", locks, err)
	}
	if _, err := (&qemu.DebugPort{Chip: chipFile}).ID(ctx); !errors.Is(err, vmcu.ErrDebugLocked) {
		t.Fatalf("debug port after lock: %v, want ErrDebugLocked", err)
	}
	return d
}

// release packages data for the device with ID id: the package, its UPK
// and its content-encryption key.
func release(t *testing.T, c *trust.Context, data []byte, version string, counter uint32, id []byte) (*image.Package, []byte, *[32]byte) {
	t.Helper()
	res, err := image.Create(c, &firmware.Image{Data: data, Format: firmware.FormatBinary}, &image.CreateOptions{Version: version, SecurityCounter: counter})
	if err != nil {
		t.Fatal(err)
	}
	return res.Package, upkFor(t, c, res.Package, &res.CEK, id), &res.CEK
}

// upkFor issues a UPK of package p for the device with ID id.
func upkFor(t *testing.T, c *trust.Context, p *image.Package, cek *[32]byte, id []byte) []byte {
	t.Helper()
	_, rec, err := c.LoadDevice(fmt.Sprintf("%x", id))
	if err != nil {
		t.Fatal(err)
	}
	u, err := upk.Issue(c, p.Manifest, cek, upk.Recipient{Kind: upk.Device, Key: rec.KeyAgreement, DeviceID: rec.ID}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// tampered returns a copy of p with one bit of its encrypted payload
// flipped.
func tampered(p *image.Package) *image.Package {
	q := *p
	q.Payload = append([]byte(nil), p.Payload...)
	q.Payload[len(q.Payload)/2] ^= 0x10
	return &q
}

// refusal programs p with u and returns the device's error code.
func refusal(t *testing.T, ctx context.Context, port string, dial func() (*client.Client, error), p *image.Package, u []byte) wire.Code {
	t.Helper()
	var cl *client.Client
	var err error
	// The device may still be resetting into recovery: wait for its SBM.
	for i := 0; ; i++ {
		if cl, err = dial(); err == nil {
			if _, err = cl.Info(ctx); err == nil {
				break
			}
			cl.Close()
		}
		if i == 10 {
			t.Fatalf("%s: no SBM answers: %v", port, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	defer cl.Close()
	_, err = programmer.Program(ctx, cl, p, &programmer.ProgramOptions{UPK: u, NoReset: true})
	var we *wire.Error
	if !errors.As(err, &we) {
		t.Fatalf("%s: program: %v, want a refusal", port, err)
	}
	return we.Code
}

// vmcuRefusals runs the three refusals on the virtual MCU (the SBM core
// on the host) and returns the codes: tampered payload, downgrade, UPK
// for another device.
func vmcuRefusals(t *testing.T, ctx context.Context, app []byte) [3]wire.Code {
	c, err := trust.Init(filepath.Join(t.TempDir(), "vmcu-ctx"), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := vmcu.LookupBoard("small")
	if err != nil {
		t.Fatal(err)
	}
	devs := make([]*vmcu.Device, 2)
	ids := make([][]byte, 2)
	for i := range devs {
		devs[i] = vmcu.NewMemory(b, uint64(i+1))
		run := sim.StartDevice(context.Background(), devs[i], sim.Firmware(nil))
		t.Cleanup(func() { run.Stop() })
		prov, err := programmer.Provision(ctx, c, devs[i].DebugPort(), &programmer.ProvisionOptions{SBMImage: sbm.Descriptor()})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = prov.ID
	}
	dial := func() (*client.Client, error) { return client.New(devs[0].UART().Pipe()), nil }
	p2, u2, _ := release(t, c, app, "1.1.0", 2, ids[0])
	cl, _ := dial()
	if _, err := programmer.Program(ctx, cl, p2, &programmer.ProgramOptions{UPK: u2}); err != nil {
		t.Fatalf("virtual MCU: program 1.1.0: %v", err)
	}
	cl.Close()
	devs[0].Reset(true) // recovery pin held
	p1, u1, _ := release(t, c, app, "1.0.0", 1, ids[0])
	p3, u3, cek3 := release(t, c, app, "1.2.0", 3, ids[0])
	return [3]wire.Code{
		refusal(t, ctx, "virtual MCU", dial, tampered(p3), u3),
		refusal(t, ctx, "virtual MCU", dial, p1, u1),
		refusal(t, ctx, "virtual MCU", dial, p3, upkFor(t, c, p3, cek3, ids[1])),
	}
}

// TestFirmwareProgramsUnderQEMU is issue 13's end-to-end test on QEMU's
// mps2-an385: it builds the board firmware and the native application,
// makes two chips and provisions them through the chip file's debug port
// (programmer.Provision, unchanged) for a P-256 and an Ed25519 context,
// programs an encrypted per-device
// package into chip A with the unchanged `sbm program --port tcp:...`,
// and checks that the SBM verified it, reset, verified it at boot and
// jumped into the native application, which printed on the UART and
// called the boot-info runtime service; that a power cycle verifies and
// runs it again from the persisted chip file; and that a tampered
// package, a downgrade and a UPK for chip B are refused with the error
// codes the virtual MCU gives, leaving the application running; and that
// an application modified in the chip file is refused at boot.
//
//	SBM_FIRMWARE_TEST=1 go test ./firmware -run TestFirmwareProgramsUnderQEMU -v
func TestFirmwareProgramsUnderQEMU(t *testing.T) {
	requireFirmwareToolchain(t)
	out := buildBoard(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	app, err := os.ReadFile(filepath.Join(out, "app-mps2-an385.bin"))
	if err != nil {
		t.Fatal(err)
	}
	want := vmcuRefusals(t, ctx, app)
	if want != [3]wire.Code{wire.CodeDecrypt, wire.CodeDowngrade, wire.CodeNotRecipient} {
		t.Fatalf("virtual MCU refusals %v: want decrypt, downgrade, not recipient", want)
	}
	// The whole SBM links both suites: a context of each; the
	// Ed25519-only build (P-256 compiled out) an Ed25519 context.
	whole, ed := filepath.Join(out, boardELF), filepath.Join(out, boardEd25519ELF)
	for _, suite := range []trust.Suite{trust.SuiteP256, trust.SuiteEd25519} {
		t.Run(string(suite), func(t *testing.T) { programOnQEMU(t, ctx, whole, app, want, suite) })
	}
	t.Run("ed25519-only", func(t *testing.T) {
		refuseP256(t, ctx, ed)
		programOnQEMU(t, ctx, ed, app, want, trust.SuiteEd25519)
	})
}

// The board firmware ELFs of scripts/firmware.sh.
const (
	boardELF        = "sbm-mps2-an385-board.elf"         // both suites
	boardEd25519ELF = "sbm-mps2-an385-board-ed25519.elf" // P-256 compiled out
)

// refuseP256 provisions a P-256 context into the Ed25519-only firmware:
// the SBM refuses with CodeUnsupported and stays unprovisioned.
func refuseP256(t *testing.T, ctx context.Context, elf string) {
	c, err := trust.Init(filepath.Join(t.TempDir(), "ctx"), &trust.InitOptions{Suite: trust.SuiteP256})
	if err != nil {
		t.Fatal(err)
	}
	var id [hal.IDSize]byte
	rand.Read(id[:])
	chipFile := filepath.Join(t.TempDir(), "chip.img")
	if err := qemu.CreateChip(chipFile, id); err != nil {
		t.Fatal(err)
	}
	m := &qemu.Machine{ELF: elf, Chip: chipFile}
	defer m.Stop()
	if err := m.PowerOn(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := m.WaitConsole(ctx, 0, "sbm: no SBM installed"); err != nil {
		t.Fatal(err)
	}
	var plog bytes.Buffer
	_, err = programmer.Provision(ctx, c, &qemu.DebugPort{Chip: chipFile, Machine: m},
		&programmer.ProvisionOptions{SBMImage: sbm.Descriptor(), Log: &plog, Timeout: 60 * time.Second})
	t.Logf("provisioning a P-256 context:\n%s", plog.String())
	var we *wire.Error
	if !errors.As(err, &we) || we.Code != wire.CodeUnsupported || !strings.Contains(err.Error(), "P-256") {
		t.Fatalf("provisioning P-256 on the Ed25519-only SBM: %v, want code %d naming P-256\nconsole:\n%s",
			err, wire.CodeUnsupported, m.Console())
	}
	locks, err := qemu.ReadFuseWord(chipFile, hal.FuseLocks)
	if err != nil || locks != 0 {
		t.Fatalf("lock fuses %#x, %v: want none blown", locks, err)
	}
}

// programOnQEMU is TestFirmwareProgramsUnderQEMU for a context of suite.
func programOnQEMU(t *testing.T, ctx context.Context, elf string, app []byte, want [3]wire.Code, suite trust.Suite) {
	dir := t.TempDir()
	c, err := trust.Init(filepath.Join(dir, "ctx"), &trust.InitOptions{Suite: suite})
	if err != nil {
		t.Fatal(err)
	}
	a := newQEMUDevice(t, ctx, c, elf, "A")
	b := newQEMUDevice(t, ctx, c, elf, "B")
	b.m.Stop()

	// sbm program, unchanged, over the board's UART0 (a TCP socket).
	sbmCLI := filepath.Join(dir, "sbm")
	if log, err := exec.Command("go", "build", "-o", sbmCLI, "../cmd/sbm").CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/sbm: %v\n%s", err, log)
	}
	p2, u2, _ := release(t, c, app, "1.1.0", 2, a.prov.ID)
	pkgFile, upkFile := filepath.Join(dir, "app-1.1.0.sbmpkg"), filepath.Join(dir, "app-1.1.0.upk")
	raw, err := p2.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(pkgFile, raw, 0o644)
	os.WriteFile(upkFile, u2, 0o644)
	at := len(a.m.Console())
	if err := a.m.PowerOn(ctx, nil); err != nil {
		t.Fatal(err)
	}
	at, err = a.m.WaitConsole(ctx, at, "sbm: recovery: waiting for a programmer on the UART")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, sbmCLI, "program", "--port", a.m.UARTPort(), "--package", pkgFile, "--upk", upkFile)
	log, err := cmd.CombinedOutput()
	t.Logf("sbm program:\n%s", log)
	if err != nil {
		t.Fatalf("sbm program: %v", err)
	}
	for _, want := range []string{
		"sbm: install complete; resetting",
		"sbm: verified application 1.1.0",
		"sbm board: jumping to the application at 0x00220000",
	} {
		if at, err = a.m.WaitConsole(ctx, at, want); err != nil {
			t.Fatal(err)
		}
	}
	appLine := fmt.Sprintf("app: boot info: device %x, SBM %s, application 1.1.0, security counter 2, lifecycle %d, updated this boot 0",
		a.id, sbm.Version, wire.LifecycleLocked)
	// The console UART: the SBM's boot log, then the application's output.
	for _, want := range []string{"sbm: verified application 1.1.0", "app: hello from the native Cortex-M3 application", appLine} {
		if err := a.m.WaitUART(ctx, want); err != nil {
			t.Fatal(err)
		}
	}

	// A power cycle: the SBM verifies the application from the chip file.
	at = len(a.m.Console())
	if err := a.m.PowerOn(ctx, &qemu.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	if at, err = a.m.WaitConsole(ctx, at, "sbm: verified application 1.1.0"); err != nil {
		t.Fatal(err)
	}
	if err := waitCount(ctx, a.m, appLine, 2); err != nil {
		t.Fatal(err)
	}

	// The refusals, in recovery (pin held) with 1.1.0 installed.
	at = len(a.m.Console())
	if err := a.m.PowerOn(ctx, &qemu.StartOptions{RecoveryPin: true}); err != nil {
		t.Fatal(err)
	}
	if at, err = a.m.WaitConsole(ctx, at, "sbm: recovery: recovery pin held"); err != nil {
		t.Fatal(err)
	}
	if at, err = a.m.WaitConsole(ctx, at, "sbm: recovery: waiting for a programmer on the UART"); err != nil {
		t.Fatal(err)
	}
	dial := func() (*client.Client, error) { return client.DialOptions{}.Dial(ctx, a.m.UARTPort()) }
	p1, u1, _ := release(t, c, app, "1.0.0", 1, a.prov.ID)
	p3, u3, cek3 := release(t, c, app, "1.2.0", 3, a.prov.ID)
	got := [3]wire.Code{
		refusal(t, ctx, "QEMU", dial, tampered(p3), u3),
		refusal(t, ctx, "QEMU", dial, p1, u1),
		refusal(t, ctx, "QEMU", dial, p3, upkFor(t, c, p3, cek3, b.prov.ID)),
	}
	if got != want {
		t.Errorf("QEMU refusals %v, virtual MCU %v", got, want)
	}
	// The application survived the refusals.
	at = len(a.m.Console())
	if err := a.m.PowerOn(ctx, &qemu.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err = a.m.WaitConsole(ctx, at, "sbm: verified application 1.1.0"); err != nil {
		t.Fatal(err)
	}
	if err := waitCount(ctx, a.m, appLine, 3); err != nil {
		t.Fatal(err)
	}

	// Whoever holds the flash chip flips one bit of the application in
	// the chip file: the SBM refuses it at the next boot and stays in
	// recovery; the application does not run.
	a.m.Stop()
	flipFlashBit(t, a.m.Chip, 0x20000+100)
	at = len(a.m.Console())
	if err := a.m.PowerOn(ctx, &qemu.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	if at, err = a.m.WaitConsole(ctx, at, "sbm: recovery: application hash mismatch"); err != nil {
		t.Fatal(err)
	}
	if _, err = a.m.WaitConsole(ctx, at, "sbm: recovery: waiting for a programmer on the UART"); err != nil {
		t.Fatal(err)
	}
	if strings.Count(a.m.UARTLog(), appLine) != 3 || strings.Contains(a.m.Console()[at:], "jumping to the application") {
		t.Error("the modified application ran")
	}
	if strings.Contains(a.m.Console(), "panic") {
		t.Errorf("the firmware panicked:\n%s", a.m.Console())
	}
}

// flipFlashBit flips one bit of the flash byte at offset off in the chip
// file (a flash-chip attacker: the debug port is locked).
func flipFlashBit(t *testing.T, chipFile string, off int64) {
	t.Helper()
	f, err := os.OpenFile(chipFile, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, chip.FlashOffset+off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x01
	if _, err := f.WriteAt(b, chip.FlashOffset+off); err != nil {
		t.Fatal(err)
	}
}

// waitCount waits until the UART log holds want at least n times.
func waitCount(ctx context.Context, m *qemu.Machine, want string, n int) error {
	for strings.Count(m.UARTLog(), want) < n {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d× %q on the UART: %w; UART log:\n%s", n, want, ctx.Err(), m.UARTLog())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// measureLine is the firmware's boot-verification measurement
// (firmware/mps2/launch.go).
var measureLine = regexp.MustCompile(`sbm board: measure: boot to launch (\d+) ticks; sha256 of the (\d+) byte application (\d+) ticks \( ([0-9a-f]{8}) \)`)

// TestFirmwareBootMeasurement installs a 256 KiB native application
// (the example application padded with zeroes) and boots it under
// qemu -icount shift=0 with the firmware's measurement on: the SBM's boot
// from sbm.Boot to the jump (storage, keys, signature table, the
// application's hash) against raw SHA-256 of the same 256 KiB in the same
// firmware, in timer ticks of 40 instructions. It logs the figures
// docs/silicon.md records.
//
//	SBM_FIRMWARE_TEST=1 go test ./firmware -run TestFirmwareBootMeasurement -v
func TestFirmwareBootMeasurement(t *testing.T) {
	requireFirmwareToolchain(t)
	out := buildBoard(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	app, err := os.ReadFile(filepath.Join(out, "app-mps2-an385.bin"))
	if err != nil {
		t.Fatal(err)
	}
	const size = 256 << 10
	big := make([]byte, size)
	copy(big, app)
	c, err := trust.Init(filepath.Join(t.TempDir(), "ctx"), nil)
	if err != nil {
		t.Fatal(err)
	}
	d := newQEMUDevice(t, ctx, c, filepath.Join(out, boardELF), "M")
	p, u, _ := release(t, c, big, "2.0.0", 1, d.prov.ID)
	at := len(d.m.Console())
	if err := d.m.PowerOn(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if at, err = d.m.WaitConsole(ctx, at, "sbm: recovery: waiting for a programmer on the UART"); err != nil {
		t.Fatal(err)
	}
	cl, err := client.DialOptions{}.Dial(ctx, d.m.UARTPort())
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	res, err := programmer.Program(ctx, cl, p, &programmer.ProgramOptions{UPK: u})
	cl.Close()
	if err != nil {
		t.Fatalf("program the 256 KiB application: %v", err)
	}
	t.Logf("programmed %d bytes in %v (%.1f KiB/s, %d frames, %d resent)", res.Bytes, time.Since(t0).Round(time.Millisecond),
		float64(res.Bytes)/1024/time.Since(t0).Seconds(), res.Stats.Frames, res.Stats.Resent)
	if _, err = d.m.WaitConsole(ctx, at, "sbm board: jumping to the application"); err != nil {
		t.Fatal(err)
	}
	at = len(d.m.Console())
	t1 := time.Now()
	if err := d.m.PowerOn(ctx, &qemu.StartOptions{Measure: true, ICount: true}); err != nil {
		t.Fatal(err)
	}
	if _, err = d.m.WaitConsole(ctx, at, "sbm board: jumping to the application"); err != nil {
		t.Fatal(err)
	}
	wall := time.Since(t1)
	m := measureLine.FindStringSubmatch(d.m.Console()[at:])
	if m == nil {
		t.Fatalf("no measurement in the console:\n%s", d.m.Console()[at:])
	}
	boot, _ := strconv.ParseUint(m[1], 10, 64)
	n, _ := strconv.Atoi(m[2])
	raw, _ := strconv.ParseUint(m[3], 10, 64)
	sum := sha256.Sum256(big)
	if n != size || m[4] != hex.EncodeToString(sum[:4]) {
		t.Fatalf("the firmware hashed %d bytes to %s…, want %d bytes, %x…", n, m[4], size, sum[:4])
	}
	if raw == 0 || boot <= raw {
		t.Fatalf("boot %d ticks, raw SHA-256 %d ticks: the boot must include the hash", boot, raw)
	}
	t.Logf("boot verification of a %d-byte application under -icount shift=0: sbm.Boot to the jump %d ticks = %d instructions; "+
		"raw SHA-256 of the same bytes %d ticks = %d instructions (%.1f instructions/byte); boot/raw = %.2f; QEMU wall time to the jump %v",
		n, boot, boot*40, raw, raw*40, float64(raw*40)/float64(n), float64(boot)/float64(raw), wall.Round(time.Millisecond))
}
