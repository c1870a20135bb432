package programmer

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sbm-project/sbm/wire"
)

// TestProgramReady: Ready sees the device before anything is sent, and its
// error ends Program with no transfer begun.
func TestProgramReady(t *testing.T) {
	be := newBench(t, "small", false)
	p, u, _ := be.release(t, []byte("app"), "1.0.0", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := be.client()
	defer cl.Close()
	stop := errors.New("not this one")
	var seen *wire.DeviceInfo
	res, err := Program(ctx, cl, p, &ProgramOptions{UPK: u, Ready: func(info *wire.DeviceInfo) error {
		seen = info
		return stop
	}, Progress: func(int, int) { t.Error("progress before Ready returned") }})
	if !errors.Is(err, stop) || res == nil || res.Stats != nil {
		t.Fatalf("Program = %+v, %v", res, err)
	}
	if seen == nil || !bytes.Equal(seen.ID, be.prov.ID[:]) || seen != res.Before {
		t.Fatalf("Ready saw %+v", seen)
	}
	st, err := cl.Status(ctx)
	if err != nil || st.State != wire.StateIdle || st.Received != 0 {
		t.Fatalf("device status %+v, %v: want no transfer", st, err)
	}
}

// TestProgramResume: a Program interrupted mid-transfer leaves it in the
// device's session; the next Program with Resume continues there and
// installs the package.
func TestProgramResume(t *testing.T) {
	be := newBench(t, "small", false)
	data := bytes.Repeat([]byte("resumable "), 6000)
	p, u, _ := be.release(t, data, "1.0.0", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	cl := be.client()
	ictx, interrupt := context.WithCancel(ctx)
	_, err := Program(ictx, cl, p, &ProgramOptions{UPK: u, Progress: func(sent, total int) {
		if sent >= total/2 {
			interrupt()
		}
	}})
	interrupt()
	cl.Close()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted Program: %v", err)
	}

	cl = be.client()
	defer cl.Close()
	res, err := Program(ctx, cl, p, &ProgramOptions{UPK: u, Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stats.ResumedAt < res.Bytes/2 || res.Stats.ResumedAt >= res.Bytes {
		t.Fatalf("resumed at %d of %d", res.Stats.ResumedAt, res.Bytes)
	}
	select {
	case a := <-be.launch:
		if a.Version != "1.0.0" {
			t.Fatalf("launched %s", a.Version)
		}
	case <-ctx.Done():
		t.Fatal("the application was not launched")
	}
}
