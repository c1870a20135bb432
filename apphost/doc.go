// Package apphost runs a device's verified application: the WebAssembly
// module in the primary slot, executed with wazero under WASI preview 1
// (so a Go program built with GOOS=wasip1 GOARCH=wasm runs unchanged).
//
// The bytes the SBM verified are the bytes that run: when the flash
// implements hal.Mapper, Run compiles the module straight from the flash
// array (an execute-in-place view), after hashing that very slice and
// comparing it with the application measurement the SBM verified (and again
// after compiling). The application's stdin, stdout and stderr are the
// device UART.
//
// The application reaches the SBM only through the host functions of the
// import module "sbm" — the runtime services, whose ABI is specified in
// docs/spec/services.md. Every host function checks every pointer and
// length against the module's memory and every value against its range,
// and answers a negative error code instead of trusting them: a
// misbehaving application cannot crash the host or reach SBM memory.
//
// The guest side of the ABI is package sdk; examples/ holds applications.
package apphost
