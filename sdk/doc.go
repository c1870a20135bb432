// Package sdk is the guest side of the SBM's runtime services: the Go API
// an application built with GOOS=wasip1 GOARCH=wasm uses to reach the
// Secure Boot Manager from inside the virtual microcontroller (package
// apphost runs it). The functions wrap the host functions of the import
// module "sbm", specified in docs/spec/services.md.
//
// The application's console is the UART: os.Stdout and os.Stderr write to
// it and os.Stdin reads from it.
//
// Outside wasip1 (a host build) every call returns an error that matches
// ErrNotOnDevice, so packages importing sdk still build and vet on the
// host.
package sdk
