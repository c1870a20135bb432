package apphost

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/vmcu"
)

// tinyModule returns a hand-assembled WebAssembly module whose _start runs
// body (the code of a function () -> () with no locals; function 0 is the
// import wasi_snapshot_preview1.proc_exit(i32)).
func tinyModule(body ...byte) []byte {
	sec := func(id byte, content ...byte) []byte { return append([]byte{id, byte(len(content))}, content...) }
	name := func(s string) []byte { return append([]byte{byte(len(s))}, s...) }
	m := []byte{0, 'a', 's', 'm', 1, 0, 0, 0}
	m = append(m, sec(1, 2, 0x60, 1, 0x7f, 0, 0x60, 0, 0)...) // types: (i32)->(), ()->()
	imp := append([]byte{1}, name("wasi_snapshot_preview1")...)
	imp = append(append(imp, name("proc_exit")...), 0, 0)
	m = append(m, sec(2, imp...)...)
	m = append(m, sec(3, 1, 1)...)    // one function of type 1
	m = append(m, sec(5, 1, 0, 1)...) // one memory, min 1 page
	exp := append([]byte{2}, name("_start")...)
	exp = append(exp, 0, 1)
	exp = append(append(exp, name("memory")...), 2, 0)
	m = append(m, sec(7, exp...)...)
	code := append([]byte{byte(len(body) + 1), 0}, body...)
	return append(m, sec(10, append([]byte{1}, code...)...)...)
}

var (
	exit3    = tinyModule(0x41, 3, 0x10, 0, 0x0b)          // i32.const 3; call proc_exit
	spin     = tinyModule(0x03, 0x40, 0x0c, 0, 0x0b, 0x0b) // loop br 0 end
	trap     = tinyModule(0x00, 0x0b)                      // unreachable
	finished = tinyModule(0x0b)                            // returns
)

// TestExitStatus: Run returns nil when the application ends normally, an
// *ExitError with its status after os.Exit, and an error after a trap.
func TestExitStatus(t *testing.T) {
	if res := newDevice(t, finished).run(nil); !res.ran || res.err != nil {
		t.Errorf("returning application: Run = %v", res.err)
	}
	res := newDevice(t, exit3).run(nil)
	var ee *ExitError
	if !errors.As(res.err, &ee) || ee.Status != 3 {
		t.Errorf("exit(3): Run = %v", res.err)
	}
	if res := newDevice(t, trap).run(nil); res.err == nil || errors.As(res.err, &ee) {
		t.Errorf("trap: Run = %v", res.err)
	}
}

// TestStopsComputeLoop: an application that never calls the host (a
// compute loop) still stops when the device is reset.
func TestStopsComputeLoop(t *testing.T) {
	v := newDevice(t, spin)
	done := v.start(t.Context(), nil, nil)
	time.Sleep(300 * time.Millisecond)
	v.d.Reset(false)
	select {
	case res := <-done:
		if res.stop.Reason != vmcu.StopReset || !res.ran || !errors.Is(res.err, context.Canceled) {
			t.Errorf("stop %v, Run returned %v with %v", res.stop.Reason, res.ran, res.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the compute loop did not stop")
	}
}

// TestRequestUpdateResets: as with the SBM, a service that resets the
// device (RequestUpdate) stops the application inside the host call; the
// stop reaches the simulator as a reset.
func TestRequestUpdateResets(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("a small package"))
	}))
	defer srv.Close()
	v := newDevice(t, apps["updater"])
	fake := newFake(4096)
	v.app.Services = fake
	done := v.start(t.Context(), &Options{Args: []string{"update " + srv.URL}}, func(hw *hal.Hardware) {
		fake.onUpdate = hw.System.Reset
	})
	select {
	case res := <-done:
		if res.stop.Reason != vmcu.StopReset || res.ran {
			t.Errorf("stop %v, Run returned %v (%v); want a reset inside the call", res.stop.Reason, res.ran, res.err)
		}
	case <-time.After(time.Minute):
		t.Fatal("no reset")
	}
	if fake.updates != 1 || string(fake.staging[:15]) != "a small package" {
		t.Errorf("%d updates, staging %q", fake.updates, fake.staging[:15])
	}
	v.waitFor("update: 15 bytes staged; requesting the update")
}
