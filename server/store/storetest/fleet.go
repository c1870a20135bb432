package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sbm-project/sbm/server/auditlog"
	"github.com/sbm-project/sbm/server/store"
)

// fleetTests are the conformance tests of the update service's storage.
var fleetTests = []struct {
	name string
	f    func(t *testing.T, open func() (store.Store, error))
}{
	{"FleetState", testFleetState},
	{"Rollouts", testRollouts},
	{"Actions", testActions},
	{"RevokeDevice", testRevokeDevice},
	{"ActionUPK", testActionUPK},
	{"ActionUPKs", testActionUPKs},
	{"Reports", testReports},
	{"Cohorts", testCohorts},
	{"OfferRace", testOfferRace},
}

// certifyDevices certifies n devices under a new order name (IDs
// fmt.Sprintf("%s-%04d", name, i)), without log entries, and returns the
// IDs.
func certifyDevices(t *testing.T, s store.Store, name string, n int) []string {
	t.Helper()
	ctx := context.Background()
	if err := s.CreateOrder(ctx, newOrder(name, int64(n))); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%04d", name, i)
		if _, err := s.Reserve(ctx, name, ids[i]); err != nil {
			t.Fatal(err)
		}
		d := &store.Device{DeviceID: ids[i], OrderID: name, Station: []byte{1}, Certificate: []byte("cert " + ids[i])}
		if err := s.Certify(ctx, d, func(context.Context, int64, auditlog.Store) (int64, error) { return int64(i), nil }); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

// putRelease publishes a fake package and returns its manifest digest.
func putRelease(t *testing.T, s store.Store, version string) [32]byte {
	t.Helper()
	r := &store.Release{ManifestDigest: sha256.Sum256([]byte("manifest " + version)), Version: version, SecurityCounter: 1, Package: []byte("package " + version)}
	if err := s.PutRelease(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return r.ManifestDigest
}

func startRollout(t *testing.T, s store.Store, id string, release [32]byte, share, maxFailures int64, percent bool) *store.Rollout {
	t.Helper()
	return startCohort(t, s, id, "", release, share, maxFailures, percent)
}

func startCohort(t *testing.T, s store.Store, id, cohort string, release [32]byte, share, maxFailures int64, percent bool) *store.Rollout {
	t.Helper()
	r := &store.Rollout{ID: id, ManifestDigest: release, Cohort: cohort, Share: share, MaxFailures: maxFailures, FailuresPercent: percent}
	if err := s.CreateRollout(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return r
}

func wantCounts(t *testing.T, s store.Store, id string, targeted, downloaded, installed, failed int64, state store.RolloutState) {
	t.Helper()
	r, err := s.Rollout(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if r.Targeted != targeted || r.Downloaded != downloaded || r.Installed != installed || r.Failed != failed || r.State != state {
		t.Fatalf("rollout %s: %s targeted %d downloaded %d installed %d failed %d; want %s %d %d %d %d", id,
			r.State, r.Targeted, r.Downloaded, r.Installed, r.Failed, state, targeted, downloaded, installed, failed)
	}
}

// testFleetState: a certified device's state starts empty, last seen
// only moves forward, revocation sticks, unknown devices are refused.
func testFleetState(t *testing.T, open func() (store.Store, error)) {
	ctx := context.Background()
	s := mustOpen(t, open)
	ids := certifyDevices(t, s, "f", 3)
	_, _, err := s.FleetDevice(ctx, "nobody")
	wantErr(t, "unknown device", err, store.ErrNotFound)
	d, st, err := s.FleetDevice(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if d.OrderID != "f" || string(d.Certificate) != "cert "+ids[0] || st.DeviceID != ids[0] || !st.LastSeen.IsZero() || st.Result != -1 || st.Revoked || st.Version != "" {
		t.Fatalf("fresh device %+v %+v", d, st)
	}
	t1 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	if err := s.Seen(ctx, map[string]time.Time{ids[0]: t1, ids[1]: t1, "nobody": t1}); err != nil {
		t.Fatal(err)
	}
	if err := s.Seen(ctx, map[string]time.Time{ids[0]: t1.Add(-time.Hour), ids[1]: t1.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.FleetDevice(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Seen created an unknown device: %v", err)
	}
	list, err := s.FleetList(ctx, "", 2)
	if err != nil || len(list) != 2 || list[0].DeviceID != ids[0] || list[1].DeviceID != ids[1] {
		t.Fatalf("fleet list %+v, %v", list, err)
	}
	if !list[0].LastSeen.Equal(t1) || !list[1].LastSeen.Equal(t1.Add(time.Minute)) {
		t.Fatalf("last seen %v %v, want %v and a minute later", list[0].LastSeen, list[1].LastSeen, t1)
	}
	rest, err := s.FleetList(ctx, list[1].DeviceID, 10)
	if err != nil || len(rest) != 1 || rest[0].DeviceID != ids[2] || !rest[0].LastSeen.IsZero() {
		t.Fatalf("second page %+v, %v", rest, err)
	}
	for range 2 {
		if err := s.RevokeDevice(ctx, ids[2], nil); err != nil {
			t.Fatal(err)
		}
	}
	wantErr(t, "revoke unknown", s.RevokeDevice(ctx, "nobody", nil), store.ErrNotFound)
	if _, st, _ := s.FleetDevice(ctx, ids[2]); !st.Revoked {
		t.Fatal("revocation not stored")
	}
	if _, st, _ := s.FleetDevice(ctx, ids[1]); st.Revoked {
		t.Fatal("another device revoked")
	}
}

// testRollouts: creation, one active rollout at a time, share and state
// changes, offers only while running and in the cohort.
func testRollouts(t *testing.T, open func() (store.Store, error)) {
	ctx := context.Background()
	s := mustOpen(t, open)
	ids := certifyDevices(t, s, "r", 4)
	v1, v2 := putRelease(t, s, "1.0.0"), putRelease(t, s, "2.0.0")
	err := s.CreateRollout(ctx, &store.Rollout{ID: "x", ManifestDigest: sha256.Sum256([]byte("unpublished")), Share: 100, MaxFailures: -1})
	wantErr(t, "rollout of an unknown release", err, store.ErrNotFound)
	if err := s.CreateRollout(ctx, &store.Rollout{ID: "x", ManifestDigest: v1, Share: 0}); err == nil {
		t.Fatal("rollout of 0 % created")
	}
	r1 := startRollout(t, s, "r1", v1, 5000, -1, false)
	if r1.State != store.RolloutRunning || r1.Version != "1.0.0" || r1.Created.IsZero() {
		t.Fatalf("created %+v", r1)
	}
	err = s.CreateRollout(ctx, &store.Rollout{ID: "r2", ManifestDigest: v2, Share: 100, MaxFailures: -1})
	wantErr(t, "second rollout while one runs", err, store.ErrRolloutActive)

	// Offers follow the cohort.
	var in, out []string
	for _, id := range ids {
		if store.InCohort("rollout:r1", id, 5000) {
			in = append(in, id)
		} else {
			out = append(out, id)
		}
	}
	for _, id := range ids {
		a, err := s.Offer(ctx, id, "r1")
		if store.InCohort("rollout:r1", id, 5000) {
			if err != nil || a.State != store.ActionOffered || a.RolloutID != "r1" || a.DeviceID != id {
				t.Fatalf("offer to %s: %+v, %v", id, a, err)
			}
		} else {
			wantErr(t, "offer outside the cohort", err, store.ErrNotFound)
		}
	}
	if _, err := s.Offer(ctx, ids[0], "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("offer of an unknown rollout: %v", err)
	}
	wantCounts(t, s, "r1", int64(len(in)), 0, 0, 0, store.RolloutRunning)

	// Paused: no new offer, the existing actions stay.
	pause := func(r *store.Rollout) error { r.State = store.RolloutPaused; return nil }
	if _, err := s.UpdateRollout(ctx, "r1", pause); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateRollout(ctx, "r1", func(r *store.Rollout) error { r.Share = store.FullShare; return nil }); err != nil {
		t.Fatal(err)
	}
	for _, id := range out {
		_, err := s.Offer(ctx, id, "r1")
		wantErr(t, "offer while paused", err, store.ErrNotFound)
	}
	for _, id := range in {
		if a, err := s.Offer(ctx, id, "r1"); err != nil || a.State != store.ActionOffered {
			t.Fatalf("existing action while paused: %+v, %v", a, err)
		}
	}
	wantCounts(t, s, "r1", int64(len(in)), 0, 0, 0, store.RolloutPaused)
	boom := errors.New("boom")
	if _, err := s.UpdateRollout(ctx, "r1", func(r *store.Rollout) error { r.State = store.RolloutAborted; return boom }); !errors.Is(err, boom) {
		t.Fatalf("update returning an error: %v", err)
	}
	if _, err := s.UpdateRollout(ctx, "r1", func(r *store.Rollout) error { r.Share = 0; return nil }); !errors.Is(err, store.ErrRolloutState) {
		t.Fatalf("share 0: %v", err)
	}
	_, err = s.UpdateRollout(ctx, "nope", pause)
	wantErr(t, "update unknown", err, store.ErrNotFound)
	// Paused at 100 % still blocks a new rollout; running at 100 % is done
	// when the next starts.
	err = s.CreateRollout(ctx, &store.Rollout{ID: "r2", ManifestDigest: v2, Share: 100, MaxFailures: -1})
	wantErr(t, "new rollout while one is paused", err, store.ErrRolloutActive)
	if _, err := s.UpdateRollout(ctx, "r1", func(r *store.Rollout) error { r.State = store.RolloutRunning; return nil }); err != nil {
		t.Fatal(err)
	}
	startCohort(t, s, "r2", "canary", v2, 100, 3, true)
	list, err := s.Rollouts(ctx)
	if err != nil || len(list) != 2 || list[0].ID != "r1" || list[0].State != store.RolloutDone || list[1].ID != "r2" ||
		list[1].State != store.RolloutRunning || list[1].MaxFailures != 3 || !list[1].FailuresPercent || list[1].Cohort != "canary" || list[1].CohortKey() != "cohort:canary" {
		t.Fatalf("rollouts %+v, %v", list, err)
	}
	acts, err := s.DeviceActions(ctx, in[0])
	if err != nil || len(acts) == 0 || acts[0].RolloutID != "r1" {
		t.Fatalf("actions of %s: %+v, %v", in[0], acts, err)
	}
	// FleetDevice reads the same actions with the device, in one query.
	if _, err := s.Offer(ctx, in[0], "r2"); err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	idle := certifyDevices(t, s, "idle", 1)
	for _, id := range []string{in[0], idle[0], "never-offered"} {
		want, err := s.DeviceActions(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		_, st, err := s.FleetDevice(ctx, id)
		if id == "never-offered" {
			wantErr(t, "unknown device", err, store.ErrNotFound)
			continue
		}
		if err != nil || len(st.Actions) != len(want) {
			t.Fatalf("FleetDevice(%s) actions %+v, %v; DeviceActions %+v", id, st.Actions, err, want)
		}
		for i, a := range st.Actions {
			if a.RolloutID != want[i].RolloutID || a.State != want[i].State || !bytes.Equal(a.UPK, want[i].UPK) ||
				!a.Created.Equal(want[i].Created) || !a.Updated.Equal(want[i].Updated) || a.DeviceID != id {
				t.Fatalf("FleetDevice(%s) action %d = %+v, DeviceActions %+v", id, i, a, want[i])
			}
		}
	}
}

// testActions: feedback moves actions and counts them; failures past
// the threshold halt the rollout.
func testActions(t *testing.T, open func() (store.Store, error)) {
	ctx := context.Background()
	s := mustOpen(t, open)
	ids := certifyDevices(t, s, "a", 4)
	v1 := putRelease(t, s, "1.0.0")
	startRollout(t, s, "ra", v1, store.FullShare, 1, false)
	for _, id := range ids {
		if _, err := s.Offer(ctx, id, "ra"); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		device int
		to     store.ActionState
		want   error
		halted bool
		counts [4]int64
		state  store.RolloutState
	}{
		{0, store.ActionDownloaded, nil, false, [4]int64{4, 1, 0, 0}, store.RolloutRunning},
		{0, store.ActionDownloaded, nil, false, [4]int64{4, 1, 0, 0}, store.RolloutRunning}, // again: no-op
		{1, store.ActionFailed, nil, false, [4]int64{4, 1, 0, 1}, store.RolloutRunning},     // 1 failure: at the threshold
		{1, store.ActionFailed, nil, false, [4]int64{4, 1, 0, 1}, store.RolloutRunning},     // again: no-op
		{1, store.ActionDownloaded, store.ErrActionState, false, [4]int64{4, 1, 0, 1}, store.RolloutRunning},
		{0, store.ActionFailed, nil, true, [4]int64{4, 1, 0, 2}, store.RolloutHalted}, // 2 > 1: halted
		{2, store.ActionInstalled, nil, false, [4]int64{4, 1, 0, 2}, store.RolloutHalted},
	}
	for i, st := range steps {
		out, err := s.Feedback(ctx, ids[st.device], "ra", st.to)
		if st.to == store.ActionInstalled {
			if err == nil {
				t.Fatalf("step %d: feedback may not install", i)
			}
		} else if !errors.Is(err, st.want) || (err == nil && (out.Halted != st.halted || out.Action.State != st.to)) {
			t.Fatalf("step %d: %+v, %v; want %v, halted %v", i, out, err, st.want, st.halted)
		}
		wantCounts(t, s, "ra", st.counts[0], st.counts[1], st.counts[2], st.counts[3], st.state)
	}
	_, err := s.Feedback(ctx, "nobody", "ra", store.ActionFailed)
	wantErr(t, "feedback of an unknown action", err, store.ErrNotFound)

	// A percentage threshold: 50 % of the targeted devices.
	pct := []struct {
		failures int
		halted   bool
	}{{1, false}, {2, false}, {3, true}}
	_, err = s.UpdateRollout(ctx, "ra", func(r *store.Rollout) error { r.State = store.RolloutAborted; return nil })
	if err != nil {
		t.Fatal(err)
	}
	more := certifyDevices(t, s, "b", 4)
	startRollout(t, s, "rb", putRelease(t, s, "2.0.0"), store.FullShare, 50, true)
	for _, id := range more {
		if _, err := s.Offer(ctx, id, "rb"); err != nil {
			t.Fatal(err)
		}
	}
	for i, p := range pct {
		out, err := s.Feedback(ctx, more[i], "rb", store.ActionFailed)
		if err != nil || out.Halted != p.halted {
			t.Fatalf("failure %d of 4 at 50 %%: %+v, %v; want halted %v", p.failures, out, err, p.halted)
		}
	}
}

// loggedDevices loads an order of n devices and certifies them, each with
// its log entries, as "name-0", "name-1", …
func loggedDevices(t *testing.T, s store.Store, name string, n int) []string {
	t.Helper()
	ctx := context.Background()
	if err := s.LoadOrder(ctx, newOrder(name, int64(n)), nil, loadedEntry(name, int64(n))); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range n {
		id := fmt.Sprintf("%s-%d", name, i)
		if _, err := s.Reserve(ctx, name, id); err != nil {
			t.Fatal(err)
		}
		d := &store.Device{DeviceID: id, OrderID: name, Station: []byte{1}, Certificate: []byte("cert " + id)}
		if err := s.Certify(ctx, d, certifiedEntry(name, d)); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// testRevokeDevice: a revocation is logged exactly once, in its
// transaction: twice logs one entry, an unknown device none, a failing
// log leaves the device unrevoked; the audit counts it.
func testRevokeDevice(t *testing.T, open func() (store.Store, error)) {
	ctx := context.Background()
	s := mustOpen(t, open)
	ids := loggedDevices(t, s, "v", 3)
	calls := 0
	logf := func(ctx context.Context, d *store.Device, ls auditlog.Store) error {
		calls++
		if d.DeviceID != ids[0] || d.OrderID != "v" || string(d.Certificate) != "cert "+ids[0] {
			return fmt.Errorf("revocation of device %+v", d)
		}
		digest := sha256.Sum256(d.Certificate)
		_, err := appendEntry(ctx, ls, &auditlog.Entry{Kind: auditlog.DeviceRevoked, Order: orderID(d.OrderID), Device: []byte(d.DeviceID), Digest: &digest})
		return err
	}
	size := func() int64 {
		n, err := s.Log().Size(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	revoked := func(id string) bool {
		_, st, err := s.FleetDevice(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return st.Revoked
	}
	before := size()
	boom := errors.New("boom")
	err := s.RevokeDevice(ctx, ids[0], func(ctx context.Context, d *store.Device, ls auditlog.Store) error {
		if err := logf(ctx, d, ls); err != nil {
			return err
		}
		return boom
	})
	wantErr(t, "revocation with a failing log", err, boom)
	if revoked(ids[0]) || size() != before {
		t.Fatalf("a failed revocation left revoked %v, log %d → %d", revoked(ids[0]), before, size())
	}
	calls = 0
	for range 2 {
		if err := s.RevokeDevice(ctx, ids[0], logf); err != nil {
			t.Fatal(err)
		}
	}
	if !revoked(ids[0]) || revoked(ids[1]) || calls != 1 || size() != before+1 {
		t.Fatalf("revoked twice: %v %v, logf called %d times, log %d → %d", revoked(ids[0]), revoked(ids[1]), calls, before, size())
	}
	wantErr(t, "revoke unknown", s.RevokeDevice(ctx, "nobody", logf), store.ErrNotFound)
	if calls != 1 || size() != before+1 {
		t.Fatalf("unknown device: logf called %d times, log %d → %d", calls, before, size())
	}
	rep := audit(t, s)
	if o := rep.Orders[orderID("v")]; o.DevicesRevoked != 1 || o.Certified != 3 {
		t.Fatalf("audit: %+v", o)
	}
	if _, ok := rep.RevokedDevices[hex.EncodeToString([]byte(ids[0]))]; !ok || len(rep.RevokedDevices) != 1 {
		t.Fatalf("audit's revoked devices %v", rep.RevokedDevices)
	}
}

// testActionUPK: the first UPK stored is the one returned ever after; a
// failing log stores nothing; closed actions get none.
func testActionUPK(t *testing.T, open func() (store.Store, error)) {
	ctx := context.Background()
	s := mustOpen(t, open)
	ids := loggedDevices(t, s, "u", 3)
	startRollout(t, s, "ru", putRelease(t, s, "1.0.0"), store.FullShare, -1, false)
	for _, id := range ids {
		if _, err := s.Offer(ctx, id, "ru"); err != nil {
			t.Fatal(err)
		}
	}
	logged := 0
	logf := func(ctx context.Context, d *store.Device, ls auditlog.Store) error {
		if d.OrderID != "u" {
			return fmt.Errorf("device of order %q", d.OrderID)
		}
		logged++
		digest := sha256.Sum256([]byte("upk"))
		_, err := appendEntry(ctx, ls, &auditlog.Entry{Kind: auditlog.UPKIssued, Order: orderID("u"), Station: make([]byte, 32), Device: []byte(d.DeviceID), Digest: &digest})
		return err
	}
	size := func() int64 {
		n, err := s.Log().Size(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := size()
	boom := errors.New("boom")
	_, err := s.ActionUPK(ctx, ids[0], "ru", []byte("upk A"), func(ctx context.Context, d *store.Device, ls auditlog.Store) error {
		if err := logf(ctx, d, ls); err != nil {
			return err
		}
		return boom
	})
	wantErr(t, "UPK with a failing log", err, boom)
	if acts, _ := s.DeviceActions(ctx, ids[0]); acts[0].UPK != nil || size() != before {
		t.Fatalf("a failed UPK left %q, log %d → %d", acts[0].UPK, before, size())
	}
	logged = 0
	got, err := s.ActionUPK(ctx, ids[0], "ru", []byte("upk A"), logf)
	if err != nil || string(got) != "upk A" {
		t.Fatalf("first UPK %q, %v", got, err)
	}
	got, err = s.ActionUPK(ctx, ids[0], "ru", []byte("upk B"), logf)
	if err != nil || string(got) != "upk A" || logged != 1 || size() != before+1 {
		t.Fatalf("second UPK %q, %v; logged %d, log %d → %d", got, err, logged, before, size())
	}
	_, err = s.ActionUPK(ctx, "nobody", "ru", []byte("x"), logf)
	wantErr(t, "UPK of an unknown action", err, store.ErrNotFound)
	if _, err := s.Feedback(ctx, ids[1], "ru", store.ActionFailed); err != nil {
		t.Fatal(err)
	}
	_, err = s.ActionUPK(ctx, ids[1], "ru", []byte("x"), logf)
	wantErr(t, "UPK of a failed action", err, store.ErrActionState)
	if _, err := s.UpdateRollout(ctx, "ru", func(r *store.Rollout) error { r.State = store.RolloutAborted; return nil }); err != nil {
		t.Fatal(err)
	}
	_, err = s.ActionUPK(ctx, ids[2], "ru", []byte("x"), logf)
	wantErr(t, "UPK in an aborted rollout", err, store.ErrActionState)
	if got, err := s.ActionUPK(ctx, ids[0], "ru", []byte("upk C"), logf); err != nil || string(got) != "upk A" {
		t.Fatalf("stored UPK after the abort: %q, %v", got, err)
	}
	if logged != 1 || size() != before+1 {
		t.Fatalf("refusals logged: %d, log %d → %d", logged, before, size())
	}
	if rep := audit(t, s); rep.Orders[orderID("u")].UPKs != 1 {
		t.Fatalf("audit: %+v", rep.Orders[orderID("u")])
	}
}

// testActionUPKs: a batch stores each open action's first UPK and logs
// exactly those in one call of logf; refused grants carry their error and
// do not stop the others; a failing log stores nothing of the batch.
func testActionUPKs(t *testing.T, open func() (store.Store, error)) {
	ctx := context.Background()
	s := mustOpen(t, open)
	ids := loggedDevices(t, s, "b", 5)
	startRollout(t, s, "rb", putRelease(t, s, "1.0.0"), store.FullShare, -1, false)
	for _, id := range ids[:4] { // b-4 is offered nothing
		if _, err := s.Offer(ctx, id, "rb"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.ActionUPK(ctx, ids[1], "rb", []byte("upk 1 first"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Feedback(ctx, ids[2], "rb", store.ActionFailed); err != nil {
		t.Fatal(err)
	}
	var calls int
	var logged []string
	logf := func(ctx context.Context, stored []*store.UPKGrant, ls auditlog.Store) error {
		calls++
		for _, g := range stored {
			if g.Device == nil || g.Device.OrderID != "b" || g.Device.DeviceID != g.DeviceID {
				return fmt.Errorf("grant of %s with device %+v", g.DeviceID, g.Device)
			}
			digest := sha256.Sum256(g.UPK)
			if _, err := appendEntry(ctx, ls, &auditlog.Entry{Kind: auditlog.UPKIssued, Order: orderID("b"), Station: make([]byte, 32), Device: []byte(g.DeviceID), Digest: &digest}); err != nil {
				return err
			}
			logged = append(logged, g.DeviceID)
		}
		return nil
	}
	size := func() int64 {
		n, err := s.Log().Size(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	batch := func() []*store.UPKGrant {
		return []*store.UPKGrant{
			{DeviceID: ids[0], RolloutID: "rb", UPK: []byte("upk 0")},
			{DeviceID: ids[1], RolloutID: "rb", UPK: []byte("upk 1 again")}, // has one
			{DeviceID: ids[2], RolloutID: "rb", UPK: []byte("upk 2")},       // failed action
			{DeviceID: ids[3], RolloutID: "rb", UPK: []byte("upk 3")},
			{DeviceID: ids[3], RolloutID: "rb", UPK: []byte("upk 3 twice")}, // the same action again
			{DeviceID: ids[4], RolloutID: "rb", UPK: []byte("upk 4")},       // no action
		}
	}
	before := size()
	boom := errors.New("boom")
	failing := batch()
	err := s.ActionUPKs(ctx, failing, func(ctx context.Context, stored []*store.UPKGrant, ls auditlog.Store) error {
		if err := logf(ctx, stored, ls); err != nil {
			return err
		}
		return boom
	})
	wantErr(t, "batch with a failing log", err, boom)
	for _, g := range failing {
		if g.Stored != nil {
			t.Fatalf("failed batch: grant of %s says stored %q", g.DeviceID, g.Stored)
		}
	}
	if acts, _ := s.DeviceActions(ctx, ids[0]); acts[0].UPK != nil || size() != before {
		t.Fatalf("a failed batch left %q, log %d → %d", acts[0].UPK, before, size())
	}
	calls, logged = 0, nil
	gs := batch()
	if err := s.ActionUPKs(ctx, gs, logf); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		stored string
		err    error
	}{{"upk 0", nil}, {"upk 1 first", nil}, {"", store.ErrActionState}, {"upk 3", nil}, {"upk 3", nil}, {"", store.ErrNotFound}}
	for i, g := range gs {
		if string(g.Stored) != want[i].stored || !errors.Is(g.Err, want[i].err) || (want[i].err == nil) != (g.Err == nil) {
			t.Errorf("grant %d (%s): stored %q, err %v; want %q, %v", i, g.DeviceID, g.Stored, g.Err, want[i].stored, want[i].err)
		}
	}
	if calls != 1 || !slices.Equal(logged, []string{ids[0], ids[3]}) || size() != before+2 {
		t.Fatalf("logf called %d times, logged %v, log %d → %d", calls, logged, before, size())
	}
	for i, wantUPK := range []string{"upk 0", "upk 1 first", "", "upk 3"} {
		acts, err := s.DeviceActions(ctx, ids[i])
		if err != nil || string(acts[0].UPK) != wantUPK {
			t.Fatalf("action of %s: %+v, %v; want UPK %q", ids[i], acts, err, wantUPK)
		}
	}
	calls = 0
	again := batch()
	if err := s.ActionUPKs(ctx, again, logf); err != nil || calls != 0 || size() != before+2 || string(again[0].Stored) != "upk 0" {
		t.Fatalf("repeated batch: %v, logf called %d times, log %d → %d, %q", err, calls, before, size(), again[0].Stored)
	}
	if err := s.ActionUPKs(ctx, []*store.UPKGrant{{DeviceID: ids[0], RolloutID: "rb"}}, logf); err == nil {
		t.Fatal("a grant without a UPK accepted")
	}
	if err := s.ActionUPKs(ctx, make([]*store.UPKGrant, store.MaxUPKGrants+1), logf); err == nil {
		t.Fatal("an oversized batch accepted")
	}
	if rep := audit(t, s); rep.Orders[orderID("b")].UPKs != 2 { // the first UPK of b-1 was stored unlogged
		t.Fatalf("audit: %+v", rep.Orders[orderID("b")])
	}
}

// testReports: reports are stored with increasing sequences only; they
// update the fleet state and settle the action they are about.
func testReports(t *testing.T, open func() (store.Store, error)) {
	ctx := context.Background()
	s := mustOpen(t, open)
	ids := certifyDevices(t, s, "p", 3)
	v1, v2 := putRelease(t, s, "1.0.0"), putRelease(t, s, "2.0.0")
	startRollout(t, s, "rp", v2, store.FullShare, 0, false)
	for _, id := range ids {
		if _, err := s.Offer(ctx, id, "rp"); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	received := func(seq uint64) time.Time {
		return t0.Add(time.Duration(seq>>32*1000+seq&0xffffffff) * time.Millisecond)
	}
	rep := func(dev int, seq uint64, app [32]byte, result int, pkg []byte) *store.ReportUpdate {
		return &store.ReportUpdate{StoredReport: store.StoredReport{DeviceID: ids[dev], Sequence: seq, Report: []byte(fmt.Sprintf("report %d %d", dev, seq)), Received: received(seq)},
			Version: map[[32]byte]string{v1: "1.0.0", v2: "2.0.0"}[app], ManifestDigest: app[:], Result: result, Detail: fmt.Sprintf("result %d", result), Package: pkg}
	}
	steps := []struct {
		name    string
		u       *store.ReportUpdate
		want    error
		settled store.ActionState // "": none
		halted  bool
		counts  [4]int64
	}{
		{"still on 1.0.0, no result", rep(0, 5<<32|1, v1, -1, nil), nil, "", false, [4]int64{3, 0, 0, 0}},
		{"replay", rep(0, 5<<32|1, v1, -1, nil), store.ErrReportSequence, "", false, [4]int64{3, 0, 0, 0}},
		{"older", rep(0, 4<<32|9, v1, -1, nil), store.ErrReportSequence, "", false, [4]int64{3, 0, 0, 0}},
		{"installed", rep(0, 5<<32|2, v2, 0, v2[:]), nil, store.ActionInstalled, false, [4]int64{3, 1, 1, 0}},
		{"after the install", rep(0, 6<<32|1, v2, -1, nil), nil, "", false, [4]int64{3, 1, 1, 0}},
		{"another release's failure", rep(1, 1, v1, 14, v1[:]), nil, "", false, [4]int64{3, 1, 1, 0}},
		{"failed: past 0 failures", rep(1, 2, v1, 14, v2[:]), nil, store.ActionFailed, true, [4]int64{3, 1, 1, 1}},
	}
	for _, st := range steps {
		out, err := s.RecordReport(ctx, st.u)
		if !errors.Is(err, st.want) {
			t.Fatalf("%s: %v, want %v", st.name, err, st.want)
		}
		if err == nil {
			if (st.settled == "") != (out.Action == nil) || (out.Action != nil && out.Action.State != st.settled) || out.Halted != st.halted {
				t.Fatalf("%s: outcome %+v, want %q halted %v", st.name, out, st.settled, st.halted)
			}
		}
		state := store.RolloutRunning
		if st.counts[3] > 0 {
			state = store.RolloutHalted
		}
		wantCounts(t, s, "rp", st.counts[0], st.counts[1], st.counts[2], st.counts[3], state)
	}
	_, err := s.RecordReport(ctx, &store.ReportUpdate{StoredReport: store.StoredReport{DeviceID: "nobody", Sequence: 1, Report: []byte("x")}, Result: -1})
	wantErr(t, "report of an unknown device", err, store.ErrNotFound)
	got, err := s.Reports(ctx, ids[0])
	if err != nil || len(got) != 3 || got[0].Sequence != 5<<32|1 || got[2].Sequence != 6<<32|1 || string(got[1].Report) != fmt.Sprintf("report 0 %d", uint64(5<<32|2)) {
		t.Fatalf("stored reports %+v, %v", got, err)
	}
	_, st, err := s.FleetDevice(ctx, ids[0])
	if err != nil || st.Version != "2.0.0" || !bytes.Equal(st.ManifestDigest, v2[:]) || st.ReportSequence != 6<<32|1 || st.Result != -1 ||
		!st.LastReport.Equal(received(6<<32|1)) || st.LastSeen.Before(st.LastReport) {
		t.Fatalf("fleet state %+v, %v", st, err)
	}
	_, st, _ = s.FleetDevice(ctx, ids[1])
	if st.Version != "1.0.0" || st.Result != 14 || st.Detail != "result 14" {
		t.Fatalf("fleet state of the failed device %+v", st)
	}
}

// binomialBounds returns mean ± 5σ of Binomial(n, p): a correct cohort
// falls outside with probability below 10⁻⁶.
func binomialBounds(n int, p float64) (lo, hi int) {
	mean, sd := float64(n)*p, math.Sqrt(float64(n)*p*(1-p))
	return int(math.Floor(mean - 5*sd)), int(math.Ceil(mean + 5*sd))
}

// testCohorts: 1,000 synthetic devices, a rollout at 10 %, 25 %, 100 %:
// the targeted counts fall within binomial bounds, every member stays a
// member, and the counters match the offers.
func testCohorts(t *testing.T, open func() (store.Store, error)) {
	ctx := context.Background()
	s := mustOpen(t, open)
	const n = 1000
	ids := certifyDevices(t, s, "c", n)
	// Last seen in one batch of more than a statement's chunk.
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	batch := map[string]time.Time{}
	for _, id := range ids {
		batch[id] = at
	}
	if err := s.Seen(ctx, batch); err != nil {
		t.Fatal(err)
	}
	list, err := s.FleetList(ctx, "", n)
	if err != nil || len(list) != n {
		t.Fatalf("fleet of %d, %v", len(list), err)
	}
	for _, st := range list {
		if !st.LastSeen.Equal(at) {
			t.Fatalf("%s last seen %v, want %v", st.DeviceID, st.LastSeen, at)
		}
	}
	startRollout(t, s, "cohort-1", putRelease(t, s, "1.0.0"), 1000, -1, false)
	members := map[string]bool{}
	for _, share := range []int64{1000, 2500, store.FullShare} {
		if _, err := s.UpdateRollout(ctx, "cohort-1", func(r *store.Rollout) error { r.Share = share; return nil }); err != nil {
			t.Fatal(err)
		}
		offered := map[string]bool{}
		for _, id := range ids {
			a, err := s.Offer(ctx, id, "cohort-1")
			switch {
			case err == nil:
				offered[a.DeviceID] = true
			case !errors.Is(err, store.ErrNotFound):
				t.Fatal(err)
			}
			if (err == nil) != store.InCohort("rollout:cohort-1", id, share) {
				t.Fatalf("offer to %s at %d: %v, membership %v", id, share, err, store.InCohort("rollout:cohort-1", id, share))
			}
		}
		for id := range members {
			if !offered[id] {
				t.Fatalf("%s left the cohort at %d", id, share)
			}
		}
		members = offered
		lo, hi := binomialBounds(n, float64(share)/store.FullShare)
		if len(offered) < lo || len(offered) > hi {
			t.Fatalf("%d of %d devices at %d: outside [%d, %d]", len(offered), n, share, lo, hi)
		}
		wantCounts(t, s, "cohort-1", int64(len(offered)), 0, 0, 0, store.RolloutRunning)
		t.Logf("share %d: %d of %d devices, bounds [%d, %d]", share, len(offered), n, lo, hi)
	}
	// Another rollout's cohort is another sample: not the same devices;
	// a named cohort is the same sample in every rollout naming it.
	same := 0
	for _, id := range ids {
		if store.InCohort("rollout:cohort-1", id, 1000) && store.InCohort("rollout:cohort-2", id, 1000) {
			same++
		}
	}
	if lo, hi := binomialBounds(n, 0.01); same < lo || same > hi {
		t.Fatalf("%d devices in both 10 %% cohorts, want [%d, %d]", same, lo, hi)
	}
	a := &store.Rollout{ID: "a", Cohort: "canary"}
	b := &store.Rollout{ID: "b", Cohort: "canary"}
	for _, id := range ids {
		if store.InCohort(a.CohortKey(), id, 1000) != store.InCohort(b.CohortKey(), id, 1000) {
			t.Fatalf("%s: in one canary rollout and not in the other", id)
		}
	}
}

// testOfferRace: concurrent offers to one device (two instances) count
// it once.
func testOfferRace(t *testing.T, open func() (store.Store, error)) {
	ctx := context.Background()
	a, b := mustOpen(t, open), mustOpen(t, open)
	ids := certifyDevices(t, a, "o", 3)
	startRollout(t, a, "ro", putRelease(t, a, "1.0.0"), store.FullShare, -1, false)
	var wg sync.WaitGroup
	errs := make(chan error, 24)
	for i := range 24 {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Offer(ctx, ids[i%3], "ro")
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	wantCounts(t, b, "ro", 3, 0, 0, 0, store.RolloutRunning)
}

// FleetSize is the fleet size of LargeFleet: $SBM_FLEET_DEVICES, else
// 100,000 (10,000 with -short).
func FleetSize(t *testing.T) int {
	if s := os.Getenv("SBM_FLEET_DEVICES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1000 {
			t.Fatalf("SBM_FLEET_DEVICES=%q: want a number ≥ 1000", s)
		}
		return n
	}
	if testing.Short() {
		return 10_000
	}
	return 100_000
}

// LargeFleet checks that starting a rollout does not depend on the
// fleet's size: with n devices certified (insert stores them, the way
// only the engine can do fast: device IDs fmt.Sprintf("%032x", i), order
// "big"), creating a rollout and reading its status each take under a
// second, and an offer to a device is one short transaction. It logs the
// times.
func LargeFleet(t *testing.T, s store.Store, n int, insert func(ctx context.Context, n int) error) {
	ctx := context.Background()
	start := time.Now()
	if err := insert(ctx, n); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d devices stored in %v", n, time.Since(start).Round(time.Millisecond))
	rel := putRelease(t, s, "9.0.0")
	start = time.Now()
	startRollout(t, s, "big-rollout", rel, 1000, 10, true)
	created := time.Since(start)
	start = time.Now()
	if _, err := s.Rollout(ctx, "big-rollout"); err != nil {
		t.Fatal(err)
	}
	status := time.Since(start)
	const offers = 200
	start = time.Now()
	offered := 0
	for i := range offers {
		_, err := s.Offer(ctx, fmt.Sprintf("%032x", i*(n/offers)), "big-rollout")
		if err == nil {
			offered++
		} else if !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
	}
	perOffer := time.Since(start) / offers
	start = time.Now()
	if _, _, err := s.FleetDevice(ctx, fmt.Sprintf("%032x", n-1)); err != nil {
		t.Fatal(err)
	}
	lookup := time.Since(start)
	t.Logf("%d devices: rollout created in %v, status read in %v, %v per offer (%d of %d in the 10 %% cohort), device looked up in %v",
		n, created, status, perOffer, offered, offers, lookup)
	if created > time.Second || status > time.Second {
		t.Fatalf("rollout start %v, status %v with %d devices: want under a second", created, status, n)
	}
	wantCounts(t, s, "big-rollout", int64(offered), 0, 0, 0, store.RolloutRunning)
}
