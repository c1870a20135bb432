package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sbm-project/sbm/image"
	"github.com/sbm-project/sbm/internal/atomicfile"
	"github.com/sbm-project/sbm/trust"
	"github.com/sbm-project/sbm/upk"
	"github.com/spf13/cobra"
)

// batchHelp is the part of "upk issue --help" about --recipients.
const batchHelp = `

With --recipients and --out-dir, one run issues a UPK for each of many
devices, in parallel on every core (--jobs), each written atomically to
OUT_DIR/<device-id>.upk; an existing file is never replaced. --recipients is
a directory — of production records (*.json, such as the context's
devices/ directory) and/or device certificates (*.crt, *.pem) — or a file,
or - for standard input, listing one recipient a line: a device ID (hex)
from the context's production records, or the path of a device certificate
(blank lines and lines starting with # are skipped). A recipient that fails
is reported on stderr with its name and the others are still written; the
summary line counts both, and the exit code is then 1.`

// batchRecipient is one entry of --recipients: its name for messages and
// how to resolve it.
type batchRecipient struct {
	seq  int
	name string
	// record is set for a production record file, which is read directly.
	record bool
}

// batchFailure is a recipient that got no UPK.
type batchFailure struct {
	seq  int
	name string
	err  error
}

// issueBatch issues UPKs for every recipient of spec (a directory, a list
// file or - for stdin) into outDir with up to jobs workers. It reports
// failures and a summary; it returns an error (exit 1) if any recipient
// failed.
//
// On cancellation of ctx (Ctrl-C) it stops reading recipients, writes the
// UPKs already issued and reports how far it got.
func issueBatch(ctx context.Context, cio *cliIO, c *trust.Context, pkgFile, spec, outDir string, jobs int, opts *upk.Options) error {
	p, err := openPackage(pkgFile)
	if err != nil {
		return err
	}
	defer p.Close()
	cek, err := image.RecoverCEK(c, p.Records())
	if err != nil {
		return fmt.Errorf("%s: %w", pkgFile, err)
	}
	is, err := upk.NewIssuer(c, p.Manifest, cek)
	if err != nil {
		return err
	}
	dv, err := c.NewDeviceVerifier()
	if err != nil {
		return err
	}
	if spec != "-" {
		if _, err := os.Stat(spec); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	if jobs <= 0 {
		jobs = runtime.GOMAXPROCS(0)
	}
	list := make(chan batchRecipient, 4*jobs)
	var listErr error
	go func() {
		defer close(list)
		listErr = listRecipients(ctx, cio.stdin, spec, list)
	}()

	// Two bounded pools: jobs workers resolve recipients and issue UPKs
	// (CPU: certificate check, ECDH, signature); writers write them, in
	// groups made durable with one file-system sync each
	// (atomicfile.Group): an fsync per small file would cost more than
	// issuing it. A UPK appears only once its group is synced.
	type issued struct {
		br   batchRecipient
		name string
		upk  []byte
	}
	var (
		mu       sync.Mutex
		failures []batchFailure
		added    int
		workers  sync.WaitGroup
		writers  sync.WaitGroup
		toWrite  = make(chan issued, 4*jobs)
		group    = atomicfile.NewGroup(outDir, 0o644)
	)
	fail := func(br batchRecipient, err error) {
		mu.Lock()
		failures = append(failures, batchFailure{br.seq, br.name, err})
		mu.Unlock()
	}
	flushFailed := 0
	flush := func() {
		fes := group.Flush()
		for _, fe := range fes {
			fail(fe.Tag.(batchRecipient), fe.Err)
		}
		mu.Lock()
		flushFailed += len(fes)
		mu.Unlock()
	}
	for range jobs {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for br := range list {
				name, u, err := issueOne(c, dv, is, br, outDir, opts)
				if err != nil {
					fail(br, err)
					continue
				}
				toWrite <- issued{br, name, u}
			}
		}()
	}
	for range batchWriters {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for w := range toWrite {
				if err := group.Add(w.name, w.upk, w.br); err != nil {
					fail(w.br, err)
					continue
				}
				mu.Lock()
				added++
				mu.Unlock()
				if group.Pending() >= batchGroup {
					flush()
				}
			}
		}()
	}
	workers.Wait()
	close(toWrite)
	writers.Wait()
	flush()
	written := added - flushFailed
	slices.SortFunc(failures, func(a, b batchFailure) int { return cmp.Compare(a.seq, b.seq) })
	for _, f := range failures {
		if strings.Contains(f.err.Error(), f.name) {
			fmt.Fprintf(cio.stderr, "sbm: %v\n", f.err) // it names the recipient
		} else {
			fmt.Fprintf(cio.stderr, "sbm: %s: %v\n", f.name, f.err)
		}
	}
	fmt.Fprintf(cio.stdout, "wrote %d UPKs to %s, %d failed\n", written, outDir, len(failures))
	if errors.Is(listErr, context.Canceled) {
		return errors.New("interrupted: the recipients were read in part only")
	}
	if listErr != nil {
		return fmt.Errorf("reading the recipients: %w (the list was read in part only)", listErr)
	}
	if len(failures) > 0 {
		return fmt.Errorf("%d of %d recipients failed; the others' UPKs were written", len(failures), written+len(failures))
	}
	return nil
}

