//go:build unix

package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// killHook returns the fault-injection hook of SBM_SERVER_KILL_AT
// ("STEP" or "STEP:N"): SIGKILL of this process at the Nth time (default
// the first) a certification reaches STEP.
func killHook(spec string) (func(string), error) {
	if spec == "" {
		return nil, nil
	}
	step, nth, hasN := strings.Cut(spec, ":")
	n := 1
	if hasN {
		var err error
		if n, err = strconv.Atoi(nth); err != nil || n < 1 {
			return nil, fmt.Errorf("SBM_SERVER_KILL_AT=%s: want STEP or STEP:N", spec)
		}
	}
	var mu sync.Mutex
	seen := 0
	return func(s string) {
		if s != step {
			return
		}
		mu.Lock()
		seen++
		hit := seen == n
		mu.Unlock()
		if hit {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // never returns
		}
	}, nil
}
