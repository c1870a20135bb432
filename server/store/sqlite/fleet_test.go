package sqlite

import (
	"context"
	"testing"

	"github.com/sbm-project/sbm/server/store/storetest"
)

// TestLargeFleet: a rollout starts in under a second over a large fleet
// of certified devices: storetest.FleetSize (SBM_FLEET_DEVICES=1000000
// for a million).
func TestLargeFleet(t *testing.T) {
	n := storetest.FleetSize(t)
	s, err := Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.LargeFleet(t, s, n, func(ctx context.Context, n int) error {
		tx, err := s.DB().BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		for _, q := range []string{
			`INSERT INTO orders (id, signed, vendor_id, class_id, count, not_after, state, created) VALUES ('big', x'00', 'v', 'c', ?1, 0, 'active', 0)`,
			`INSERT INTO counters (order_id, count, used, certified) VALUES ('big', ?1, ?1, ?1)`,
			`WITH RECURSIVE c(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM c WHERE x < ?1 - 1)
			 INSERT INTO reservations (device_id, order_id, line, station, state, created) SELECT printf('%032x', x), 'big', '', x'01', 'committed', 0 FROM c`,
			`INSERT INTO devices (device_id, order_id, station, certificate, log_index, created) SELECT device_id, 'big', x'01', x'30', 0, 0 FROM reservations WHERE order_id = 'big'`,
		} {
			if _, err := tx.ExecContext(ctx, q, n); err != nil {
				return err
			}
		}
		return tx.Commit()
	})
}
