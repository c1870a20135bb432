package cbor

import "github.com/sbm-project/sbm/internal/errs"

// Errors of DecodeMap.
var (
	// ErrMapKey reports a map key that is not an integer.
	ErrMapKey = errs.New("cbor: map key is not an integer")
	// ErrUnknownKey reports an unknown (critical) key k ≥ 0.
	ErrUnknownKey = errs.New("cbor: unknown map key")
)

// FieldFunc decodes the value of key k at d and reports whether the key is
// known.
type FieldFunc func(k uint64, d *Decoder) (known bool, err error)

// DecodeMap decodes b as exactly one map of at most maxEntries entries with
// integer keys, following the project's map rule (docs/spec/package.md §1):
// a key k ≥ 0 that field does not know is critical and rejected
// (ErrUnknownKey), a key k < 0 is a non-critical extension and skipped,
// duplicate keys are rejected (ErrDuplicateKey), any other key type is
// rejected (ErrMapKey). It returns a bit mask of the known keys seen (keys
// below 32), so that callers can check the required ones.
func DecodeMap(b []byte, maxEntries int, field FieldFunc) (seen uint32, err error) {
	d := NewDecoder(b)
	n, err := d.MapHeader(maxEntries)
	if err != nil {
		return 0, err
	}
	var keys KeySet
	for i := 0; i < n; i++ {
		start := d.Offset()
		m, err := d.PeekType()
		if err != nil {
			return 0, err
		}
		var k uint64
		switch m {
		case MajorUint:
			k, err = d.Uint()
		case MajorNegInt:
			_, err = d.NegInt()
		default:
			return 0, ErrMapKey
		}
		if err != nil {
			return 0, err
		}
		if err := keys.Add(d.Since(start)); err != nil {
			return 0, err
		}
		if m == MajorNegInt {
			if err := d.Skip(); err != nil {
				return 0, err
			}
			continue
		}
		known, err := field(k, &d)
		if err != nil {
			return 0, err
		}
		if !known || k >= 32 {
			return 0, ErrUnknownKey
		}
		seen |= 1 << k
	}
	return seen, d.Finish()
}
