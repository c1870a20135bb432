package firmware

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sbm-project/sbm/firmware/qemu"
	"github.com/sbm-project/sbm/programmer"
	"github.com/sbm-project/sbm/trust"
	"github.com/sbm-project/sbm/wire/client"
)

// verifiedLine is the SBM's verified-boot line.
var verifiedLine = regexp.MustCompile(`sbm: verified application (\S+) \(sha256`)

// TestFirmwarePowerCutUnderQEMU cuts the board's power (kills QEMU)
// while the SBM authenticates and installs an update received over the
// UART, at several moments of the install, and powers it on again: each
// time the SBM must verify and launch a complete application, the old
// one or the new one (an install cut after its pending marker resumes at
// boot), and the application must report that version through the
// boot-info service. The moments are fractions of an uncut install's
// duration, measured first.
//
//	SBM_FIRMWARE_TEST=1 go test ./firmware -run TestFirmwarePowerCutUnderQEMU -v
func TestFirmwarePowerCutUnderQEMU(t *testing.T) {
	requireFirmwareToolchain(t)
	out := buildBoard(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	app, err := os.ReadFile(filepath.Join(out, "app-mps2-an385.bin"))
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 64<<10)
	copy(big, app)
	c, err := trust.Init(filepath.Join(t.TempDir(), "ctx"), &trust.InitOptions{Suite: trust.SuiteEd25519})
	if err != nil {
		t.Fatal(err)
	}
	d := newQEMUDevice(t, ctx, c, filepath.Join(out, boardELF), "P")

	// program sends version v (counter n) with the recovery pin held and,
	// if cut >= 0, cuts the power cut after the device acknowledged the
	// whole package; it returns how long FINISH took when not cut.
	program := func(v string, n uint32, cut time.Duration) time.Duration {
		t.Helper()
		p, u, _ := release(t, c, big, v, n, d.prov.ID)
		at := len(d.m.Console())
		if err := d.m.PowerOn(ctx, &qemu.StartOptions{RecoveryPin: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := d.m.WaitConsole(ctx, at, "sbm: recovery: waiting for a programmer on the UART"); err != nil {
			t.Fatal(err)
		}
		cl, err := client.DialOptions{}.Dial(ctx, d.m.UARTPort())
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		sent := make(chan time.Time, 1)
		done := make(chan error, 1)
		go func() {
			_, err := programmer.Program(ctx, cl, p, &programmer.ProgramOptions{UPK: u, NoReset: true,
				Progress: func(s, total int) {
					if s == total {
						select {
						case sent <- time.Now():
						default:
						}
					}
				}})
			done <- err
		}()
		var t0 time.Time
		select {
		case t0 = <-sent:
		case err := <-done:
			t.Fatalf("program %s: %v", v, err)
		}
		if cut >= 0 {
			time.Sleep(cut)
			d.m.Stop()
			<-done
			return 0
		}
		if err := <-done; err != nil {
			t.Fatalf("program %s: %v", v, err)
		}
		return time.Since(t0)
	}
	// boot powers the board on and returns the version the SBM verified
	// and launched; the application must report the same.
	boot := func() string {
		t.Helper()
		at, u0 := len(d.m.Console()), len(d.m.UARTLog())
		if err := d.m.PowerOn(ctx, &qemu.StartOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := d.m.WaitConsole(ctx, at, "sbm board: jumping to the application"); err != nil {
			t.Fatal(err)
		}
		m := verifiedLine.FindStringSubmatch(d.m.Console()[at:])
		if m == nil {
			t.Fatalf("no verified boot:\n%s", d.m.Console()[at:])
		}
		want := fmt.Sprintf("app: boot info: device %x, SBM 0.1.0, application %s, security counter", d.id, m[1])
		for !strings.Contains(d.m.UARTLog()[u0:], want) {
			select {
			case <-ctx.Done():
				t.Fatalf("the application did not report %s; UART:\n%s", m[1], d.m.UARTLog()[u0:])
			case <-time.After(20 * time.Millisecond):
			}
		}
		return m[1]
	}

	finish := program("1.0.0", 1, -1)
	if v := boot(); v != "1.0.0" {
		t.Fatalf("after an uncut install the SBM runs %s", v)
	}
	t.Logf("uncut: FINISH (authenticate, install, commit) took %v", finish.Round(time.Millisecond))
	installed, n := "1.0.0", uint32(1)
	outcomes := map[string]int{}
	for i, f := range []float64{0, 0.15, 0.3, 0.45, 0.6, 0.75, 0.9, 1.1} {
		n++
		v := fmt.Sprintf("1.%d.0", n)
		cut := time.Duration(f * float64(finish))
		program(v, n, cut)
		got := boot()
		switch got {
		case v:
			installed = v
			outcomes["new"]++
		case installed:
			outcomes["old"]++
		default:
			t.Fatalf("cut %d at %v: the SBM runs %s; installed was %s, the update %s", i, cut, got, installed, v)
		}
		t.Logf("cut %d at %v (%.0f%% of FINISH): runs %s", i, cut.Round(time.Millisecond), f*100, got)
	}
	t.Logf("outcomes: %v; installs resumed at boot: %d", outcomes,
		strings.Count(d.m.Console(), "sbm: resuming an interrupted install"))
}
