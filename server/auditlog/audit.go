package auditlog

import (
	"crypto"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sort"
	"sync"

	"golang.org/x/mod/sumdb/tlog"
)

// The problems Audit reports. Each is returned inside an *AuditError that
// names the entry; match them with errors.Is.
var (
	// ErrMalformed means the export file, a signed entry or a checkpoint
	// payload cannot be decoded.
	ErrMalformed = errors.New("auditlog: malformed log")
	// ErrSignature means a checkpoint is not validly signed by the log key.
	ErrSignature = errors.New("auditlog: bad checkpoint signature")
	// ErrDeleted means entries are missing from the log.
	ErrDeleted = errors.New("auditlog: entry deleted")
	// ErrModified means an entry differs from the one the log signed.
	ErrModified = errors.New("auditlog: entry modified")
	// ErrReordered means entries are out of order.
	ErrReordered = errors.New("auditlog: entries reordered")
	// ErrInserted means an entry the log never signed is in it.
	ErrInserted = errors.New("auditlog: entry inserted")
	// ErrTruncated means entries a checkpoint covers are missing from the
	// end of the log, or the file ends inside a record.
	ErrTruncated = errors.New("auditlog: log truncated")
	// ErrFork means the log key signed two histories: two checkpoints of
	// the same size with different roots, or a checkpoint that is not a
	// prefix of a later one.
	ErrFork = errors.New("auditlog: forked log")
	// ErrOverQuota means an order has more certified and spoiled units
	// than its quota.
	ErrOverQuota = errors.New("auditlog: order over quota")
	// ErrCount means an entry's running count is not the previous one
	// plus one.
	ErrCount = errors.New("auditlog: wrong running count")
	// ErrOrder means an entry breaks an order's life cycle: an unknown
	// order, an event before its order was loaded or after it was
	// revoked, an order loaded twice or with a quota other than the
	// auditor's.
	ErrOrder = errors.New("auditlog: order life cycle broken")
	// ErrDevice means a device certified twice, a UPK for a device the
	// order did not certify, or a revocation of a device the order did
	// not certify (or already revoked, or naming another certificate).
	ErrDevice = errors.New("auditlog: device rule broken")
)

// AuditError is a problem Audit found.
type AuditError struct {
	// Err is one of the Err* problems of this package.
	Err error
	// Index is the index of the entry concerned (for an inserted entry its
	// position in the exported sequence), or -1 when none is.
	Index int64
	// Detail says what exactly is wrong.
	Detail string
	// Cause is the underlying error, if any.
	Cause error
}

// Error returns the problem, the entry and the detail.
func (e *AuditError) Error() string {
	s := e.Err.Error()
	if e.Index >= 0 {
		s += fmt.Sprintf(": entry %d", e.Index)
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

// Unwrap returns the problem and the cause.
func (e *AuditError) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Err}
	}
	return []error{e.Err, e.Cause}
}

// Report is the result of an audit.
type Report struct {
	// Origin is the log's name from its checkpoints.
	Origin string
	// Size is the number of entries.
	Size int64
	// Latest is the checkpoint of the largest size: keep it and pass it
	// as Auditor.Witnessed next time, so a later export cannot drop or
	// rewrite what this one proved.
	Latest *Checkpoint
	// Checkpoints is how many checkpoints were verified.
	Checkpoints int
	// Orders holds per order what the log records.
	Orders map[OrderID]*OrderReport
	// Devices maps each certified device ID (hex) to the index of its
	// certificate-issued entry.
	Devices map[string]int64
	// CertificateDigests maps each certified device ID (hex) to the
	// SHA-256 of its certificate, as its entry names it.
	CertificateDigests map[string][32]byte
	// RevokedDevices maps each revoked device ID (hex) to the index of its
	// device-revoked entry.
	RevokedDevices map[string]int64
}

