// Package order is the production order: what the OEM signs to let a
// contract manufacturer provision a number of devices through the
// service. An order is a COSE_Sign1 (content type
// application/vnd.sbm.order+cbor) signed by the security context's root
// key, whose payload is a CBOR map with integer keys:
//
//	1: id         bstr .size 16   random, unique
//	2: vendor-id  bstr .size 16   the product's vendor UUID
//	3: class-id   bstr .size 16   the product's device-class UUID
//	4: count      uint            devices the order allows (≥ 1)
//	5: not-before int             Unix seconds
//	6: not-after  int             Unix seconds
//	7: stations   [* bstr .size 32]  SHA-256 of the DER of each allowed
//	                              station certificate (optional)
//	8: release    bstr .size 32   the manifest digest of the package to
//	                              program at birth (optional)
//	9: lines      {* tstr => uint} sub-quotas per production line (optional)
//
// The root key signs it because it is the one key every party already
// trusts and that the OEM guards most; the service verifies an order
// against the root certificate of the context it runs with.
package order

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/veraison/go-cose"

	"github.com/sbm-project/sbm/internal/hostcose"
	"github.com/sbm-project/sbm/trust"
)

// ContentType is the order's COSE content type.
const ContentType = "application/vnd.sbm.order+cbor"

// MaxSize bounds a signed order's encoding.
const MaxSize = 64 << 10

// Errors of Verify.
var (
	// ErrSignature: not signed by the context's root key.
	ErrSignature = errors.New("order not signed by this context's root key")
	// ErrExpired: now is after the order's not-after.
	ErrExpired = errors.New("order expired")
	// ErrNotYetValid: now is before the order's not-before.
	ErrNotYetValid = errors.New("order not yet valid")
	// ErrProduct: the order names another vendor or device class than
	// the context.
	ErrProduct = errors.New("order is for another product")
	// ErrMalformed: the order cannot be decoded or breaks a rule of the
	// format.
	ErrMalformed = errors.New("malformed order")
)

// Order is a production order.
type Order struct {
	ID        [16]byte
	VendorID  trust.UUID
	ClassID   trust.UUID
	Count     uint64
	NotBefore time.Time
	NotAfter  time.Time
	// Stations are the SHA-256 digests of the allowed station
	// certificates (DER).
	Stations [][32]byte
	// Release is the manifest digest of the package to program at birth,
	// or all zero.
	Release [32]byte
	// Lines are the sub-quotas per production line; their sum is at most
	// Count.
	Lines map[string]uint64
}

// IDString returns the order's ID in hex, as the service and the CLI name
// it.
func (o *Order) IDString() string { return hex.EncodeToString(o.ID[:]) }

type wire struct {
	ID        []byte            `cbor:"1,keyasint"`
	VendorID  []byte            `cbor:"2,keyasint"`
	ClassID   []byte            `cbor:"3,keyasint"`
	Count     uint64            `cbor:"4,keyasint"`
	NotBefore int64             `cbor:"5,keyasint"`
	NotAfter  int64             `cbor:"6,keyasint"`
	Stations  [][]byte          `cbor:"7,keyasint,omitempty"`
	Release   []byte            `cbor:"8,keyasint,omitempty"`
	Lines     map[string]uint64 `cbor:"9,keyasint,omitempty"`
}

// New returns an order for the context's product with a random ID.
func New(c *trust.Context, count uint64, notBefore, notAfter time.Time) *Order {
	o := &Order{VendorID: c.VendorID(), ClassID: c.ClassID(), Count: count,
		NotBefore: notBefore.Truncate(time.Second), NotAfter: notAfter.Truncate(time.Second)}
	rand.Read(o.ID[:])
	return o
}

func (o *Order) check() error {
	if o.Count == 0 {
		return fmt.Errorf("%w: count 0", ErrMalformed)
	}
	if o.Count > 1<<62 {
		return fmt.Errorf("%w: count %d too large", ErrMalformed, o.Count)
	}
	if !o.NotAfter.After(o.NotBefore) {
		return fmt.Errorf("%w: not-after %v is not after not-before %v", ErrMalformed, o.NotAfter, o.NotBefore)
	}
	var sum uint64
	for line, n := range o.Lines {
		if line == "" {
			return fmt.Errorf("%w: empty line name", ErrMalformed)
		}
		sum += n
		if sum > o.Count || n > o.Count {
			return fmt.Errorf("%w: sub-quotas add up to more than the count %d", ErrMalformed, o.Count)
		}
	}
	return nil
}

