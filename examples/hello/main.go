//go:build wasip1

// Command hello is the smallest application for the virtual
// microcontroller: it prints its version and the boot information, then
// answers attestation requests on the UART. Each line it receives is a
// nonce in hex (8 to 64 bytes); it answers "token HEX" (a COSE_Sign1
// attestation token a host can verify with `sbm attest verify`) or
// "error: ...". The line "quit" (or the end of input) ends the program.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -ldflags "-X main.version=1.0.0" -o hello.wasm ./examples/hello
package main

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	"github.com/sbm-project/sbm/sdk"
)

// version is the build's version, set with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	fmt.Printf("hello: hello, world (build %s)\n", version)
	info, err := sdk.BootInfo()
	if err != nil {
		fmt.Printf("hello: boot info: %v\n", err)
	} else {
		fmt.Printf("hello: application %s on SBM %s\n", info.AppVersion, info.SBMVersion)
		fmt.Printf("hello: device %s, %s, security counter %d\n", info.DeviceIDString(), info.LifecycleName(), info.SecurityCounter)
		fmt.Printf("hello: measurement %x\n", info.AppDigest)
	}
	fmt.Println("hello: send a nonce (hex) to attest, or quit")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		line := strings.TrimSpace(in.Text())
		switch {
		case line == "":
			continue
		case line == "quit":
			fmt.Println("hello: bye")
			return
		}
		nonce, err := hex.DecodeString(line)
		if err != nil {
			fmt.Printf("error: nonce: %v\n", err)
			continue
		}
		tok, err := sdk.Attest(nonce)
		if err != nil {
			fmt.Printf("error: %v\n", err)
			continue
		}
		fmt.Printf("token %x\n", tok)
	}
	fmt.Println("hello: bye")
}
