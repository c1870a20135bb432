package sim

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/wire"
	"github.com/sbm-project/sbm/wire/client"
)

// programUART boots the device (which resumes any pending install) while
// a host stands by on its UART: if the SBM serves a recovery session, the
// host programs pkg over it with the real wire client, as
// programmer.Program does (INFO, windowed transfer, FINISH, RESET; sim
// cannot import package programmer, whose tests import sim), and the
// device then resets into the application. It returns errPowerLost if a
// cut fired, or the host's error.
func (r *rig) programUART(pkg []byte) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan struct{}, 1)
	hostErr := make(chan error, 1)
	go func() {
		select {
		case <-ready:
		case <-ctx.Done():
			hostErr <- nil
			return
		}
		cl := client.New(r.d.UART().Pipe())
		defer cl.Close()
		err := hostProgram(ctx, cl, pkg)
		if err != nil && ctx.Err() == nil {
			r.d.Reset(false) // end the session the host gave up on
		}
		hostErr <- err
	}()
	served := false
	r.session = func(u hal.UART, t wire.Target, sys hal.System) bool {
		served = true
		drainRX(u)
		ready <- struct{}{}
		end, err := wire.NewSession(u, sys, t, wire.Config{Inactivity: 20 * time.Second}).Serve()
		if err != nil {
			sys.Sleep(100 * time.Millisecond)
		}
		return end == wire.EndReset || end == wire.EndInstalled
	}
	err := r.bootToApp(false, false)
	r.session = nil
	if err != nil || !served {
		cancel() // power lost, or no session: the host gives up
	}
	var herr error
	select {
	case herr = <-hostErr:
	case <-time.After(10 * time.Second):
		cancel()
		herr = <-hostErr
	}
	switch {
	case err != nil:
		return err
	case served && herr != nil:
		return fmt.Errorf("programming over the UART: %w", herr)
	case r.launched == nil:
		return errors.New("no application launched after programming")
	}
	return nil
}

// hostProgram is the programmer's side of a programming session.
func hostProgram(ctx context.Context, cl *client.Client, pkg []byte) error {
	if _, err := cl.Info(ctx); err != nil {
		return fmt.Errorf("device info: %w", err)
	}
	if _, err := cl.Send(ctx, pkg, client.SendOptions{}); err != nil {
		return err
	}
	if err := cl.Finish(ctx); err != nil {
		return err
	}
	return cl.Reset(ctx)
}

// drainRX discards what the UART received before this session: bytes an
// earlier host sent before the power was cut. A real UART's receive FIFO
// is empty at power-on; the simulator's keeps them (the host end of an
// in-memory pipe may deliver them after the device is back), and a stale
// frame's error reply can then answer the new host's HELLO (see
// docs/power-cut.md).
func drainRX(u hal.UART) {
	var junk [512]byte
	for {
		if n, err := u.Read(junk[:], 0); n <= 0 || err != nil {
			return
		}
	}
}
