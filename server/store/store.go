// Package store defines the storage of the OEM service: production orders,
// their sub-quotas, stations and the exact counters that bound how many
// devices an order may certify.
//
// Store is implemented by two engines with the same behaviour: package
// server/store/sqlite (embedded, the default) and package
// server/store/postgres (several service instances sharing one database).
// Both apply their versioned schema migrations when opened. The conformance
// tests in package server/store/storetest run against both.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/sbm-project/sbm/server/auditlog"
)

// Errors that callers branch on. Engines wrap them with %w.
var (
	// ErrNotFound is returned for an order, station or reservation that
	// does not exist.
	ErrNotFound = errors.New("not found")
	// ErrOrderExists is returned when an order with the same ID is loaded
	// twice.
	ErrOrderExists = errors.New("order already loaded")
	// ErrOrderExhausted is returned by Reserve when used + spoiled has
	// reached the order's count.
	ErrOrderExhausted = errors.New("order exhausted")
	// ErrOrderRevoked is returned by Reserve for a revoked order and by
	// RevokeOrder for an order revoked before.
	ErrOrderRevoked = errors.New("order revoked")
	// ErrLineExhausted is returned by ReserveLine when the line's
	// sub-quota is used up (the order may have units left for other
	// lines).
	ErrLineExhausted = errors.New("line quota exhausted")
	// ErrDeviceTaken is returned by Reserve when the device already holds a
	// reservation under another order.
	ErrDeviceTaken = errors.New("device already reserved under another order")
	// ErrReservationState is returned by Commit and Spoil for a reservation
	// that is not in a state they can move it from (e.g. spoiling a
	// committed device).
	ErrReservationState = errors.New("reservation in the wrong state")
	// ErrDeviceCertified is returned by Certify for a device that already
	// has a certificate.
	ErrDeviceCertified = errors.New("device already certified")
	// ErrReleaseExists is returned by PutRelease for a package published
	// before.
	ErrReleaseExists = errors.New("release already published")
)

// OrderState is the state of a production order on the service.
type OrderState string

// The states of an order.
const (
	OrderActive  OrderState = "active"
	OrderRevoked OrderState = "revoked"
)

// Order is a production order loaded on the service. Signed holds the
// order exactly as the OEM signed it; the other fields are taken from it
// when it is loaded, for queries.
type Order struct {
	ID       string // hex order ID, unique
	Signed   []byte // the COSE_Sign1 order
	VendorID string // product vendor UUID
	ClassID  string // product device-class UUID
	Count    int64  // devices the order allows
	NotAfter time.Time
	State    OrderState
	Created  time.Time
}

// Quota is a sub-quota: the share of an order given to one production
// line, counted like the order (Used + Spoiled never exceeds Count).
type Quota struct {
	OrderID string
	Line    string
	Count   int64
	Used    int64 // read only: ignored by SetQuota
	Spoiled int64 // read only: ignored by SetQuota
}

// Remaining is how many devices the line may still reserve (if the order
// has them left).
func (q Quota) Remaining() int64 { return q.Count - q.Used - q.Spoiled }

// Station is a contract manufacturer's provisioning station known to the
// service by its certificate's SHA-256 digest.
type Station struct {
	Name       string
	CertDigest [32]byte
	Created    time.Time
}

// Counter is an order's count and how much of it is consumed: Used counts
// reserved and committed devices, Spoiled the units lost to a failure after
// they were reserved. Used + Spoiled never exceeds Count.
type Counter struct {
	OrderID string
	Count   int64
	Used    int64
	Spoiled int64
	// Certified counts the committed devices (certificates issued), a
	// part of Used.
	Certified int64
}

// Remaining is how many devices the order may still reserve.
func (c Counter) Remaining() int64 { return c.Count - c.Used - c.Spoiled }

// ReservationState is the state of one device's unit of an order.
type ReservationState string

// The states of a reservation.
const (
	// Reserved: a unit of the order is held for the device; its
	// certificate may not have been delivered yet.
	Reserved ReservationState = "reserved"
	// Committed: the device was certified.
	Committed ReservationState = "committed"
	// Spoiled: the unit was lost (the exchange failed after Reserve); it
	// is never given to another device.
	Spoiled ReservationState = "spoiled"
)

// Reservation is one device's unit of an order.
type Reservation struct {
	OrderID  string
	DeviceID string
	Line     string // the production line it counts against, or ""
	Station  []byte // the reserving station's certificate digest (ReserveFor), or nil
	State    ReservationState
	Created  time.Time
	// Existing is true when Reserve found the device's reservation from
	// an earlier attempt instead of making a new one.
	Existing bool
}