// OrderReport is what the log records for one order.
type OrderReport struct {
	// Quota is the order's count of units.
	Quota uint64
	// Loaded is the index of the order-loaded entry, -1 if never loaded.
	Loaded int64
	// Revoked is the index of the order-revoked entry, -1 if none.
	Revoked int64
	// Certified counts certificate-issued entries.
	Certified uint64
	// Spoiled counts unit-spoiled entries.
	Spoiled uint64
	// UPKs counts upk-issued entries.
	UPKs uint64
	// DevicesRevoked counts device-revoked entries: devices of the order
	// the update service refuses.
	DevicesRevoked uint64
}

// Remaining returns the units of the quota neither certified nor spoiled.
func (o *OrderReport) Remaining() uint64 {
	if used := o.Certified + o.Spoiled; used < o.Quota {
		return o.Quota - used
	}
	return 0
}

// Auditor checks exported logs offline.
type Auditor struct {
	// Key is the log key's public half.
	Key crypto.PublicKey
	// Orders maps each order the OEM signed to its quota. An order the log
	// loads that is not here is an error; nil accepts every order with the
	// quota its order-loaded entry states.
	Orders map[OrderID]uint64
	// Witnessed are signed checkpoints obtained independently of the
	// export (a station's, an earlier audit's Report.Latest): the export
	// must contain their trees, which detects a truncated or rewritten log
	// even when its own checkpoints were dropped with the entries.
	Witnessed [][]byte
}

// Audit reads an export file (Log.Export) and verifies it with the log key
// and the orders' quotas; see Auditor.Audit.
func Audit(r io.Reader, logKey crypto.PublicKey, orders map[OrderID]uint64) (*Report, error) {
	a := &Auditor{Key: logKey, Orders: orders}
	return a.Audit(r)
}

// checkpointAt is a verified checkpoint and where it came from.
type checkpointAt struct {
	cp      *Checkpoint
	record  int // record number in the file; -1 for a witnessed checkpoint
	witness int // index in Auditor.Witnessed, or -1
}

func (c checkpointAt) String() string {
	if c.record < 0 {
		return fmt.Sprintf("witnessed checkpoint %d (size %d)", c.witness, c.cp.Size)
	}
	return fmt.Sprintf("checkpoint of size %d (record %d)", c.cp.Size, c.record)
}

// Audit reads an export file and verifies, in this order: its structure;
// every checkpoint's signature by the log key; that no two checkpoints of
// one size differ; the sequence of entry indexes (deleted, reordered,
// inserted entries); that every checkpoint's root is the Merkle tree hash of
// the entries up to its size (so that every pair of checkpoints is
// consistent), and that the last entry is followed by its checkpoint (an
// entry appended in a batch, not as its last, has none); that every entry
// decodes; and each order's life cycle, running counts and quota. It returns the report and nil, or the first problem as
// an *AuditError (with a report of what was read when the problem is in the
// entries' meaning).
func (a *Auditor) Audit(r io.Reader) (*Report, error) {
	v, err := newLogVerifier(a.Key)
	if err != nil {
		return nil, err
	}
	f, err := readExport(r)
	if err != nil {
		return nil, err
	}
	cps, err := a.verifyCheckpoints(v, f)
	if err != nil {
		return nil, err
	}
	if err := checkIndexes(f.entries, cps); err != nil {
		return nil, err
	}
	rep := &Report{Size: int64(len(f.entries)), Checkpoints: len(cps)}
	if len(cps) > 0 {
		rep.Latest = cps[len(cps)-1].cp
		rep.Origin = rep.Latest.Origin
	}
	if err := checkTree(f.entries, cps); err != nil {
		return nil, err
	}
	return rep, a.checkEntries(f.entries, rep)
}

