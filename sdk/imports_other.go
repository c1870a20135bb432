//go:build !wasip1

package sdk

import "unsafe"

// Outside wasip1 there is no SBM: every host function fails with
// CodeNotOnDevice.

const notOnDevice = -int32(CodeNotOnDevice)

func sbmBootInfo(unsafe.Pointer, uint32) int32                        { return notOnDevice }
func sbmCertChain(unsafe.Pointer, uint32) int32                       { return notOnDevice }
func sbmVerifyChain(unsafe.Pointer, uint32, int64) int32              { return notOnDevice }
func sbmSign(unsafe.Pointer, unsafe.Pointer, uint32) int32            { return notOnDevice }
func sbmAttest(unsafe.Pointer, uint32, unsafe.Pointer, uint32) int32  { return notOnDevice }
func sbmStagingSize() int32                                           { return notOnDevice }
func sbmStagingErase() int32                                          { return notOnDevice }
func sbmStagingWrite(uint32, unsafe.Pointer, uint32) int32            { return notOnDevice }
func sbmStagingRead(uint32, unsafe.Pointer, uint32) int32             { return notOnDevice }
func sbmRequestUpdate() int32                                         { return notOnDevice }
func sbmRequestRecovery() int32                                       { return notOnDevice }
func sbmFetchOpen(unsafe.Pointer, uint32) int32                       { return notOnDevice }
func sbmFetchRead(uint32, unsafe.Pointer, uint32) int32               { return notOnDevice }
func sbmFetchClose(uint32) int32                                      { return notOnDevice }
func sbmTLSSign(unsafe.Pointer, uint32, unsafe.Pointer, uint32) int32 { return notOnDevice }
func sbmReport(unsafe.Pointer, uint32, unsafe.Pointer, uint32) int32  { return notOnDevice }
func sbmFetchPost(unsafe.Pointer, uint32, unsafe.Pointer, uint32, unsafe.Pointer, uint32) int32 {
	return notOnDevice
}