// batchWriters is the number of goroutines writing UPK files, and
// batchGroup the number of files made durable together.
const (
	batchWriters = 8
	batchGroup   = 256
)

// issueOne resolves one recipient and issues its UPK; it returns the UPK
// and its file name in outDir.
func issueOne(c *trust.Context, dv *trust.DeviceVerifier, is *upk.Issuer, br batchRecipient, outDir string, opts *upk.Options) (string, []byte, error) {
	r, err := batchRecipientKey(c, dv, br)
	if err != nil {
		return "", nil, err
	}
	name := hex.EncodeToString(r.DeviceID) + ".upk"
	if path := filepath.Join(outDir, name); fileExists(path) {
		return "", nil, fmt.Errorf("%s already exists", path) // spare the work; the Group decides
	}
	u, err := is.Issue(r, opts)
	if err != nil {
		return "", nil, err
	}
	return name, u, nil
}

func fileExists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// batchRecipientKey resolves a recipient of a batch: a production record
// file, a device certificate file, or a device ID (hex) in the context's
// production records. Certificates are checked with dv (as "upk issue
// --recipient" checks them, the device CA's chain verified once).
func batchRecipientKey(c *trust.Context, dv *trust.DeviceVerifier, br batchRecipient) (upk.Recipient, error) {
	if br.record {
		return recipientFromRecord(dv, br.name, "")
	}
	data, err := os.ReadFile(br.name)
	if errors.Is(err, fs.ErrNotExist) && isHex(br.name) {
		id := strings.ToLower(br.name)
		r, err := recipientFromRecord(dv, c.Path(filepath.Join("devices", id+".json")), id)
		if errors.Is(err, fs.ErrNotExist) {
			return upk.Recipient{}, fmt.Errorf("%w: %s", trust.ErrUnknownDevice, id)
		}
		return r, err
	}
	if err != nil {
		return upk.Recipient{}, err
	}
	if !bytes.Contains(data, []byte("-----BEGIN CERTIFICATE-----")) {
		return upk.Recipient{}, errors.New("not a device certificate (PEM), a production record (.json) or a device ID")
	}
	certs, err := trust.ParseCertificatesPEM(data)
	if err != nil {
		return upk.Recipient{}, err
	}
	id, err := dv.Verify(certs[0])
	if err != nil {
		return upk.Recipient{}, err
	}
	return upk.Recipient{Kind: upk.Device, Key: id.KeyAgreement, DeviceID: id.ID}, nil
}