// verifyCheckpoints verifies every checkpoint, in parallel, and returns
// them sorted by size; it also marks the entries whose own checkpoint
// follows them in the file.
func (a *Auditor) verifyCheckpoints(v *logVerifier, f *exportFile) ([]checkpointAt, error) {
	all := make([]checkpointAt, len(f.checkpoints)+len(a.Witnessed))
	errs := make([]error, len(all))
	data := func(i int) []byte {
		if i < len(f.checkpoints) {
			return f.checkpoints[i].data
		}
		return a.Witnessed[i-len(f.checkpoints)]
	}
	workers := min(runtime.GOMAXPROCS(0), max(1, len(all)/64))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(all); i += workers {
				all[i].cp, errs[i] = v.verify(data(i))
			}
		}()
	}
	wg.Wait()
	for i := range all {
		all[i].record, all[i].witness = -1, -1
		if i < len(f.checkpoints) {
			all[i].record = f.checkpoints[i].record
		} else {
			all[i].witness = i - len(f.checkpoints)
		}
		if errs[i] != nil {
			return nil, &AuditError{Err: ErrSignature, Index: -1, Detail: checkpointName(all[i]), Cause: errs[i]}
		}
		if all[i].cp.Origin != all[0].cp.Origin {
			return nil, &AuditError{Err: ErrMalformed, Index: -1,
				Detail: fmt.Sprintf("%v is of log %q, not %q", all[i], all[i].cp.Origin, all[0].cp.Origin)}
		}
	}
	for i, c := range f.checkpoints {
		if c.after >= 0 {
			e := &f.entries[c.after]
			if e.record+1 == c.record && all[i].cp.Size == e.index+1 {
				e.signed = true
			}
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].cp.Size < all[j].cp.Size })
	for i := 1; i < len(all); i++ {
		if all[i].cp.Size == all[i-1].cp.Size && all[i].cp.Root != all[i-1].cp.Root {
			return nil, &AuditError{Err: ErrFork, Index: all[i].cp.Size - 1,
				Detail: fmt.Sprintf("%v and %v: same size, different roots", all[i-1], all[i])}
		}
	}
	return all, nil
}

func checkpointName(c checkpointAt) string {
	if c.record < 0 {
		return fmt.Sprintf("witnessed checkpoint %d", c.witness)
	}
	return fmt.Sprintf("checkpoint in record %d", c.record)
}

// checkIndexes names deleted, reordered and inserted entry records from
// the indexes they claim (cps, the checkpoints, tell copies apart).
func checkIndexes(entries []exportEntry, cps []checkpointAt) error {
	var positions map[int64][]int
	for p := range entries {
		e := &entries[p]
		if e.index == int64(p) {
			continue
		}
		if positions == nil {
			positions = make(map[int64][]int, len(entries))
			for q := range entries {
				positions[entries[q].index] = append(positions[entries[q].index], q)
			}
		}
		switch at := positions[int64(p)]; {
		case e.index < int64(p): // entries 0..p-1 are in place: a duplicate
			bad := duplicate(entries, positions[e.index], cps)
			return &AuditError{Err: ErrInserted, Index: int64(bad),
				Detail: fmt.Sprintf("the record at position %d repeats index %d", bad, e.index)}
		case len(at) > 0:
			return &AuditError{Err: ErrReordered, Index: int64(p),
				Detail: fmt.Sprintf("entry %d is at position %d, entry %d in its place", p, at[0], e.index)}
		default:
			last := e.index - 1 // the missing run ends before the next index present
			for q := range entries {
				if x := entries[q].index; x > int64(p) && x-1 < last {
					last = x - 1
				}
			}
			d := fmt.Sprintf("entries %d to %d missing", p, last)
			if last == int64(p) {
				d = fmt.Sprintf("entry %d missing", p)
			}
			return &AuditError{Err: ErrDeleted, Index: int64(p), Detail: d}
		}
	}
	return nil
}

// duplicate returns which of the entry records at positions dup, which
// claim one index, is the inserted one: the one not followed by its own
// checkpoint; when more than one is not (entries of a batch have none) or
// none is, the one without which the checkpoints match the entries; failing
// that, the first without a checkpoint, or the last.
func duplicate(entries []exportEntry, dup []int, cps []checkpointAt) int {
	var unsigned []int
	for _, q := range dup {
		if !entries[q].signed {
			unsigned = append(unsigned, q)
		}
	}
	if len(unsigned) == 1 {
		return unsigned[0]
	}
	for _, q := range dup {
		if checkTree(slices.Delete(slices.Clone(entries), q, q+1), cps) == nil {
			return q
		}
	}
	if len(unsigned) > 0 {
		return unsigned[0]
	}
	return dup[len(dup)-1]
}

