package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/sbm-project/sbm/internal/atomicfile"
	"github.com/sbm-project/sbm/server"
	"github.com/sbm-project/sbm/server/auditlog"
	"github.com/sbm-project/sbm/server/dashboard"
	"github.com/sbm-project/sbm/server/order"
	"github.com/sbm-project/sbm/trust"
)

// auditJSON is the JSON output of "sbm production audit".
// Origin, Entries, Checkpoints, Devices and Orders are null when the log
// did not verify (Audit returned no report).
type auditJSON struct {
	OK          bool             `json:"ok"`
	Origin      *string          `json:"origin"`
	Entries     *int64           `json:"entries"`
	Checkpoints *int             `json:"checkpoints"`
	Orders      []auditOrderJSON `json:"orders"`
	Devices     *int             `json:"devices"`
	// Synced is the number of production records added (--sync-records),
	// null without it.
	Synced *int `json:"synced"`
	// Latest is the log's latest signed checkpoint (hex of its
	// COSE_Sign1): keep it as the next audit's --witness.
	Latest *string `json:"latest_checkpoint"`
	// Error is the problem the audit found, null if none.
	Error *auditProblemJSON `json:"error"`
}

// auditOrderJSON is one order of the audit, its facts named as in the
// order's status (production status): its count (the quota) and state.
type auditOrderJSON struct {
	ID        string `json:"id"`
	State     string `json:"state"`
	Count     uint64 `json:"count"`
	Certified uint64 `json:"certified"`
	Spoiled   uint64 `json:"spoiled"`
	UPKs      uint64 `json:"upks"`
	Remaining uint64 `json:"remaining"`
	// DevicesRevoked counts the order's devices the log revokes (the
	// update service refuses them).
	DevicesRevoked uint64 `json:"devices_revoked"`
}

// auditProblemJSON is the problem found: Kind is null if it is not one of
// the log (an AuditError), Index null if no entry is at fault.
type auditProblemJSON struct {
	Kind    *string `json:"kind"`
	Index   *int64  `json:"index"`
	Message string  `json:"message"`
}

// loadSignedOrders returns the quotas of the orders the context signed
// (its orders/ directory), each signature checked.
func loadSignedOrders(c *trust.Context) (map[auditlog.OrderID]uint64, error) {
	quotas := map[auditlog.OrderID]uint64{}
	files, err := filepath.Glob(filepath.Join(c.Path(ordersDir), "*.cose"))
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		signed, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		o, err := order.VerifySigned(c, signed)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		quotas[auditlog.OrderID(o.ID)] = o.Count
	}
	return quotas, nil
}

