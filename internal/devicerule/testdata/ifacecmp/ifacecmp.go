// Package ifacecmp has one of each construct the interface-comparison
// rule reports (internal/devicerule).
package ifacecmp

import "errors"

var errA = errors.New("a")

type e struct{}

func (*e) Error() string { return "e" }

func f(err error) int {
	if err != nil && err == errA {
		return 1
	}
	if errA != err {
		return 2
	}
	switch err {
	case errA:
		return 3
	}
	var target *e
	if errors.Is(err, errA) || errors.As(err, &target) {
		return 4
	}
	return 0
}

func g(d [16]byte, m [8]byte) bool {
	return d == [16]byte{} || m == [8]byte{1}
}