// checkTree recomputes the Merkle tree of the entries and checks every
// checkpoint's root against it.
func checkTree(entries []exportEntry, cps []checkpointAt) error {
	n := int64(len(entries))
	hashes := make([]tlog.Hash, 0, tlog.StoredHashCount(n))
	reader := tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) { return readHashes(hashes, indexes) })
	for p := range entries {
		h, err := tlog.StoredHashes(int64(p), entries[p].data, reader)
		if err != nil {
			return &AuditError{Err: ErrMalformed, Index: int64(p), Detail: "tree hashes", Cause: err}
		}
		hashes = append(hashes, h...)
	}
	var s int64 // the largest checkpoint size
	if len(cps) > 0 {
		s = cps[len(cps)-1].cp.Size
	}
	good := int64(0) // the entries [0, good) match a checkpoint
	firstBad := -1
	for i, c := range cps {
		if c.cp.Size > n {
			break
		}
		root, err := tlog.TreeHash(c.cp.Size, reader)
		if err != nil {
			return &AuditError{Err: ErrMalformed, Index: -1, Detail: "tree hash", Cause: err}
		}
		switch {
		case root == c.cp.Root && firstBad >= 0:
			return &AuditError{Err: ErrFork, Index: good,
				Detail: fmt.Sprintf("%v is not a prefix of %v, which the entries match", cps[firstBad], c)}
		case root == c.cp.Root:
			good = c.cp.Size
		case firstBad < 0:
			firstBad = i
		}
	}
	if firstBad >= 0 {
		// The problem is in the entries after the last matching checkpoint
		// up to the first mismatching one: one entry, or one batch.
		end := cps[firstBad].cp.Size
		where := fmt.Sprintf("differs from what %v signed", cps[firstBad])
		if end-good > 1 {
			where = fmt.Sprintf("an entry of %d to %d (a batch: no checkpoint between) differs from what %v signed", good, end-1, cps[firstBad])
		}
		switch {
		case n > s:
			return &AuditError{Err: ErrInserted, Index: good, Detail: where + fmt.Sprintf("; %d entries, %d signed", n, s)}
		case n < s:
			return &AuditError{Err: ErrDeleted, Index: good, Detail: where + fmt.Sprintf("; %d entries, %d signed", n, s)}
		}
		return &AuditError{Err: ErrModified, Index: good, Detail: where}
	}
	if s > n {
		d := fmt.Sprintf("%v signed %d entries, the log has %d", cps[len(cps)-1], s, n)
		if good < n {
			d += fmt.Sprintf(" (no checkpoint of size %d to %d checks entries %d to %d)", good+1, n, good, n-1)
		}
		return &AuditError{Err: ErrTruncated, Index: n, Detail: d}
	}
	if n > s {
		d := fmt.Sprintf("entries %d to %d are covered by no checkpoint", s, n-1)
		if n-s == 1 {
			d = fmt.Sprintf("entry %d is covered by no checkpoint", s)
		}
		return &AuditError{Err: ErrInserted, Index: s, Detail: d}
	}
	// The log's last record always holds its checkpoint (Log.AppendBatch
	// signs one for the tree that ends with a batch's last entry).
	if n > 0 && !entries[n-1].signed {
		return &AuditError{Err: ErrMalformed, Index: n - 1,
			Detail: fmt.Sprintf("the last entry is not followed by its checkpoint (of size %d)", n)}
	}
	return nil
}

