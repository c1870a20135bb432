package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"sync"
	"testing"

	"github.com/sbm-project/sbm/image"
	"github.com/sbm-project/sbm/server/auditlog"
)

// TestUPKGroupCommit: devices asking for their UPKs at once (each twice,
// concurrently) are committed in shared transactions, and still each gets
// exactly one UPK, its own, the same on both requests, logged once with
// its digest; the log audits with a checkpoint at its end.
func TestUPKGroupCommit(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			c := newContext(t)
			f := start(t, c, e.open(t))
			ctx := context.Background()
			const n = 24
			devs := certifyFleet(t, f, n)
			v2 := publish(t, f, "2.0.0", 2)
			ro := f.startRollout(t, v2, 100, "", "")
			links := make([]string, n)
			for i, d := range devs {
				if links[i] = f.poll(t, d); links[i] == "" {
					t.Fatalf("device %d offered nothing", i)
				}
			}
			before, err := f.store.Log().Size(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got := make([][2][]byte, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i, d := range devs {
				cl := f.deviceClient(t, d)
				for k := range 2 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						code, body := call(t, cl, "GET", links[i]+"/upk", nil)
						if code != 200 || len(body) == 0 {
							t.Errorf("device %d: upk: %d %s", i, code, body)
						}
						got[i][k] = body
					}()
				}
			}
			close(start)
			wg.Wait()
			if t.Failed() {
				t.FailNow()
			}
			p, err := image.Parse(v2.pkg)
			if err != nil {
				t.Fatal(err)
			}
			byDevice := map[string][32]byte{}
			for i, d := range devs {
				if !bytes.Equal(got[i][0], got[i][1]) {
					t.Fatalf("device %d got two different UPKs", i)
				}
				if _, err := image.Verify(c, p, &image.VerifyOptions{Key: d.ka, UPK: got[i][0], DeviceID: d.id}); err != nil {
					t.Fatalf("device %d: its UPK: %v", i, err)
				}
				other := devs[(i+1)%n]
				if _, err := image.Verify(c, p, &image.VerifyOptions{Key: other.ka, UPK: got[i][0], DeviceID: other.id}); err == nil {
					t.Fatalf("device %d's UPK opens for another device", i)
				}
				byDevice[string(d.id)] = sha256.Sum256(got[i][0])
			}
			after, err := f.store.Log().Size(ctx)
			if err != nil || after != before+n {
				t.Fatalf("log %d → %d (%v), want %d new entries", before, after, err, n)
			}
			recs, err := f.store.Log().ReadRecords(ctx, before, after)
			if err != nil {
				t.Fatal(err)
			}
			checkpoints := 0
			for _, r := range recs {
				e, err := auditlog.ParseEntry(r.Entry)
				if err != nil {
					t.Fatal(err)
				}
				want, ok := byDevice[string(e.Device)]
				if e.Kind != auditlog.UPKIssued || !ok || *e.Digest != want {
					t.Fatalf("log entry %+v: not one of the UPKs answered", e)
				}
				delete(byDevice, string(e.Device))
				if len(r.Checkpoint) > 0 {
					checkpoints++
				}
			}
			if len(recs[len(recs)-1].Checkpoint) == 0 {
				t.Fatal("the log's last record has no checkpoint")
			}
			rep := f.auditLog(t)
			if rep.Size != after {
				t.Fatalf("audit of %d entries, log has %d", rep.Size, after)
			}
			// One checkpoint per batch: how many transactions the n UPKs took.
			t.Logf("rollout %s: %d UPKs (%d requests) committed in %d batches", ro.ID, n, 2*n, checkpoints)
		})
	}
}
