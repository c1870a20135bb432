package server

import (
	"context"
	"sync"
	"time"

	"github.com/sbm-project/sbm/server/dashboard"
	"github.com/sbm-project/sbm/server/store"
)

// summaryMaxAge is how long the dashboard reuses a fleet summary: the
// counts scan the fleet's table, which a refresh every few seconds from
// every open page should not repeat.
const summaryMaxAge = 10 * time.Second

// fleetSummaries caches the last fleet summary.
type fleetSummaries struct {
	mu   sync.Mutex
	at   time.Time
	last *store.FleetSummary
}

func (t timedStore) FleetSummary(ctx context.Context) (f *store.FleetSummary, err error) {
	defer func(start time.Time) { t.observe("fleet_summary", start, err) }(time.Now())
	return t.s.FleetSummary(ctx)
}

func (t timedStore) NotableDevices(ctx context.Context, limit int) (l []store.FleetState, err error) {
	defer func(start time.Time) { t.observe("notable_devices", start, err) }(time.Now())
	return t.s.NotableDevices(ctx, limit)
}

// dashboardFleet adds the update service's state to the dashboard's view:
// the fleet's counts, its notable devices, the rollouts.
func (s *Server) dashboardFleet(ctx context.Context, v *dashboard.View) error {
	s.summaries.mu.Lock()
	sum := s.summaries.last
	if sum == nil || s.now().Sub(s.summaries.at) > summaryMaxAge {
		var err error
		if sum, err = s.store.FleetSummary(ctx); err != nil {
			s.summaries.mu.Unlock()
			return err
		}
		s.summaries.last, s.summaries.at = sum, s.now()
	}
	s.summaries.mu.Unlock()
	v.Fleet = dashboard.Fleet{Total: sum.Devices, Failing: sum.Failing}
	for _, vc := range sum.Versions {
		v.Fleet.Versions = append(v.Fleet.Versions, dashboard.VersionCount{Version: vc.Version, Devices: vc.Devices})
	}
	devs, err := s.store.NotableDevices(ctx, dashboard.DefaultMaxDevices)
	if err != nil {
		return err
	}
	for _, d := range devs {
		dd := dashboard.Device{ID: d.DeviceID, Version: d.Version, LastSeen: d.LastSeen, Detail: d.Detail}
		switch {
		case d.LastReport.IsZero() || d.Result < 0:
		case d.Result == 0:
			dd.LastReport = dashboard.ReportSuccess
		default:
			dd.LastReport = dashboard.ReportFailure
		}
		v.Devices = append(v.Devices, dd)
	}
	ros, err := s.store.Rollouts(ctx)
	if err != nil {
		return err
	}
	for i := len(ros) - 1; i >= 0; i-- { // newest first
		ro := ros[i]
		r := dashboard.Rollout{ID: ro.ID, Release: ro.Version, Cohort: ro.Cohort, State: string(ro.State), Percent: float64(ro.Share) / 100,
			Targeted: ro.Targeted, Downloaded: ro.Downloaded, Updated: ro.Installed, Failed: ro.Failed, Started: ro.Created}
		if ro.MaxFailures >= 0 {
			if ro.FailuresPercent {
				r.MaxFailuresPercent = float64(ro.MaxFailures)
			} else {
				r.MaxFailures = ro.MaxFailures
			}
		}
		v.Rollouts = append(v.Rollouts, r)
	}
	return nil
}