// recipientFromRecord reads a production record file (trust.DeviceRecord)
// and verifies its certificate; wantID, if not empty, is the device ID the
// record must be for.
func recipientFromRecord(dv *trust.DeviceVerifier, path, wantID string) (upk.Recipient, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return upk.Recipient{}, err
	}
	var rec trust.DeviceRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return upk.Recipient{}, fmt.Errorf("not a production record: %w", err)
	}
	certs, err := trust.ParseCertificatesPEM([]byte(rec.Certificate))
	if err != nil {
		return upk.Recipient{}, fmt.Errorf("production record: %w", err)
	}
	id, err := dv.Verify(certs[0])
	if err != nil {
		return upk.Recipient{}, fmt.Errorf("production record: %w", err)
	}
	got := hex.EncodeToString(id.ID)
	if got != strings.ToLower(rec.ID) || wantID != "" && got != wantID {
		return upk.Recipient{}, fmt.Errorf("production record of device %s holds the certificate of device %s", cmp.Or(wantID, rec.ID), got)
	}
	return upk.Recipient{Kind: upk.Device, Key: id.KeyAgreement, DeviceID: id.ID}, nil
}

// listRecipients sends the recipients of spec to out, in order: the
// entries of a directory (production records and certificates, by name),
// or the lines of a file or of stdin ("-").
func listRecipients(ctx context.Context, stdin io.Reader, spec string, out chan<- batchRecipient) error {
	if spec != "-" {
		fi, err := os.Stat(spec)
		if err != nil {
			return err
		}
		if fi.IsDir() {
			return listDir(ctx, spec, out)
		}
	}
	var r io.Reader = stdin
	if spec != "-" {
		f, err := os.Open(spec)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	sc := bufio.NewScanner(r)
	seq := 0
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := send(ctx, out, batchRecipient{seq: seq, name: line, record: strings.HasSuffix(line, ".json")}); err != nil {
			return err
		}
		seq++
	}
	return sc.Err()
}

// listDir sends the production records (*.json) and certificates (*.crt,
// *.pem) of dir, in name order within each read batch of entries.
func listDir(ctx context.Context, dir string, out chan<- batchRecipient) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	seq := 0
	for {
		names, err := d.Readdirnames(4096)
		slices.Sort(names)
		for _, n := range names {
			ext := filepath.Ext(n)
			if ext != ".json" && ext != ".crt" && ext != ".pem" {
				continue
			}
			if err := send(ctx, out, batchRecipient{seq: seq, name: filepath.Join(dir, n), record: ext == ".json"}); err != nil {
				return err
			}
			seq++
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// send sends br to out unless ctx is cancelled first.
func send(ctx context.Context, out chan<- batchRecipient, br batchRecipient) error {
	select {
	case out <- br:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// batchFlags are the flags of a batch "upk issue".
type batchFlags struct {
	ctxDir, pkgFile, recipients, outDir, passFile, notBefore, notAfter string
	jobs                                                               int
}

// runUPKBatch runs "upk issue --recipients ... --out-dir ...".
func runUPKBatch(cmd *cobra.Command, cio *cliIO, bf batchFlags) error {
	var missing []string
	for _, f := range []struct{ name, v string }{{"--context", bf.ctxDir}, {"--package", bf.pkgFile}, {"--recipients", bf.recipients}, {"--out-dir", bf.outDir}} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	switch {
	case len(missing) > 0:
		return usagef("a batch (--recipients, --out-dir) also needs %s", strings.Join(missing, " and "))
	case cmd.Flags().Changed("recipient") || cmd.Flags().Changed("class") || cmd.Flags().Changed("out") || cmd.Flags().Changed("device-id"):
		return usagef("--recipients and --out-dir exclude --recipient, --class, --device-id and --out")
	case bf.jobs < 0:
		return usagef("--jobs: want a positive number of workers")
	}
	opts := &upk.Options{}
	var err error
	if bf.notBefore != "" {
		if opts.NotBefore, err = time.Parse(time.RFC3339, bf.notBefore); err != nil {
			return usagef("--not-before: want RFC 3339 time like 2027-01-02T15:04:05Z: %v", err)
		}
	}
	if bf.notAfter != "" {
		if opts.NotAfter, err = time.Parse(time.RFC3339, bf.notAfter); err != nil {
			return usagef("--not-after: want RFC 3339 time like 2027-01-02T15:04:05Z: %v", err)
		}
	}
	// One issue time for the whole batch: every UPK gets the same window.
	now := time.Now()
	opts.Now = func() time.Time { return now }
	c, err := openContext(bf.ctxDir, bf.passFile)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	return issueBatch(ctx, cio, c, bf.pkgFile, bf.recipients, bf.outDir, bf.jobs, opts)
}
