package image

import (
	"fmt"
	"strings"
)

// checkSemver reports whether v is a semantic version 2.0.0
// (MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]) of at most 64 bytes.
func checkSemver(v string) error {
	bad := func(why string) error {
		return fmt.Errorf("invalid version %q: %s (want semantic version like 1.2.3)", v, why)
	}
	if v == "" {
		return bad("empty")
	}
	if len(v) > 64 {
		return bad("longer than 64 bytes")
	}
	core, build, hasBuild := strings.Cut(v, "+")
	core, pre, hasPre := strings.Cut(core, "-")
	nums := strings.Split(core, ".")
	if len(nums) != 3 {
		return bad("need three numbers")
	}
	for _, n := range nums {
		if !isNum(n) {
			return bad(fmt.Sprintf("%q is not a number", n))
		}
		if len(n) > 1 && n[0] == '0' {
			return bad("leading zero")
		}
	}
	for _, part := range []struct {
		s   string
		has bool
	}{{pre, hasPre}, {build, hasBuild}} {
		if !part.has {
			continue
		}
		for _, id := range strings.Split(part.s, ".") {
			if id == "" {
				return bad("empty identifier")
			}
			for _, r := range id {
				if !(r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
					return bad(fmt.Sprintf("character %q not allowed", r))
				}
			}
		}
	}
	return nil
}

func isNum(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
