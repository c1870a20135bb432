package auditlog

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"time"

	"github.com/sbm-project/sbm/internal/cbor"
	"github.com/sbm-project/sbm/internal/cose"
	"github.com/sbm-project/sbm/internal/hostcose"
	"golang.org/x/mod/sumdb/tlog"
)

// ContentTypeCheckpoint is the COSE content type of a signed checkpoint.
const ContentTypeCheckpoint = "application/vnd.sbm.log-checkpoint+cbor"

// MaxCheckpointSize is the largest signed checkpoint the log decodes.
const MaxCheckpointSize = 1024

// maxOriginSize bounds a log's origin string.
const maxOriginSize = 255

// Checkpoint payload map keys.
const (
	cpOrigin = 1
	cpSize   = 2
	cpRoot   = 3
	cpTime   = 4
)

// ErrCheckpoint means a signed checkpoint is malformed, not signed by the
// log key, or its signature does not verify.
var ErrCheckpoint = errors.New("auditlog: invalid checkpoint")

// Checkpoint is a signed statement of the log key: the log named Origin
// had Size entries whose Merkle tree hash is Root, at Time.
type Checkpoint struct {
	// Origin names the log.
	Origin string
	// Size is the number of entries the tree covers (at least 1).
	Size int64
	// Root is the RFC 6962 Merkle tree hash of the first Size entries.
	Root tlog.Hash
	// Time is when the checkpoint was signed, to the second.
	Time time.Time
	// Signed is the COSE_Sign1 encoding, as signed by the log key.
	Signed []byte
}

// Tree returns the checkpoint's tree, for the tlog proof functions.
func (c *Checkpoint) Tree() tlog.Tree { return tlog.Tree{N: c.Size, Hash: c.Root} }

func marshalCheckpointPayload(origin string, size int64, root tlog.Hash, t time.Time) []byte {
	b := make([]byte, 0, 96)
	b = cbor.AppendMapHeader(b, 4)
	b = cbor.AppendText(cbor.AppendUint(b, cpOrigin), origin)
	b = cbor.AppendUint(cbor.AppendUint(b, cpSize), uint64(size))
	b = cbor.AppendBytes(cbor.AppendUint(b, cpRoot), root[:])
	b = cbor.AppendUint(cbor.AppendUint(b, cpTime), uint64(t.Unix()))
	return b
}

// signCheckpoint signs the checkpoint of a tree with key.
func signCheckpoint(key crypto.Signer, origin string, size int64, root tlog.Hash, t time.Time) (*Checkpoint, error) {
	t = time.Unix(t.Unix(), 0).UTC()
	payload := marshalCheckpointPayload(origin, size, root, t)
	signed, err := hostcose.Sign1(key, ContentTypeCheckpoint, payload, nil)
	if err != nil {
		return nil, fmt.Errorf("sign checkpoint: %w", err)
	}
	return &Checkpoint{Origin: origin, Size: size, Root: root, Time: t, Signed: signed}, nil
}

func checkpointError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCheckpoint, fmt.Sprintf(format, args...))
}

// logVerifier checks checkpoints against one log key.
type logVerifier struct {
	alg int64
	raw []byte
	kid [32]byte
}

func newLogVerifier(pub crypto.PublicKey) (*logVerifier, error) {
	raw, err := hostcose.RawPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("log key: %w", err)
	}
	alg, err := hostcose.Algorithm(pub)
	if err != nil {
		return nil, fmt.Errorf("log key: %w", err)
	}
	kid, _ := hostcose.KeyID(pub)
	return &logVerifier{alg: int64(alg), raw: raw, kid: kid}, nil
}

// verify decodes a signed checkpoint and checks its signature.
func (v *logVerifier) verify(signed []byte) (*Checkpoint, error) {
	msg, h, err := decodeSigned(signed)
	if err != nil {
		return nil, err
	}
	if h.KID != v.kid {
		return nil, checkpointError("signed by key %x, not the log key %x", h.KID[:8], v.kid[:8])
	}
	if h.Alg != v.alg {
		return nil, checkpointError("algorithm %d, the log key's is %d", h.Alg, v.alg)
	}
	if err := msg.Verify(v.alg, v.raw); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCheckpoint, err)
	}
	return parseCheckpointPayload(msg.Payload, signed)
}

// decodeSigned checks a checkpoint's COSE structure, without its signature.
func decodeSigned(signed []byte) (cose.Sign1, cose.Header, error) {
	if len(signed) > MaxCheckpointSize {
		return cose.Sign1{}, cose.Header{}, checkpointError("%d bytes, more than %d", len(signed), MaxCheckpointSize)
	}
	msg, err := cose.DecodeSign1(signed)
	if err != nil {
		return msg, cose.Header{}, fmt.Errorf("%w: %w", ErrCheckpoint, err)
	}
	h, err := cose.ParseProtected(msg.Protected)
	if err != nil {
		return msg, h, fmt.Errorf("%w: %w", ErrCheckpoint, err)
	}
	if string(h.ContentType) != ContentTypeCheckpoint {
		return msg, h, checkpointError("content type %q", h.ContentType)
	}
	if !bytes.Equal(msg.Unprotected, []byte{0xa0}) {
		return msg, h, checkpointError("unprotected header not empty")
	}
	return msg, h, nil
}

// parseCheckpoint decodes a signed checkpoint without verifying its
// signature (for checkpoints the log itself stored).
func parseCheckpoint(signed []byte) (*Checkpoint, error) {
	msg, _, err := decodeSigned(signed)
	if err != nil {
		return nil, err
	}
	return parseCheckpointPayload(msg.Payload, signed)
}

func parseCheckpointPayload(p, signed []byte) (*Checkpoint, error) {
	d := cbor.NewDecoder(p)
	n, err := d.MapHeader(4)
	if err != nil || n != 4 {
		return nil, checkpointError("payload is not a map of 4 entries")
	}
	c := &Checkpoint{Signed: signed}
	for key := uint64(1); key <= 4; key++ {
		k, err := d.Uint()
		if err != nil || k != key {
			return nil, checkpointError("payload key %d missing or out of order", key)
		}
		switch key {
		case cpOrigin:
			v, err := d.Text()
			if err != nil || len(v) == 0 || len(v) > maxOriginSize {
				return nil, checkpointError("origin: want 1 to %d bytes of text", maxOriginSize)
			}
			c.Origin = string(v)
		case cpSize:
			v, err := d.Uint()
			if err != nil || v == 0 || v > 1<<62 {
				return nil, checkpointError("size out of range")
			}
			c.Size = int64(v)
		case cpRoot:
			v, err := d.Bytes()
			if err != nil || len(v) != tlog.HashSize {
				return nil, checkpointError("root: want %d bytes", tlog.HashSize)
			}
			copy(c.Root[:], v)
		case cpTime:
			v, err := d.Uint()
			if err != nil || v > 1<<62 {
				return nil, checkpointError("time out of range")
			}
			c.Time = time.Unix(int64(v), 0).UTC()
		}
	}
	if err := d.Finish(); err != nil {
		return nil, checkpointError("payload: %v", err)
	}
	return c, nil
}

// VerifyCheckpoint decodes a signed checkpoint and verifies that logKey
// (the public half of the log key) signed it.
func VerifyCheckpoint(signed []byte, logKey crypto.PublicKey) (*Checkpoint, error) {
	v, err := newLogVerifier(logKey)
	if err != nil {
		return nil, err
	}
	return v.verify(signed)
}