// Sign checks the order and signs it with the context's root key.
func Sign(c *trust.Context, o *Order) ([]byte, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	w := wire{ID: o.ID[:], VendorID: o.VendorID[:], ClassID: o.ClassID[:], Count: o.Count,
		NotBefore: o.NotBefore.Unix(), NotAfter: o.NotAfter.Unix(), Lines: o.Lines}
	for _, s := range o.Stations {
		w.Stations = append(w.Stations, s[:])
	}
	if o.Release != ([32]byte{}) {
		w.Release = o.Release[:]
	}
	payload, err := hostcose.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("encode order: %w", err)
	}
	root, err := c.Signer(trust.RootKey)
	if err != nil {
		return nil, err
	}
	signed, err := hostcose.Sign1(root, ContentType, payload, nil)
	if err != nil {
		return nil, fmt.Errorf("sign order: %w", err)
	}
	return signed, nil
}

// Parse decodes a signed order without verifying its signature (to show
// it).
func Parse(signed []byte) (*Order, error) {
	_, o, err := parse(signed)
	return o, err
}

func parse(signed []byte) (*cose.Sign1Message, *Order, error) {
	if len(signed) > MaxSize {
		return nil, nil, fmt.Errorf("%w: %d bytes, over %d", ErrMalformed, len(signed), MaxSize)
	}
	msg, err := hostcose.Parse(signed, ContentType)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	var w wire
	if err := hostcose.Unmarshal(msg.Payload, &w); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	o := &Order{Count: w.Count, NotBefore: time.Unix(w.NotBefore, 0).UTC(), NotAfter: time.Unix(w.NotAfter, 0).UTC(), Lines: w.Lines}
	if !copyExact(o.ID[:], w.ID) || !copyExact(o.VendorID[:], w.VendorID) || !copyExact(o.ClassID[:], w.ClassID) {
		return nil, nil, fmt.Errorf("%w: id, vendor-id and class-id must be 16 bytes", ErrMalformed)
	}
	if w.Release != nil && !copyExact(o.Release[:], w.Release) {
		return nil, nil, fmt.Errorf("%w: release must be 32 bytes", ErrMalformed)
	}
	for _, s := range w.Stations {
		var d [32]byte
		if !copyExact(d[:], s) {
			return nil, nil, fmt.Errorf("%w: a station digest must be 32 bytes", ErrMalformed)
		}
		o.Stations = append(o.Stations, d)
	}
	if err := o.check(); err != nil {
		return nil, nil, err
	}
	return msg, o, nil
}

func copyExact(dst, src []byte) bool {
	if len(src) != len(dst) {
		return false
	}
	copy(dst, src)
	return true
}

// VerifySigned decodes a signed order and checks that the root key of
// context c signed it for the context's product, at any time: what an
// audit checks of orders that may have expired since.
func VerifySigned(c *trust.Context, signed []byte) (*Order, error) {
	msg, o, err := parse(signed)
	if err != nil {
		return nil, err
	}
	if err := verifySignature(msg, c.RootPublicKey()); err != nil {
		return nil, err
	}
	if o.VendorID != c.VendorID() || o.ClassID != c.ClassID() {
		return nil, fmt.Errorf("%w: vendor %s class %s, the context's are %s %s", ErrProduct, o.VendorID, o.ClassID, c.VendorID(), c.ClassID())
	}
	return o, nil
}

// Verify decodes a signed order and checks it for context c at time now:
// signed by the root key (ErrSignature), for the context's product
// (ErrProduct), within its validity (ErrNotYetValid, ErrExpired).
func Verify(c *trust.Context, signed []byte, now time.Time) (*Order, error) {
	o, err := VerifySigned(c, signed)
	if err != nil {
		return nil, err
	}
	if now.Before(o.NotBefore) {
		return nil, fmt.Errorf("%w: valid from %s", ErrNotYetValid, o.NotBefore.Format(time.RFC3339))
	}
	if !now.Before(o.NotAfter) {
		return nil, fmt.Errorf("%w: valid until %s", ErrExpired, o.NotAfter.Format(time.RFC3339))
	}
	return o, nil
}

func verifySignature(msg *cose.Sign1Message, root crypto.PublicKey) error {
	kid, err := hostcose.KeyID(root)
	if err != nil {
		return err
	}
	got, _ := msg.Headers.Protected[cose.HeaderLabelKeyID].([]byte)
	if string(got) != string(kid[:]) {
		return fmt.Errorf("%w: signed by key %x", ErrSignature, got)
	}
	alg, err := hostcose.Algorithm(root)
	if err != nil {
		return err
	}
	v, err := cose.NewVerifier(alg, root)
	if err != nil {
		return fmt.Errorf("order verifier: %w", err)
	}
	if err := msg.Verify(nil, v); err != nil {
		return fmt.Errorf("%w: %w", ErrSignature, err)
	}
	return nil
}

// Digest returns SHA-256 of a signed order, as the audit log names it.
func Digest(signed []byte) [32]byte { return sha256.Sum256(signed) }

// AllowsStation reports whether the order names the station certificate
// with SHA-256 digest d. An order naming no station allows none.
func (o *Order) AllowsStation(d [32]byte) bool {
	for _, s := range o.Stations {
		if s == d {
			return true
		}
	}
	return false
}
