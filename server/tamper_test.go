package server

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/sbm-project/sbm/server/auditlog"
	"github.com/sbm-project/sbm/server/store/sqlite"
	"github.com/sbm-project/sbm/trust"
)

// TestStoredLogTampering changes the service's stored log in its database,
// as an insider would, and checks that the offline audit of the export
// names each change: an entry modified, deleted (the later ones
// renumbered), two swapped, one inserted, the log cut (seen against a
// station's witness), and a forked history signed with the log key.
func TestStoredLogTampering(t *testing.T) {
	type build struct {
		c       *trust.Context
		db      *sql.DB
		srv     *Server
		witness []byte // the checkpoint a station got with the last certificate
	}
	setup := func(t *testing.T) *build {
		c := newContext(t)
		st, err := sqlite.Open(context.Background(), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		f := start(t, c, st)
		stCred := newStation(t, c, "line-a")
		id := stationOrder(t, f, 5, stCred)
		cl := f.station(t, stCred)
		var witness []byte
		for i := range 4 {
			resp, err := cl.Certify(context.Background(), &CertifyRequest{Order: id, CSR: newTestDevice(t, c, i).csr(t)})
			if err != nil {
				t.Fatal(err)
			}
			witness = resp.Checkpoint
		}
		return &build{c: c, db: st.DB(), srv: f.srv, witness: witness}
	}
	exec := func(t *testing.T, db *sql.DB, queries ...string) {
		t.Helper()
		for _, q := range queries {
			if _, err := db.Exec(q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	}
	tests := []struct {
		name    string
		tamper  func(t *testing.T, b *build)
		witness bool
		want    error
	}{
		{"modify", func(t *testing.T, b *build) {
			// Flip a bit of entry 2's last byte (its count).
			var e []byte
			if err := b.db.QueryRow(`SELECT entry FROM log_records WHERE idx = 2`).Scan(&e); err != nil {
				t.Fatal(err)
			}
			e[len(e)-1] ^= 1
			if _, err := b.db.Exec(`UPDATE log_records SET entry = ? WHERE idx = 2`, e); err != nil {
				t.Fatal(err)
			}
		}, false, auditlog.ErrModified},
		{"delete", func(t *testing.T, b *build) {
			exec(t, b.db, `DELETE FROM log_records WHERE idx = 2`, `UPDATE log_records SET idx = idx - 1 WHERE idx > 2`,
				`UPDATE log_head SET size = size - 1`)
		}, false, auditlog.ErrDeleted},
		{"reorder (renumbered)", func(t *testing.T, b *build) {
			exec(t, b.db, `UPDATE log_records SET idx = -1 WHERE idx = 2`, `UPDATE log_records SET idx = 2 WHERE idx = 3`,
				`UPDATE log_records SET idx = 3 WHERE idx = -1`)
		}, false, auditlog.ErrModified},
		{"insert", func(t *testing.T, b *build) {
			exec(t, b.db, `UPDATE log_records SET idx = idx + 10 WHERE idx >= 2`, `UPDATE log_records SET idx = idx - 9 WHERE idx >= 12`,
				`INSERT INTO log_records (idx, entry, checkpoint) SELECT 2, entry, checkpoint FROM log_records WHERE idx = 1`,
				`UPDATE log_head SET size = size + 1`)
		}, false, auditlog.ErrInserted},
		{"truncate", func(t *testing.T, b *build) {
			exec(t, b.db, `DELETE FROM log_records WHERE idx >= 3`, `UPDATE log_head SET size = 3`)
		}, true, auditlog.ErrTruncated},
	}
	audit := func(t *testing.T, b *build, witness bool) error {
		t.Helper()
		l, err := b.srv.readLog()
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := l.Export(context.Background(), &buf); err != nil {
			t.Fatal(err)
		}
		a := &auditlog.Auditor{Key: mustLogKey(t, b.c).Public()}
		if witness {
			a.Witnessed = [][]byte{b.witness}
		}
		_, err = a.Audit(&buf)
		return err
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := setup(t)
			if err := audit(t, b, tt.witness); err != nil {
				t.Fatalf("the untouched log does not audit: %v", err)
			}
			tt.tamper(t, b)
			err := audit(t, b, tt.witness)
			if !errors.Is(err, tt.want) {
				t.Fatalf("audit of the tampered log: %v, want %v", err, tt.want)
			}
			if tt.name == "truncate" {
				// Without the witness the cut log is a valid shorter log.
				if err := audit(t, b, false); err != nil {
					t.Fatalf("the cut log without a witness: %v", err)
				}
			}
		})
	}
	// A fork: whoever holds the log key rewrites entry 3 and signs new
	// checkpoints for the whole log; a station's witness of the first history
	// names it.
	t.Run("fork", func(t *testing.T) {
		b := setup(t)
		ctx := context.Background()
		recs, err := b.srv.store.Log().ReadRecords(ctx, 0, 5)
		if err != nil {
			t.Fatal(err)
		}
		exec(t, b.db, `DELETE FROM log_records WHERE idx >= 3`, `DELETE FROM log_hashes`, `UPDATE log_head SET size = 0`)
		mem := auditlog.NewMemStore()
		l, err := auditlog.New(auditlog.Config{Store: mem, Key: mustLogKey(t, b.c), Origin: b.srv.origin})
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range recs {
			e, err := auditlog.ParseEntry(r.Entry)
			if err != nil {
				t.Fatal(err)
			}
			if i == 3 {
				e.Device = bytes.Repeat([]byte{0xee}, 16) // another device in its place
			}
			if _, _, err := l.Append(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		var buf bytes.Buffer
		if err := l.Export(ctx, &buf); err != nil {
			t.Fatal(err)
		}
		key := mustLogKey(t, b.c).Public()
		if _, err := auditlog.Audit(bytes.NewReader(buf.Bytes()), key, nil); err != nil {
			t.Fatalf("the forked history alone audits: %v", err)
		}
		a := &auditlog.Auditor{Key: key, Witnessed: [][]byte{b.witness}}
		if _, err := a.Audit(&buf); !errors.Is(err, auditlog.ErrFork) {
			t.Fatalf("fork against the witness: %v", err)
		}
	})
}