// Store is the service's storage. Every method is safe for concurrent use,
// also by several Store instances sharing one database (PostgreSQL).
type Store interface {
	// CreateOrder records a new active order and its counter
	// (ErrOrderExists if its ID is known).
	CreateOrder(ctx context.Context, o *Order) error
	// Order returns the order with the given ID (ErrNotFound).
	Order(ctx context.Context, id string) (*Order, error)
	// Orders returns every order, oldest first.
	Orders(ctx context.Context) ([]*Order, error)
	// RevokeOrder marks an order revoked: Reserve refuses it from then on
	// (ErrNotFound, ErrOrderRevoked if already revoked).
	RevokeOrder(ctx context.Context, id string) error

	// SetQuota sets the count of one line of an order, keeping what the
	// line used (ErrNotFound for an unknown order; an error if the count
	// is below what the line already used and spoiled).
	SetQuota(ctx context.Context, q Quota) error
	// Quotas returns an order's sub-quotas, by line.
	Quotas(ctx context.Context, orderID string) ([]Quota, error)

	// PutStation records a station, replacing one of the same name.
	PutStation(ctx context.Context, s *Station) error
	// Station returns the station with the given name (ErrNotFound).
	Station(ctx context.Context, name string) (*Station, error)

	// Counter returns an order's counter (ErrNotFound).
	Counter(ctx context.Context, orderID string) (Counter, error)
	// Reserve atomically takes one unit of the order for the device: it
	// increments Used only if Used + Spoiled < Count and the device has no
	// reservation yet. A device's second Reserve on the same order returns
	// its existing reservation (Existing set) without counting again.
	// Errors: ErrNotFound, ErrOrderRevoked, ErrOrderExhausted,
	// ErrDeviceTaken. Reserve does not check the order's validity window or
	// its stations: the caller checks those against the signed order.
	Reserve(ctx context.Context, orderID, deviceID string) (Reservation, error)
	// ReserveLine is Reserve counting against one production line's
	// sub-quota too: the line's Used + Spoiled must stay within its Count
	// (ErrLineExhausted; ErrNotFound for an order without that line).
	// Spoiling the unit later counts it spoiled on the line as well.
	ReserveLine(ctx context.Context, orderID, line, deviceID string) (Reservation, error)
	// Commit marks a reserved device certified; committing a committed
	// device again is a no-op (ErrNotFound, ErrReservationState).
	Commit(ctx context.Context, orderID, deviceID string) error
	// Spoil marks a reserved unit lost: Used decreases and Spoiled
	// increases by one, so the unit is never given again (ErrNotFound,
	// ErrReservationState for a committed device).
	Spoil(ctx context.Context, orderID, deviceID string) error
	// Reservation returns a device's reservation (ErrNotFound).
	Reservation(ctx context.Context, deviceID string) (Reservation, error)

	// ReserveFor is ReserveLine (or Reserve, for an empty Line) that
	// also records the station asking, for the log entry of a unit later
	// spoiled.
	ReserveFor(ctx context.Context, r ReserveRequest) (Reservation, error)
	// Certify records a certified device in one transaction: its
	// reservation moves from reserved to committed, the order's certified
	// count rises by one, the device's record is stored, and logf runs
	// with that count and the audit log bound to the same transaction,
	// returning the index of the device's certificate-issued entry, so the
	// device is in the log if and only if it is certified. Errors:
	// ErrNotFound (no reservation under that order), ErrReservationState
	// (spoiled), ErrDeviceCertified, or logf's error (nothing stored).
	Certify(ctx context.Context, d *Device, logf func(ctx context.Context, certified int64, log auditlog.Store) (int64, error)) error
	// Device returns a certified device's record (ErrNotFound).
	Device(ctx context.Context, deviceID string) (*Device, error)
	// SpoilLogged is Spoil with logf run in the same transaction, with
	// the reservation and the order's spoiled count after it.
	SpoilLogged(ctx context.Context, orderID, deviceID string, logf func(ctx context.Context, r Reservation, spoiled int64, log auditlog.Store) error) error
	// StaleReservations returns the reservations still reserved that were
	// made before t, oldest first, at most limit.
	StaleReservations(ctx context.Context, before time.Time, limit int) ([]Reservation, error)
	// LoadOrder is CreateOrder with the order's sub-quotas and logf in
	// the same transaction.
	LoadOrder(ctx context.Context, o *Order, quotas []Quota, logf func(ctx context.Context, log auditlog.Store) error) error
	// RevokeOrderLogged is RevokeOrder with logf in the same transaction.
	RevokeOrderLogged(ctx context.Context, id string, logf func(ctx context.Context, log auditlog.Store) error) error
	// Log returns the audit log's storage, outside any transaction (for
	// reading; appends should go through the transactions above).
	Log() auditlog.Store

	// PutRelease records a published package (ErrReleaseExists).
	PutRelease(ctx context.Context, r *Release) error
	// Release returns a release by manifest digest (ErrNotFound).
	Release(ctx context.Context, manifestDigest [32]byte) (*Release, error)
	// Releases returns every release without its package, oldest first.
	Releases(ctx context.Context) ([]*Release, error)

	// Fleet is the update service's storage (fleet.go).
	Fleet
	Summary

	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Close releases the store's connections.
	Close() error
}

// ReserveRequest is the argument of ReserveFor.
type ReserveRequest struct {
	OrderID  string
	Line     string // "" for the order's count only
	DeviceID string
	Station  []byte
}

// Device is a certified device as the service recorded it.
type Device struct {
	DeviceID string // hex
	OrderID  string
	Station  []byte // SHA-256 of the station certificate that asked
	// Certificate is the device certificate (DER).
	Certificate []byte
	// UPK is the first-programming UPK issued with it, or nil.
	UPK []byte
	// Board and SBMMeasurement (hex SHA-256 of the SBM region) are what
	// the station reported of the device (its claims; "" if none).
	Board, SBMMeasurement string
	// LogIndex is the index of its certificate-issued log entry (set by
	// Certify from what logf returned).
	LogIndex int64
	Created  time.Time
}

// Release is a published package.
type Release struct {
	ManifestDigest  [32]byte
	Version         string
	SecurityCounter uint32
	// Package is the whole package file (nil from Releases).
	Package []byte
	Created time.Time
}
