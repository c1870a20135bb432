package secpkg

import (
	"github.com/sbm-project/sbm/internal/cbor"
	"github.com/sbm-project/sbm/internal/errs"
)

// maxMapEntries bounds every map of the format, extensions included.
const maxMapEntries = cbor.MaxMapKeys

// mapSpec describes an integer-keyed map of the format: its name for
// errors and the names of keys 1..len(names)-1 (names[0] is unused).
type mapSpec struct {
	name     string
	names    []string
	required uint32 // bit k set: key k is required
}

// fieldName returns the spec name of key k, or "".
func (s *mapSpec) fieldName(k int64) string {
	if k > 0 && k < int64(len(s.names)) {
		return s.names[k]
	}
	return ""
}

func (s *mapSpec) err(k int64, kind, cause error) error {
	if _, ok := errs.As[*FieldError](cause); ok { // already names a nested field
		return cause
	}
	if cause != nil && errs.Same(kind, ErrMalformed) {
		cause = cborCause(cause)
	}
	return &FieldError{Struct: s.name, Key: k, Name: s.fieldName(k), Kind: kind, Err: cause}
}

// cborCause maps cbor errors to short messages, keeping them matchable.
func cborCause(err error) error {
	if errs.Is(err, cbor.ErrType) {
		return errType
	}
	if errs.Is(err, cbor.ErrRange) {
		return errRange
	}
	return err
}

// decodeMap reads a map following spec §1: integer keys only, unique; a
// known key (1..len(names)-1) is passed to field, which must consume its
// value; an unknown key k ≥ 0 is critical (ErrUnknownCritical); an unknown
// key k < 0 is skipped. After the map, every required key must have been
// seen. field errors are reported as FieldErrors with kind ErrMalformed
// unless they already match a sentinel of this package.
func decodeMap(d *cbor.Decoder, s *mapSpec, field func(k int64, d *cbor.Decoder) error) error {
	n, err := d.MapHeader(maxMapEntries)
	if err != nil {
		if errs.Is(err, cbor.ErrTooLarge) {
			return wrap(ErrTooLarge, errs.New(s.name+": too many fields"))
		}
		return wrap(ErrMalformed, errs.New(s.name+": "+msg(cborCause(err))))
	}
	var seen cbor.KeySet
	var present uint32
	for i := 0; i < n; i++ {
		start := d.Offset()
		k, err := d.Int()
		if err != nil {
			return wrap(ErrMalformed, errs.New(s.name+": "+msg(errNotInteger)))
		}
		if err := seen.Add(d.Since(start)); err != nil {
			return s.err(k, ErrMalformed, errDuplicate)
		}
		switch {
		case k > 0 && k < int64(len(s.names)):
			present |= 1 << k
			if err := field(k, d); err != nil {
				return s.err(k, kindOf(err), err)
			}
		case k >= 0:
			return s.err(k, ErrUnknownCritical, nil)
		default:
			if err := d.Skip(); err != nil {
				return s.err(k, ErrMalformed, err)
			}
		}
	}
	for k := 1; k < len(s.names); k++ {
		if s.required&(1<<k) != 0 && present&(1<<k) == 0 {
			return s.err(int64(k), ErrMalformed, errMissing)
		}
	}
	return nil
}

// kindOf returns the package sentinel err matches, or ErrMalformed.
func kindOf(err error) error {
	for _, k := range []error{ErrUnknownCritical, ErrTooLarge, ErrVersion, ErrAlgorithm, ErrMalformed} {
		if errs.Is(err, k) {
			return k
		}
	}
	return ErrMalformed
}

// readFixed reads a byte string of exactly len(dst) bytes into dst.
func readFixed(d *cbor.Decoder, dst []byte) error {
	b, err := d.Bytes()
	if err != nil {
		return err
	}
	if len(b) != len(dst) {
		return errSize
	}
	copy(dst, b)
	return nil
}

// readText reads a text string of min..max bytes.
func readText(d *cbor.Decoder, min, max int) ([]byte, error) {
	b, err := d.Text()
	if err != nil {
		return nil, err
	}
	if len(b) < min || len(b) > max {
		return nil, errSize
	}
	return b, nil
}

// readUint reads an unsigned integer in [min, max].
func readUint(d *cbor.Decoder, min, max uint64) (uint64, error) {
	v, err := d.Uint()
	if err != nil {
		return 0, err
	}
	if v < min || v > max {
		return 0, errRange
	}
	return v, nil
}

// readFormat reads the format field, which must be 1.
func readFormat(d *cbor.Decoder) error {
	v, err := d.Uint()
	if err != nil {
		return err
	}
	if v != 1 {
		return ErrVersion
	}
	return nil
}
