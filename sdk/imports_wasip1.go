//go:build wasip1

package sdk

import "unsafe"

// The host functions of the import module "sbm" (docs/spec/services.md).

//go:wasmimport sbm boot_info
func sbmBootInfo(buf unsafe.Pointer, bufLen uint32) int32

//go:wasmimport sbm cert_chain
func sbmCertChain(buf unsafe.Pointer, bufLen uint32) int32

//go:wasmimport sbm verify_chain
func sbmVerifyChain(chain unsafe.Pointer, chainLen uint32, now int64) int32

//go:wasmimport sbm sign
func sbmSign(digest unsafe.Pointer, sig unsafe.Pointer, sigLen uint32) int32

//go:wasmimport sbm attest
func sbmAttest(nonce unsafe.Pointer, nonceLen uint32, buf unsafe.Pointer, bufLen uint32) int32

//go:wasmimport sbm staging_size
func sbmStagingSize() int32

//go:wasmimport sbm staging_erase
func sbmStagingErase() int32

//go:wasmimport sbm staging_write
func sbmStagingWrite(off uint32, p unsafe.Pointer, n uint32) int32

//go:wasmimport sbm staging_read
func sbmStagingRead(off uint32, p unsafe.Pointer, n uint32) int32

//go:wasmimport sbm request_update
func sbmRequestUpdate() int32

//go:wasmimport sbm request_recovery
func sbmRequestRecovery() int32

//go:wasmimport sbm fetch_open
func sbmFetchOpen(url unsafe.Pointer, urlLen uint32) int32

//go:wasmimport sbm fetch_read
func sbmFetchRead(handle uint32, buf unsafe.Pointer, bufLen uint32) int32

//go:wasmimport sbm fetch_close
func sbmFetchClose(handle uint32) int32

//go:wasmimport sbm tls_sign
func sbmTLSSign(th unsafe.Pointer, thLen uint32, sig unsafe.Pointer, sigLen uint32) int32

//go:wasmimport sbm report
func sbmReport(nonce unsafe.Pointer, nonceLen uint32, buf unsafe.Pointer, bufLen uint32) int32

//go:wasmimport sbm fetch_post
func sbmFetchPost(url unsafe.Pointer, urlLen uint32, body unsafe.Pointer, bodyLen uint32, ctype unsafe.Pointer, ctypeLen uint32) int32
