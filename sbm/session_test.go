package sbm

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/vmcu"
	"github.com/sbm-project/sbm/wire"
	"github.com/sbm-project/sbm/wire/client"
)

// TestWireSession runs the SBM with its default recovery (a real
// wire.Session on the UART) on a running device, and a host client that
// reads INFO and the certificate, has a rejected package refused, sends
// a good package, and resets the device into the new application.
func TestWireSession(t *testing.T) {
	v := newDev(t, ctxA, 30)
	v.provision(false)
	rel := newRelease(t, ctxA, appData(6<<10, 1), "1.0.0", 1)
	other := newDev(t, ctxA, 31)
	other.provision(false)

	var mu sync.Mutex
	var launched []string
	fw := vmcu.FirmwareFunc(func(ctx context.Context, hw *hal.Hardware) {
		Boot(hw, &Options{Timeout: 5 * time.Second, Launch: func(a *AppInfo) {
			mu.Lock()
			launched = append(launched, a.Version)
			mu.Unlock()
			<-ctx.Done() // the application runs until the device stops
		}})
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- v.d.Run(ctx, fw, false) }()
	defer func() { cancel(); <-done }()

	c := client.New(v.d.UART().Pipe())
	defer c.Close()
	if _, err := c.Hello(ctx); err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id := v.d.ID()
	if !bytes.Equal(info.ID, id[:]) || info.Lifecycle != wire.LifecycleProvisioned || info.LastError != wire.CodeNoApplication {
		t.Fatalf("info %+v", info)
	}
	if cert, err := c.Certificate(ctx); err != nil || !bytes.Equal(cert, v.cert.Raw) {
		t.Fatalf("certificate: %v", err)
	}
	// A UPK for another device is refused before the payload.
	_, err = c.Send(ctx, rel.forDevice(other), client.SendOptions{})
	var we *wire.Error
	if !errors.As(err, &we) || we.Code != wire.CodeNotRecipient {
		t.Fatalf("foreign UPK: %v", err)
	}
	if _, err := c.Send(ctx, rel.forDevice(v), client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(30 * time.Second) // a hang guard, not a performance threshold
	for {
		mu.Lock()
		n := len(launched)
		mu.Unlock()
		if n > 0 {
			break
		}
		select {
		case <-time.After(5 * time.Millisecond):
		case <-deadline:
			t.Fatal("the new application did not start")
		}
	}
	if launched[0] != "1.0.0" {
		t.Fatalf("launched %v", launched)
	}
}

// TestRecoveryTimeoutBootsApplication: a device held in recovery (the pin)
// with nobody on the UART ends the session after its inactivity timeout and
// boots its verified application: a stranded session never keeps it out of
// service.
func TestRecoveryTimeoutBootsApplication(t *testing.T) {
	v := newDev(t, ctxA, 40)
	v.provision(false)
	rel := newRelease(t, ctxA, appData(4<<10, 3), "1.0.0", 1)
	if err := v.install(rel.forDevice(v)); err != nil {
		t.Fatal(err)
	}
	launched := make(chan string, 1)
	var log bytes.Buffer
	fw := vmcu.FirmwareFunc(func(ctx context.Context, hw *hal.Hardware) {
		h := *hw
		h.Log = &log
		Boot(&h, &Options{Timeout: 50 * time.Millisecond, Launch: func(a *AppInfo) { launched <- a.Version }})
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := v.d.PowerOn(ctx, fw, vmcu.PowerOnOptions{Recovery: true})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case ver := <-launched:
		if ver != "1.0.0" {
			t.Fatalf("launched %q", ver)
		}
	default:
		t.Fatalf("no application launched after the recovery timeout (stop %v)\nlog:\n%s", st.Reason, log.String())
	}
	if !bytes.Contains(log.Bytes(), []byte("recovery pin held")) {
		t.Fatalf("the boot did not enter recovery first:\n%s", log.String())
	}
}