func newProductionAuditCmd(cio *cliIO) *cobra.Command {
	var sf serverFlags
	var logFile, exportOut string
	var witnesses []string
	var sync, asJSON bool
	cmd := &cobra.Command{
		Use:   "audit --context DIR (--server URL | --log FILE) [--witness CHECKPOINT]... [--sync-records] [--json]",
		Short: "Verify the service's audit log offline: signatures, consistency, quotas",
		Long: `Verify the whole production log (docs/production.md, "Audit"): fetch it
from the service (--server, with the operator credential; --export-out FILE
keeps a copy) or read an exported file (--log), then check offline every
checkpoint's signature by the context's log key, that every checkpoint is
consistent with the entries and with the others (a fork, deleted, altered,
reordered or inserted entry, or a truncated log is named with its index),
and each order's life: loaded once with the quota of the order this context
signed (orders/ in the context), certificates + spoiled units ≤ quota, each
device certified once. --witness adds checkpoints obtained apart from the
log (a station's --checkpoint-out, an earlier audit's): a log cut below
them is detected.

With --sync-records (and --server) the devices the log certifies become the
context's production records (devices/ID.json), each certificate fetched
from the service and checked against its log entry's digest, so that
"sbm upk issue" and "sbm attest verify" know them. Exit status 1 if the
audit fails.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlags(cmd, "context"); err != nil {
				return err
			}
			if (sf.url == "") == (logFile == "") {
				return usagef("give exactly one of --server and --log")
			}
			if sync && sf.url == "" {
				return usagef("--sync-records needs --server (it fetches the certificates)")
			}
			c, err := openContext(sf.ctxDir, sf.passFile)
			if err != nil {
				return err
			}
			defer c.Close()
			logKey, err := c.LogKey()
			if err != nil {
				return err
			}
			quotas, err := loadSignedOrders(c)
			if err != nil {
				return err
			}
			var export []byte
			var cl *server.Client
			if logFile != "" {
				if export, err = os.ReadFile(logFile); err != nil {
					return err
				}
			} else {
				var c2 *trust.Context
				if cl, c2, err = operatorClient(sf.ctxDir, sf.passFile, sf.url); err != nil {
					return err
				}
				defer c2.Close()
				defer cl.Close()
				var buf bytes.Buffer
				if err := cl.ExportLog(cmd.Context(), &buf); err != nil {
					return err
				}
				export = buf.Bytes()
				if exportOut != "" {
					if err := atomicfile.WriteFile(exportOut, export, 0o644); err != nil {
						return err
					}
				}
			}
			a := &auditlog.Auditor{Key: logKey.Public(), Orders: quotas}
			for _, w := range witnesses {
				b, err := os.ReadFile(w)
				if err != nil {
					return err
				}
				a.Witnessed = append(a.Witnessed, b)
			}
			rep, aerr := a.Audit(bytes.NewReader(export))
			out := auditJSON{OK: aerr == nil}
			var size int64 // entries read, for the service's dashboard
			if rep != nil {
				devices := len(rep.Devices)
				size = rep.Size
				out.Origin, out.Entries, out.Checkpoints, out.Devices = &rep.Origin, &rep.Size, &rep.Checkpoints, &devices
				out.Orders = []auditOrderJSON{}
				if rep.Latest != nil {
					h := hex.EncodeToString(rep.Latest.Signed)
					out.Latest = &h
				}
				for id, o := range rep.Orders {
					state := "active"
					if o.Revoked >= 0 {
						state = "revoked"
					}
					out.Orders = append(out.Orders, auditOrderJSON{ID: id.String(), State: state, Count: o.Quota, Certified: o.Certified,
						Spoiled: o.Spoiled, UPKs: o.UPKs, Remaining: o.Remaining(), DevicesRevoked: o.DevicesRevoked})
				}
				sort.Slice(out.Orders, func(i, j int) bool { return out.Orders[i].ID < out.Orders[j].ID })
			}
			if aerr != nil {
				var ae *auditlog.AuditError
				p := &auditProblemJSON{Message: aerr.Error()}
				if errors.As(aerr, &ae) {
					kind := problemKind(ae)
					p.Kind = &kind
					if ae.Index >= 0 {
						p.Index = &ae.Index
					}
				}
				out.Error = p
				if cl != nil {
					cl.ReportAudit(cmd.Context(), &dashboard.AuditResult{Size: uint64(size), OK: false, Problem: aerr.Error()})
				}
				if asJSON {
					printJSON(cio.stdout, out)
				}
				return fmt.Errorf("audit failed: %w", aerr)
			}
			if cl != nil {
				if err := checkCounters(cmd, cl, rep); err != nil {
					cl.ReportAudit(cmd.Context(), &dashboard.AuditResult{Size: uint64(rep.Size), OK: false, Problem: err.Error()})
					return err
				}
				if err := cl.ReportAudit(cmd.Context(), &dashboard.AuditResult{Size: uint64(rep.Size), OK: true}); err != nil {
					return fmt.Errorf("the audit passed, but reporting it to the service failed: %w", err)
				}
			}
			if sync {
				n, err := syncRecords(cmd, c, cl, rep)
				if err != nil {
					return err
				}
				out.Synced = &n
			}
			if asJSON {
				return printJSON(cio.stdout, out)
			}
			fmt.Fprintf(cio.stdout, "log %q: %d entries, %d checkpoints verified, %d devices certified\n", rep.Origin, rep.Size, rep.Checkpoints, len(rep.Devices))
			for _, o := range out.Orders {
				state := ""
				if o.State == "revoked" {
					state = " (revoked)"
				}
				fmt.Fprintf(cio.stdout, "order %s%s: quota %d, certified %d, spoiled %d, remaining %d, UPKs %d, devices revoked %d\n",
					o.ID, state, o.Count, o.Certified, o.Spoiled, o.Remaining, o.UPKs, o.DevicesRevoked)
			}
			if sync {
				fmt.Fprintf(cio.stdout, "production records: %d added\n", *out.Synced)
			}
			fmt.Fprintln(cio.stdout, "audit ok")
			return nil
		},
	}
	sf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&logFile, "log", "", "audit this exported log file instead of the service's")
	f.StringVar(&exportOut, "export-out", "", "with --server: also write the exported log here")
	f.StringArrayVar(&witnesses, "witness", nil, "a signed checkpoint obtained apart from the log (repeatable)")
	f.BoolVar(&sync, "sync-records", false, "write the log's certified devices into the context's production records")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

// problemKind names an audit problem by its sentinel.
func problemKind(ae *auditlog.AuditError) string {
	for _, k := range []struct {
		err  error
		name string
	}{
		{auditlog.ErrDeleted, "deleted"}, {auditlog.ErrModified, "modified"}, {auditlog.ErrReordered, "reordered"},
		{auditlog.ErrInserted, "inserted"}, {auditlog.ErrTruncated, "truncated"}, {auditlog.ErrFork, "fork"},
		{auditlog.ErrSignature, "signature"}, {auditlog.ErrMalformed, "malformed"}, {auditlog.ErrOverQuota, "over-quota"},
		{auditlog.ErrCount, "count"}, {auditlog.ErrOrder, "order"}, {auditlog.ErrDevice, "device"},
	} {
		if errors.Is(ae, k.err) {
			return k.name
		}
	}
	return "other"
}

// syncRecords writes a production record for every device the audited
// log certifies that the context does not know yet; the certificate comes
// from the service and must be the one the log entry names.
func syncRecords(cmd *cobra.Command, c *trust.Context, cl *server.Client, rep *auditlog.Report) (int, error) {
	ids := make([]string, 0, len(rep.Devices))
	for id := range rep.Devices {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	n := 0
	for _, id := range ids {
		raw, err := hex.DecodeString(id)
		if err != nil {
			return n, err
		}
		if err := c.CheckNewDevice(raw); errors.Is(err, trust.ErrDeviceExists) {
			continue
		} else if err != nil {
			return n, err
		}
		d, err := cl.Device(cmd.Context(), id)
		if err != nil {
			return n, fmt.Errorf("device %s: %w", id, err)
		}
		if d.LogIndex != rep.Devices[id] {
			return n, fmt.Errorf("device %s: the service says log entry %d, the log %d", id, d.LogIndex, rep.Devices[id])
		}
		if want := rep.CertificateDigests[id]; want != sha256.Sum256(d.Certificate) {
			return n, fmt.Errorf("device %s: the service's certificate is not the one its log entry %d names", id, d.LogIndex)
		}
		cert, err := x509.ParseCertificate(d.Certificate)
		if err != nil {
			return n, fmt.Errorf("device %s: %w", id, err)
		}
		certified, _ := time.Parse(time.RFC3339, d.Certified)
		if _, err := c.SaveDevice(cert, trust.DeviceRecord{Provisioned: certified, Locked: true, Board: d.Board, SBMMeasurement: d.SBMMeasurement}); err != nil {
			return n, fmt.Errorf("device %s: %w", id, err)
		}
		n++
	}
	return n, nil
}

// checkCounters compares the service's counters with what the audited log
// proves: the units spoiled are the log's, and the units used (reserved or
// certified) cover the log's certificates. A service whose database was
// changed apart from the log fails here.
func checkCounters(cmd *cobra.Command, cl *server.Client, rep *auditlog.Report) error {
	orders, err := cl.Orders(cmd.Context())
	if err != nil {
		return err
	}
	for _, st := range orders {
		raw, err := hex.DecodeString(st.ID)
		if err != nil || len(raw) != 16 {
			return fmt.Errorf("the service lists order %q", st.ID)
		}
		o := rep.Orders[auditlog.OrderID(raw)]
		if o == nil || o.Loaded < 0 {
			return fmt.Errorf("audit failed: the service has order %s, which the log never loaded", st.ID)
		}
		if uint64(st.Spoiled) != o.Spoiled || uint64(st.Used) < o.Certified || uint64(st.Count) != o.Quota {
			return fmt.Errorf("audit failed: order %s: the service counts %d used, %d spoiled of %d; the log %d certified, %d spoiled of %d",
				st.ID, st.Used, st.Spoiled, st.Count, o.Certified, o.Spoiled, o.Quota)
		}
	}
	return nil
}
