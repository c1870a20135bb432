package verifier

import (
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/sbm-project/sbm/attest/report"
	"github.com/sbm-project/sbm/trust"
)

// report signs a report of the device as its SBM would.
func (d *device) report(t *testing.T, id []byte, seq uint64) []byte {
	t.Helper()
	b, err := report.Append(nil, &report.Report{
		DeviceID: id, Sequence: seq, Boots: 1, Updated: true,
		HasResult: true, Detail: "installed 2.0.0", HasPackage: true, Package: sha256.Sum256([]byte("m")),
	}, d.key, d.alg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestReports: a report verifies against the device's certificate and
// through the context's production records; another device's report, a
// report of another ID under this key, an unknown device and a flipped
// bit are refused.
func TestReports(t *testing.T) {
	for _, suite := range []trust.Suite{trust.SuiteP256, trust.SuiteEd25519} {
		t.Run(string(suite), func(t *testing.T) {
			d := newDevice(t, suite, "")
			other := newDevice(t, suite, "")
			_, ident, err := d.ctx.LoadDevice("d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1")
			if err != nil {
				t.Fatal(err)
			}
			rep := d.report(t, d.id, 5<<32|1)
			r, err := VerifyReport(rep, ident.Certificate)
			if err != nil || r.Sequence != 5<<32|1 || !r.Updated || r.Detail != "installed 2.0.0" {
				t.Fatalf("genuine report: %+v, %v", r, err)
			}
			if r, err := CheckReport(d.ctx, rep); err != nil || r.Sequence != 5<<32|1 {
				t.Fatalf("through the records: %v", err)
			}
			// The other device (same ID, another context and key).
			if _, err := VerifyReport(other.report(t, other.id, 1), ident.Certificate); err == nil {
				t.Fatal("another key's report verifies")
			}
			if _, err := CheckReport(d.ctx, other.report(t, other.id, 1)); err == nil {
				t.Fatal("another context's device verifies through the records")
			}
			// This key, another device ID in the report.
			if _, err := VerifyReport(d.report(t, []byte{1, 2, 3}, 1), ident.Certificate); !errors.Is(err, ErrReportDevice) {
				t.Fatalf("report naming another device: %v", err)
			}
			if _, err := CheckReport(d.ctx, d.report(t, []byte{1, 2, 3}, 1)); err == nil {
				t.Fatal("a device not in the records verifies")
			}
			bad := append([]byte(nil), rep...)
			bad[len(bad)-1] ^= 1
			if _, err := VerifyReport(bad, ident.Certificate); !errors.Is(err, report.ErrSignature) {
				t.Fatalf("flipped signature: %v", err)
			}
		})
	}
}
