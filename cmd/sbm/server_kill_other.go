//go:build !unix

package main

import "errors"

// killHook: fault injection needs SIGKILL, which this system lacks.
func killHook(spec string) (func(string), error) {
	if spec == "" {
		return nil, nil
	}
	return nil, errors.New("SBM_SERVER_KILL_AT is supported on Unix only")
}
