//go:build wasip1

// Command updater is an application that updates itself: it prints the
// boot information (including the result of the last update) and then
// serves line commands on the UART, so that a person or a demo script can
// drive it:
//
//	info               print the boot information
//	attest HEX         print "token HEX": an attestation token for the nonce
//	sign HEX           print "signature HEX" over a 32-byte SHA-256 digest
//	chain              fetch the device certificate chain and verify it
//	                   against the device's trust anchors
//	update URL [UPK]   download the package at URL (http, local host; or
//	                   https, the configured service, with mTLS) into the
//	                   staging slot and request the update; the device
//	                   resets and the SBM installs it. With UPK, the URL of
//	                   this device's UPK, the package's UPK records are
//	                   replaced by that one as it streams into staging
//	poll BASE          one round of the hawkBit DDI protocol with the
//	                   service at BASE: install an offered deployment, or
//	                   report it done or failed with feedback and a signed
//	                   install report (docs/spec/services.md)
//	report [HEX]       print "report HEX": an install report signed by the
//	                   SBM (optional nonce)
//	send-report URL [HEX]
//	                   post an install report to URL (same URLs as update)
//	recovery           reset into the SBM's recovery mode
//	quit               exit
//
// Every command ends with a line "ok" or "error: MESSAGE". The program
// prints "ready" when it waits for the first command. Arguments given on
// the command line (the runtime's Options.Args) run as commands first.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -ldflags "-X main.version=2.0.0" -o updater.wasm ./examples/updater
package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"
)

// version is the build's version, set with -ldflags "-X main.version=...".
var version = "dev"

// errQuit ends the command loop.
var errQuit = errors.New("quit")

func main() {
	fmt.Printf("updater: build %s\n", version)
	if err := info(nil); err != nil {
		fmt.Printf("updater: boot info: %v\n", err)
	}
	for _, cmd := range os.Args[1:] {
		if !run(cmd) {
			return
		}
	}
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if !run(in.Text()) {
			return
		}
	}
}

// run executes one command line and reports whether to go on.
func run(line string) bool {
	f := strings.Fields(line)
	if len(f) == 0 {
		return true
	}
	cmd, ok := commands[f[0]]
	if !ok {
		fmt.Printf("error: unknown command %q (info, attest, sign, chain, update, poll, report, send-report, recovery, quit)\n", f[0])
		return true
	}
	err := cmd(f[1:])
	switch {
	case errors.Is(err, errQuit):
		fmt.Println("ok")
		return false
	case err != nil:
		fmt.Printf("error: %v\n", err)
	default:
		fmt.Println("ok")
	}
	return true
}

var commands map[string]func(args []string) error

func init() {
	commands = map[string]func(args []string) error{
		"info":        info,
		"attest":      attest,
		"sign":        sign,
		"chain":       chain,
		"update":      update,
		"report":      report,
		"poll":        poll,
		"send-report": sendReport,
		"recovery":    recovery,
		"quit":        func([]string) error { return errQuit },
	}
}
