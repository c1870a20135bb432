package sqlstore

import (
	"context"

	"github.com/sbm-project/sbm/server/store"
)

// FleetSummary implements store.Store.
func (s *Store) FleetSummary(ctx context.Context) (*store.FleetSummary, error) {
	sum := &store.FleetSummary{}
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM devices`).Scan(&sum.Devices); err != nil {
		return nil, s.errorf("fleet summary", err)
	}
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM fleet WHERE result > 0`).Scan(&sum.Failing); err != nil {
		return nil, s.errorf("fleet summary", err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT version, COUNT(*) FROM fleet WHERE version <> '' GROUP BY version ORDER BY COUNT(*) DESC, version LIMIT 20`)
	if err != nil {
		return nil, s.errorf("fleet summary", err)
	}
	defer rows.Close()
	for rows.Next() {
		var v store.VersionCount
		if err := rows.Scan(&v.Version, &v.Devices); err != nil {
			return nil, s.errorf("fleet summary", err)
		}
		sum.Versions = append(sum.Versions, v)
	}
	if err := rows.Err(); err != nil {
		return nil, s.errorf("fleet summary", err)
	}
	return sum, nil
}

// NotableDevices implements store.Store.
func (s *Store) NotableDevices(ctx context.Context, limit int) ([]store.FleetState, error) {
	var out []store.FleetState
	seen := map[string]bool{}
	for _, query := range []string{
		`SELECT ` + fleetColumns + ` FROM fleet f JOIN devices d ON d.device_id = f.device_id WHERE f.result > 0 ORDER BY f.last_report DESC LIMIT ?`,
		`SELECT ` + fleetColumns + ` FROM fleet f JOIN devices d ON d.device_id = f.device_id ORDER BY f.last_seen DESC LIMIT ?`,
	} {
		if len(out) >= limit {
			break
		}
		rows, err := s.db.QueryContext(ctx, s.q(query), limit)
		if err != nil {
			return nil, s.errorf("notable devices", err)
		}
		for rows.Next() && len(out) < limit {
			st, err := scanFleet(rows)
			if err != nil {
				rows.Close()
				return nil, s.errorf("notable devices", err)
			}
			if !seen[st.DeviceID] {
				seen[st.DeviceID] = true
				out = append(out, st)
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, s.errorf("notable devices", err)
		}
	}
	return out, nil
}
