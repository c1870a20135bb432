package auditlog

import (
	"errors"
	"fmt"
	"time"

	"github.com/sbm-project/sbm/internal/cbor"
)

// MaxEntrySize is the largest encoded entry the log accepts or decodes.
const MaxEntrySize = 1024

// maxIDSize bounds the station and device identifiers.
const maxIDSize = 64

// Kind is the kind of production event an entry records.
type Kind uint8

// The kinds of entries (docs/production.md, "Audit log").
const (
	// OrderLoaded records a production order activated on the service.
	OrderLoaded Kind = 1
	// OrderRevoked records an order revoked: nothing more is issued under it.
	OrderRevoked Kind = 2
	// CertificateIssued records a device certificate signed under an order.
	CertificateIssued Kind = 3
	// UPKIssued records a first-programming UPK issued to a certified device.
	UPKIssued Kind = 4
	// UnitSpoiled records a unit of an order's quota lost to a fault.
	UnitSpoiled Kind = 5
	// DeviceRevoked records a certified device revoked by the update
	// service: it is refused on the device API from then on.
	DeviceRevoked Kind = 6

	lastKind = DeviceRevoked
)

var kindNames = [...]string{
	OrderLoaded:       "order-loaded",
	OrderRevoked:      "order-revoked",
	CertificateIssued: "certificate-issued",
	UPKIssued:         "upk-issued",
	UnitSpoiled:       "unit-spoiled",
	DeviceRevoked:     "device-revoked",
}

// String returns the kind's name in the spec, such as "certificate-issued".
func (k Kind) String() string {
	if k >= 1 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// OrderID identifies a production order: the order's 16-byte ID
// (server/order.Order.ID).
type OrderID [16]byte

// String returns the ID in hexadecimal.
func (id OrderID) String() string { return fmt.Sprintf("%x", id[:]) }

// Entry is one production event. Which fields an entry carries depends on
// its kind (docs/production.md, "Audit log"); absent fields are zero.
type Entry struct {
	// Kind is the event.
	Kind Kind
	// Time is when the service recorded the event, to the second.
	Time time.Time
	// Order is the order the event belongs to.
	Order OrderID
	// Station identifies the station (by convention SHA-256 of its
	// certificate); for certificate-issued, upk-issued and unit-spoiled.
	Station []byte
	// Device is the device's unique ID: for certificate-issued,
	// upk-issued and device-revoked, optionally for unit-spoiled.
	Device []byte
	// Digest is SHA-256 of the artefact: the signed order, its COSE_Sign1
	// bytes (order-loaded; optionally order-revoked: the revocation
	// request), the certificate's DER (certificate-issued; optionally
	// device-revoked: the certificate revoked) or the UPK (upk-issued).
	Digest *[32]byte
	// Count is the order's running count after this event: certificates
	// issued (certificate-issued) or units spoiled (unit-spoiled), from 1.
	Count uint64
	// Quota is the order's count of units (order-loaded).
	Quota uint64
}

// Entry map keys.
const (
	keyKind    = 1
	keyTime    = 2
	keyOrder   = 3
	keyStation = 4
	keyDevice  = 5
	keyDigest  = 6
	keyCount   = 7
	keyQuota   = 8
	numKeys    = 8
)

// presence rules per kind: required and allowed key sets (bit k = key k).
type fieldRule struct{ required, allowed uint16 }

const base = 1<<keyKind | 1<<keyTime | 1<<keyOrder

var fieldRules = [...]fieldRule{
	OrderLoaded:       {base | 1<<keyDigest | 1<<keyQuota, base | 1<<keyDigest | 1<<keyQuota},
	OrderRevoked:      {base, base | 1<<keyDigest},
	CertificateIssued: {base | 1<<keyStation | 1<<keyDevice | 1<<keyDigest | 1<<keyCount, base | 1<<keyStation | 1<<keyDevice | 1<<keyDigest | 1<<keyCount},
	UPKIssued:         {base | 1<<keyStation | 1<<keyDevice | 1<<keyDigest, base | 1<<keyStation | 1<<keyDevice | 1<<keyDigest},
	UnitSpoiled:       {base | 1<<keyStation | 1<<keyCount, base | 1<<keyStation | 1<<keyDevice | 1<<keyCount},
	DeviceRevoked:     {base | 1<<keyDevice, base | 1<<keyDevice | 1<<keyDigest},
}

var keyNames = [...]string{keyKind: "kind", keyTime: "time", keyOrder: "order", keyStation: "station",
	keyDevice: "device", keyDigest: "digest", keyCount: "count", keyQuota: "quota"}

// ErrEntry means an entry is not a valid encoding of an event, or an Entry
// value cannot be encoded. Errors from ParseEntry and MarshalBinary wrap it.
var ErrEntry = errors.New("auditlog: invalid entry")

func entryError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrEntry, fmt.Sprintf(format, args...))
}

func (e *Entry) present() uint16 {
	p := uint16(base)
	if len(e.Station) > 0 {
		p |= 1 << keyStation
	}
	if len(e.Device) > 0 {
		p |= 1 << keyDevice
	}
	if e.Digest != nil {
		p |= 1 << keyDigest
	}
	if e.Count != 0 {
		p |= 1 << keyCount
	}
	if e.Quota != 0 {
		p |= 1 << keyQuota
	}
	return p
}

