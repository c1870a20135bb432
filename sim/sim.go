// Package sim runs the Secure Boot Manager on virtual microcontrollers: the
// vmcu firmware that boots package sbm, a device started in-process for the
// duration of a host operation, and the SBM's public state read from a
// device directory.
package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/sbm-project/sbm/apphost"
	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/sbm"
	"github.com/sbm-project/sbm/vmcu"
)

// Firmware returns the boot firmware of a virtual device: the SBM with opts
// (nil for the defaults). If the device's SBM region holds no SBM, the SBM
// reports it and does nothing else, like an unprogrammed part.
func Firmware(opts *sbm.Options) vmcu.Firmware {
	return vmcu.FirmwareFunc(func(ctx context.Context, hw *hal.Hardware) { sbm.Boot(hw, opts) })
}

// FirmwareWithApps returns the boot firmware of a virtual device whose SBM
// runs the verified application: the SBM with opts (nil for the defaults),
// its Launch replaced by apphost.Run with app (nil for the defaults). The
// application's console is the device UART. When the application exits the
// SBM returns and the device idles until reset; the exit status or error
// goes to the boot log. Without app.Cache, the boots of this firmware value
// share one compilation cache, so a reset does not compile the application
// again.
func FirmwareWithApps(opts *sbm.Options, app *apphost.Options) vmcu.Firmware {
	var ao apphost.Options
	if app != nil {
		ao = *app
	}
	if ao.Cache == nil {
		ao.Cache = apphost.NewCache()
	}
	return vmcu.FirmwareFunc(func(ctx context.Context, hw *hal.Hardware) {
		var o sbm.Options
		if opts != nil {
			o = *opts
		}
		if o.Runs == nil {
			o.Runs = []string{"wasm"} // what apphost executes
		}
		o.Launch = func(a *sbm.AppInfo) {
			err := apphost.Run(ctx, hw, a, &ao)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				fmt.Fprintf(hw.Log, "sbm: application stopped: %v\n", err)
			} else {
				fmt.Fprintln(hw.Log, "sbm: application exited")
			}
		}
		sbm.Boot(hw, &o)
	})
}

// Running is a device powered on in-process.
type Running struct {
	Device *vmcu.Device
	cancel context.CancelFunc
	wg     sync.WaitGroup
	err    error
}

// Start opens the device in dir and runs fw on it in the background until
// Stop. Its boot log goes to log (nil discards it).
func Start(ctx context.Context, dir string, fw vmcu.Firmware, log io.Writer) (*Running, error) {
	d, err := vmcu.Open(dir)
	if err != nil {
		return nil, err
	}
	if log != nil {
		d.SetConsole(log)
	}
	return StartDevice(ctx, d, fw), nil
}

// StartDevice runs fw on an opened device in the background until Stop.
// It returns once the firmware has started (power-on clears RAM before
// that, so a host tool may use the RAM mailbox from then on).
func StartDevice(ctx context.Context, d *vmcu.Device, fw vmcu.Firmware) *Running {
	ctx, cancel := context.WithCancel(ctx)
	r := &Running{Device: d, cancel: cancel}
	started := make(chan struct{})
	var once sync.Once
	wrapped := vmcu.FirmwareFunc(func(ctx context.Context, hw *hal.Hardware) {
		once.Do(func() { close(started) })
		fw.Boot(ctx, hw)
	})
	done := make(chan struct{})
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer close(done)
		if err := d.Run(ctx, wrapped, false); err != nil && !errors.Is(err, context.Canceled) {
			r.err = err
		}
	}()
	select {
	case <-started:
	case <-done:
	}
	return r
}

// Stop powers the device off and closes it.
func (r *Running) Stop() error {
	r.cancel()
	r.wg.Wait()
	if err := r.Device.Close(); err != nil && r.err == nil {
		r.err = err
	}
	return r.err
}

// ReadState returns the SBM's public state from the device directory dir
// (it works while the device runs; records are authenticated as the SBM
// does, so a forged record is not shown) and the lifecycle accounting for
// the lock fuses.
func ReadState(dir string) (*sbm.State, error) {
	f, err := vmcu.FlashSnapshot(dir)
	if err != nil {
		return nil, err
	}
	puf, err := vmcu.PUFSnapshot(dir)
	if err != nil {
		return nil, err
	}
	st, err := sbm.ReadState(f, puf) // authenticated, as the SBM reads it
	if err != nil {
		return nil, fmt.Errorf("reading the SBM state: %w", err)
	}
	info, err := vmcu.Inspect(dir)
	if err != nil {
		return nil, err
	}
	st.Lifecycle = st.LifecycleWithLocks(info.Locks.Word)
	return st, nil
}
