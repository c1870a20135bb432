// Package errs is the device-side packages' errors.New, errors.Is and
// errors.As without reflection. In TinyGo, errors.As checks its target
// through internal/reflectlite, and every comparison of two interface
// values (errors.Is's err == target among them) is runtime.interfaceEqual,
// which walks both values by reflection; together with the soft-float
// comparisons and type descriptors that walk needs, that is about 9 KB of
// the firmware's flash (docs/silicon.md, "Sizes"). Here a sentinel is a
// *Sentinel, so matching one is a type assertion and a pointer
// comparison, and As is generic.
//
// The errors these functions return and match are ordinary errors: on the
// host, errors.Is and errors.As work on them as before.
package errs

// A Sentinel is an error value that callers match with Is (or
// errors.Is): the device-side packages' ErrXxx variables.
type Sentinel struct{ text string }

// New returns an error with the given text, as errors.New does. Each call
// returns a distinct error; one kept in a package-level variable is a
// sentinel that Is and Same match.
func New(text string) error { return &Sentinel{text} }

// Error returns the text given to New.
func (s *Sentinel) Error() string { return s.text }

// Is reports whether an error in err's tree is the sentinel target (made
// by New), as errors.Is does: err itself, then depth first through
// Unwrap() error and Unwrap() []error; an error with an Is(error) bool
// method matches the targets it says it matches. A target that is not a
// *Sentinel never matches except through such a method: comparing
// arbitrary errors needs the interface comparison this package avoids.
func Is(err, target error) bool {
	t, _ := target.(*Sentinel)
	return walk(err, func(e error) bool {
		if s, ok := e.(*Sentinel); ok && s == t {
			return true
		}
		x, ok := e.(interface{ Is(error) bool })
		return ok && x.Is(target)
	})
}

// Same reports whether a and b are the same sentinel (made by New); it is
// a == b for sentinels, without an interface comparison.
func Same(a, b error) bool {
	x, ok := a.(*Sentinel)
	y, _ := b.(*Sentinel)
	return ok && x == y
}

// As finds the first error in err's tree that has the type T, as
// errors.As(err, &t) does: err itself, then depth first through
// Unwrap() error and Unwrap() []error. (Unlike errors.As it does not call
// As methods; no device-side error has one.)
func As[T error](err error) (T, bool) {
	var t T
	found := walk(err, func(e error) bool {
		var ok bool
		t, ok = e.(T)
		return ok
	})
	return t, found
}

// walk reports whether match is true for an error in err's tree: err
// itself, then depth first through Unwrap() error and Unwrap() []error.
func walk(err error, match func(error) bool) bool {
	for err != nil {
		if match(err) {
			return true
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if walk(e, match) {
					return true
				}
			}
			return false
		default:
			return false
		}
	}
	return false
}
