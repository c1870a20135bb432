// Package devicerule holds the test that enforces the device-side rules of
// docs/spec and /work/shared/design.md: the packages that will run on the
// microcontroller import only the standard library and each other, never a
// denylisted package (reflection, fmt, os, networking, goroutine machinery,
// ...), and contain no go statements or explicit panics. toolchain_test.go
// adds the firmware toolchain's limits (TinyGo 0.37, docs/silicon.md): the
// device packages type-check at language version go1.24 with a 32-bit int
// and use no standard-library API added after Go 1.24.
//
// To put a new package under the rules, add it to devicePackages in
// devicerule_test.go.
package devicerule
