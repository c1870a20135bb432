package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/sbm-project/sbm/server/store"
)

// testSummary counts the fleet for the dashboard: devices, failing ones,
// devices per version, and the notable devices (failing first).
func testSummary(t *testing.T, open func() (store.Store, error)) {
	ctx := context.Background()
	s := mustOpen(t, open)
	empty, err := s.FleetSummary(ctx)
	if err != nil || empty.Devices != 0 || empty.Failing != 0 || len(empty.Versions) != 0 {
		t.Fatalf("empty fleet: %+v, %v", empty, err)
	}
	ids := certifyDevices(t, s, "sum", 4)
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	report := func(dev int, seq uint64, version string, result int) {
		t.Helper()
		digest := []byte(version)
		if _, err := s.RecordReport(ctx, &store.ReportUpdate{StoredReport: store.StoredReport{DeviceID: ids[dev], Sequence: seq,
			Report: []byte("r"), Received: t0.Add(time.Duration(seq) * time.Second)}, Version: version, ManifestDigest: digest, Result: result}); err != nil {
			t.Fatal(err)
		}
	}
	report(0, 1, "2.0.0", 0)
	report(1, 2, "2.0.0", -1)
	report(2, 3, "1.0.0", 14) // refused an update
	if err := s.Seen(ctx, map[string]time.Time{ids[3]: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	sum, err := s.FleetSummary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Devices != 4 || sum.Failing != 1 || len(sum.Versions) != 2 || sum.Versions[0] != (store.VersionCount{Version: "2.0.0", Devices: 2}) ||
		sum.Versions[1] != (store.VersionCount{Version: "1.0.0", Devices: 1}) {
		t.Fatalf("summary %+v", sum)
	}
	devs, err := s.NotableDevices(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) != 3 || devs[0].DeviceID != ids[2] || devs[0].Result != 14 || devs[1].DeviceID != ids[3] {
		t.Fatalf("notable devices %+v", devs)
	}
	for i, d := range devs {
		for _, e := range devs[i+1:] {
			if d.DeviceID == e.DeviceID {
				t.Fatalf("device %s listed twice", d.DeviceID)
			}
		}
	}
}
