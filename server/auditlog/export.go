package auditlog

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/sbm-project/sbm/internal/cbor"
)

// Export file format (docs/production.md, "Export file"): a CBOR sequence
// (RFC 8742) of a header and records.
const (
	exportMagic   = "sbm-auditlog"
	exportVersion = 1

	recordEntry      = 1
	recordCheckpoint = 2

	// maxExportSize bounds the export file Audit reads into memory.
	maxExportSize = 1 << 30
	// exportBatch is how many records Export reads from the store at once.
	exportBatch = 4096
)

// Export writes the whole log to w in the export file format: every entry,
// each that holds a checkpoint followed by it (the entries of a batch share
// the checkpoint of its last, which follows that one). The log's later
// appends are not included.
func (l *Log) Export(ctx context.Context, w io.Writer) error {
	n, err := l.store.Size(ctx)
	if err != nil {
		return fmt.Errorf("auditlog: export: %w", err)
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	buf := cbor.AppendArrayHeader(nil, 2)
	buf = cbor.AppendText(buf, exportMagic)
	buf = cbor.AppendUint(buf, exportVersion)
	if _, err := bw.Write(buf); err != nil {
		return fmt.Errorf("auditlog: export: %w", err)
	}
	for start := int64(0); start < n; start += exportBatch {
		end := min(start+exportBatch, n)
		recs, err := l.store.ReadRecords(ctx, start, end)
		if err != nil {
			return fmt.Errorf("auditlog: export: %w", err)
		}
		for i, r := range recs {
			buf = appendEntryRecord(buf[:0], start+int64(i), r.Entry)
			if len(r.Checkpoint) > 0 {
				buf = appendCheckpointRecord(buf, r.Checkpoint)
			}
			if _, err := bw.Write(buf); err != nil {
				return fmt.Errorf("auditlog: export: %w", err)
			}
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("auditlog: export: %w", err)
	}
	return nil
}

func appendEntryRecord(b []byte, index int64, entry []byte) []byte {
	b = cbor.AppendArrayHeader(b, 3)
	b = cbor.AppendUint(b, recordEntry)
	b = cbor.AppendUint(b, uint64(index))
	return cbor.AppendBytes(b, entry)
}

func appendCheckpointRecord(b []byte, cp []byte) []byte {
	b = cbor.AppendArrayHeader(b, 2)
	b = cbor.AppendUint(b, recordCheckpoint)
	return cbor.AppendBytes(b, cp)
}

// exportFile is a decoded export file. Nothing in it is verified yet.
type exportFile struct {
	entries     []exportEntry
	checkpoints []exportCheckpoint
}

type exportEntry struct {
	index  int64  // the index the record claims
	record int    // the record's number in the file, from 0
	data   []byte // the entry's encoding
	signed bool   // the next record is this entry's checkpoint (set by Audit)
}

type exportCheckpoint struct {
	record int    // the record's number in the file
	after  int    // position in entries of the entry record just before it, or -1
	data   []byte // the signed checkpoint
}

// readExport decodes an export file. Errors are *AuditError with
// ErrMalformed or (the file ends inside a record) ErrTruncated.
func readExport(r io.Reader) (*exportFile, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxExportSize+1))
	if err != nil {
		return nil, &AuditError{Err: ErrMalformed, Index: -1, Detail: "reading the export", Cause: err}
	}
	if len(b) > maxExportSize {
		return nil, &AuditError{Err: ErrMalformed, Index: -1, Detail: fmt.Sprintf("export larger than %d bytes", maxExportSize)}
	}
	return decodeExport(b)
}

func decodeExport(b []byte) (*exportFile, error) {
	d := cbor.NewDecoder(b)
	bad := func(record int, what string, err error) error {
		e := &AuditError{Err: ErrMalformed, Index: -1, Detail: fmt.Sprintf("record %d: %s", record, what), Cause: err}
		if errors.Is(err, cbor.ErrTruncated) {
			e.Err = ErrTruncated
			e.Detail = fmt.Sprintf("the file ends inside record %d", record)
		}
		return e
	}
	if n, err := d.ArrayHeader(2); err != nil || n != 2 {
		return nil, bad(0, "not an export header", err)
	}
	magic, err := d.Text()
	if err != nil || string(magic) != exportMagic {
		return nil, bad(0, "not an sbm audit log export", err)
	}
	if v, err := d.Uint(); err != nil || v != exportVersion {
		return nil, bad(0, "unsupported export version", err)
	}
	f := new(exportFile)
	for rec := 1; !d.Done(); rec++ {
		n, err := d.ArrayHeader(3)
		if err != nil {
			return nil, bad(rec, "not a record", err)
		}
		if n < 2 {
			return nil, bad(rec, "record too short", nil)
		}
		typ, err := d.Uint()
		if err != nil {
			return nil, bad(rec, "record type", err)
		}
		switch {
		case typ == recordEntry && n == 3:
			index, err := d.Uint()
			if err != nil {
				return nil, bad(rec, "entry index", err)
			}
			if index > 1<<62 {
				return nil, bad(rec, "entry index out of range", nil)
			}
			data, err := d.Bytes()
			if err != nil {
				return nil, bad(rec, "entry", err)
			}
			if len(data) > MaxEntrySize {
				return nil, bad(rec, fmt.Sprintf("entry of %d bytes", len(data)), nil)
			}
			f.entries = append(f.entries, exportEntry{index: int64(index), record: rec, data: data})
		case typ == recordCheckpoint && n == 2:
			data, err := d.Bytes()
			if err != nil {
				return nil, bad(rec, "checkpoint", err)
			}
			if len(data) > MaxCheckpointSize {
				return nil, bad(rec, fmt.Sprintf("checkpoint of %d bytes", len(data)), nil)
			}
			f.checkpoints = append(f.checkpoints, exportCheckpoint{record: rec, after: len(f.entries) - 1, data: data})
		default:
			return nil, bad(rec, fmt.Sprintf("record type %d with %d elements", typ, n), nil)
		}
	}
	return f, nil
}