func checkFields(k Kind, present uint16) error {
	if k < OrderLoaded || k > lastKind {
		return entryError("unknown kind %d", uint8(k))
	}
	r := fieldRules[k]
	for key := 1; key <= numKeys; key++ {
		bit := uint16(1) << key
		switch {
		case r.required&bit != 0 && present&bit == 0:
			return entryError("%v entry without %s", k, keyNames[key])
		case r.allowed&bit == 0 && present&bit != 0:
			return entryError("%v entry with %s", k, keyNames[key])
		}
	}
	return nil
}

// MarshalBinary returns the entry's canonical encoding: a CBOR map with
// integer keys in RFC 8949 core deterministic encoding.
func (e *Entry) MarshalBinary() ([]byte, error) {
	present := e.present()
	if err := checkFields(e.Kind, present); err != nil {
		return nil, err
	}
	t := e.Time.Unix()
	if t < 0 {
		return nil, entryError("time %v before 1970", e.Time)
	}
	if len(e.Station) > maxIDSize || len(e.Device) > maxIDSize {
		return nil, entryError("station or device ID longer than %d bytes", maxIDSize)
	}
	n := 0
	for key := 1; key <= numKeys; key++ {
		if present&(1<<key) != 0 {
			n++
		}
	}
	b := make([]byte, 0, 128)
	b = cbor.AppendMapHeader(b, uint64(n))
	b = cbor.AppendUint(cbor.AppendUint(b, keyKind), uint64(e.Kind))
	b = cbor.AppendUint(cbor.AppendUint(b, keyTime), uint64(t))
	b = cbor.AppendBytes(cbor.AppendUint(b, keyOrder), e.Order[:])
	if len(e.Station) > 0 {
		b = cbor.AppendBytes(cbor.AppendUint(b, keyStation), e.Station)
	}
	if len(e.Device) > 0 {
		b = cbor.AppendBytes(cbor.AppendUint(b, keyDevice), e.Device)
	}
	if e.Digest != nil {
		b = cbor.AppendBytes(cbor.AppendUint(b, keyDigest), e.Digest[:])
	}
	if e.Count != 0 {
		b = cbor.AppendUint(cbor.AppendUint(b, keyCount), e.Count)
	}
	if e.Quota != 0 {
		b = cbor.AppendUint(cbor.AppendUint(b, keyQuota), e.Quota)
	}
	return b, nil
}

// ParseEntry decodes an entry's canonical encoding. It accepts exactly the
// encodings MarshalBinary produces: keys in ascending order, each once, only
// those the entry's kind allows, shortest integer and length forms, nothing
// after the map.
func ParseEntry(b []byte) (*Entry, error) {
	if len(b) > MaxEntrySize {
		return nil, entryError("%d bytes, more than %d", len(b), MaxEntrySize)
	}
	d := cbor.NewDecoder(b)
	n, err := d.MapHeader(numKeys)
	if err != nil {
		return nil, entryError("%v", err)
	}
	e := new(Entry)
	var present uint16
	last := uint64(0)
	for i := 0; i < n; i++ {
		key, err := d.Uint()
		if err != nil {
			return nil, entryError("key: %v", err)
		}
		if key <= last || key > numKeys {
			return nil, entryError("key %d out of order or unknown", key)
		}
		last = key
		present |= 1 << key
		switch key {
		case keyKind:
			v, err := d.Uint()
			if err != nil {
				return nil, entryError("kind: %v", err)
			}
			if v < uint64(OrderLoaded) || v > uint64(lastKind) {
				return nil, entryError("unknown kind %d", v)
			}
			e.Kind = Kind(v)
		case keyTime:
			v, err := d.Uint()
			if err != nil {
				return nil, entryError("time: %v", err)
			}
			if v > 1<<62 {
				return nil, entryError("time %d out of range", v)
			}
			e.Time = time.Unix(int64(v), 0).UTC()
		case keyOrder:
			v, err := d.Bytes()
			if err != nil {
				return nil, entryError("order: %v", err)
			}
			if len(v) != len(e.Order) {
				return nil, entryError("order ID of %d bytes, want %d", len(v), len(e.Order))
			}
			copy(e.Order[:], v)
		case keyStation, keyDevice:
			v, err := d.Bytes()
			if err != nil {
				return nil, entryError("%s: %v", keyNames[key], err)
			}
			if len(v) == 0 || len(v) > maxIDSize {
				return nil, entryError("%s ID of %d bytes, want 1 to %d", keyNames[key], len(v), maxIDSize)
			}
			if key == keyStation {
				e.Station = append([]byte(nil), v...)
			} else {
				e.Device = append([]byte(nil), v...)
			}
		case keyDigest:
			v, err := d.Bytes()
			if err != nil {
				return nil, entryError("digest: %v", err)
			}
			if len(v) != 32 {
				return nil, entryError("digest of %d bytes, want 32", len(v))
			}
			e.Digest = new([32]byte)
			copy(e.Digest[:], v)
		case keyCount, keyQuota:
			v, err := d.Uint()
			if err != nil {
				return nil, entryError("%s: %v", keyNames[key], err)
			}
			if v == 0 {
				return nil, entryError("%s 0", keyNames[key])
			}
			if key == keyCount {
				e.Count = v
			} else {
				e.Quota = v
			}
		}
	}
	if err := d.Finish(); err != nil {
		return nil, entryError("%v", err)
	}
	if err := checkFields(e.Kind, present); err != nil {
		return nil, err
	}
	return e, nil
}