// checkEntries decodes every entry and checks each order's life cycle,
// counts and quota.
func (a *Auditor) checkEntries(entries []exportEntry, rep *Report) error {
	rep.Orders = make(map[OrderID]*OrderReport)
	rep.Devices = make(map[string]int64)
	rep.CertificateDigests = make(map[string][32]byte)
	rep.RevokedDevices = make(map[string]int64)
	for id, q := range a.Orders {
		rep.Orders[id] = &OrderReport{Quota: q, Loaded: -1, Revoked: -1}
	}
	type deviceKey struct {
		order  OrderID
		device string
	}
	certified := make(map[deviceKey]bool)
	for p := range entries {
		i := int64(p)
		e, err := ParseEntry(entries[p].data)
		if err != nil {
			return &AuditError{Err: ErrMalformed, Index: i, Detail: "signed entry does not decode", Cause: err}
		}
		fail := func(kind error, format string, args ...any) error {
			return &AuditError{Err: kind, Index: i, Detail: fmt.Sprintf("%v of order %x: ", e.Kind, e.Order[:]) + fmt.Sprintf(format, args...)}
		}
		o := rep.Orders[e.Order]
		if e.Kind == OrderLoaded {
			switch {
			case o == nil && a.Orders != nil:
				return fail(ErrOrder, "not an order of the auditor's")
			case o == nil:
				o = &OrderReport{Quota: e.Quota, Loaded: -1, Revoked: -1}
				rep.Orders[e.Order] = o
			}
			if o.Loaded >= 0 {
				return fail(ErrOrder, "already loaded at entry %d", o.Loaded)
			}
			if e.Quota != o.Quota {
				return fail(ErrOrder, "quota %d, the order's is %d", e.Quota, o.Quota)
			}
			o.Loaded = i
			continue
		}
		if o == nil || o.Loaded < 0 {
			return fail(ErrOrder, "the order was not loaded")
		}
		// A revoked order issues nothing more; its devices may still be
		// revoked.
		if o.Revoked >= 0 && e.Kind != DeviceRevoked {
			return fail(ErrOrder, "the order was revoked at entry %d", o.Revoked)
		}
		dk := deviceKey{e.Order, string(e.Device)}
		switch e.Kind {
		case OrderRevoked:
			o.Revoked = i
		case CertificateIssued:
			if e.Count != o.Certified+1 {
				return fail(ErrCount, "count %d after %d certificates", e.Count, o.Certified)
			}
			if o.Certified+o.Spoiled+1 > o.Quota {
				return fail(ErrOverQuota, "certificate %d with %d spoiled, quota %d", e.Count, o.Spoiled, o.Quota)
			}
			devHex := hex.EncodeToString(e.Device)
			if at, ok := rep.Devices[devHex]; ok {
				return fail(ErrDevice, "device %s already certified at entry %d", devHex, at)
			}
			rep.Devices[devHex] = i
			rep.CertificateDigests[devHex] = *e.Digest
			certified[dk] = true
			o.Certified++
		case UPKIssued:
			if !certified[dk] {
				return fail(ErrDevice, "UPK for device %x, which the order did not certify", e.Device)
			}
			o.UPKs++
		case UnitSpoiled:
			if e.Count != o.Spoiled+1 {
				return fail(ErrCount, "count %d after %d spoiled units", e.Count, o.Spoiled)
			}
			if o.Certified+o.Spoiled+1 > o.Quota {
				return fail(ErrOverQuota, "spoiled unit %d with %d certified, quota %d", e.Count, o.Certified, o.Quota)
			}
			o.Spoiled++
		case DeviceRevoked:
			devHex := hex.EncodeToString(e.Device)
			if !certified[dk] {
				return fail(ErrDevice, "revocation of device %s, which the order did not certify", devHex)
			}
			if at, ok := rep.RevokedDevices[devHex]; ok {
				return fail(ErrDevice, "device %s already revoked at entry %d", devHex, at)
			}
			if cert := rep.CertificateDigests[devHex]; e.Digest != nil && *e.Digest != cert {
				return fail(ErrDevice, "revocation of device %s names certificate %x, the log certified %x",
					devHex, e.Digest[:8], cert[:8])
			}
			rep.RevokedDevices[devHex] = i
			o.DevicesRevoked++
		}
	}
	return nil
}
