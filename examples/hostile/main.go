//go:build wasip1

// Command hostile is a misbehaving application for tests: it calls every
// runtime service with pointers outside its memory, huge and negative
// lengths, offsets past the staging slot, forbidden URLs and bad handles,
// and prints one line per call:
//
//	bad NAME RESULT     a call that must fail (RESULT < 0)
//	good NAME RESULT    a well-formed call, for comparison
//
// and finally "hostile: done N". An optional argument is an allowed URL
// (served by the test) used to exhaust the fetch handles.
package main

import (
	"fmt"
	"os"
	"unsafe"
)

var bad, good int

func expectBad(name string, r int32) {
	bad++
	fmt.Printf("bad %s %d\n", name, r)
}

func expectGood(name string, r int32) {
	good++
	fmt.Printf("good %s %d\n", name, r)
}

// addr is the address of b's first byte in the module's memory.
func addr(b []byte) uint32 { return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b)))) }

const (
	top  = 0xFFFFFFFF // the last address of a 32-bit space
	huge = 0x7FFFFFFF
	neg1 = 0xFFFFFFFF // -1 as an unsigned 32-bit value
)

func main() {
	buf := make([]byte, 4096)
	b := addr(buf)
	str := func(s string) (uint32, uint32) {
		p := []byte(s)
		keep = append(keep, p)
		return addr(p), uint32(len(p))
	}

	expectBad("boot_info/ptr-out", bootInfo(top-8, 1024))
	expectBad("boot_info/len-huge", bootInfo(b, huge))
	expectBad("boot_info/len-neg", bootInfo(b, neg1))
	expectGood("boot_info/tiny-buffer", bootInfo(b, 1)) // returns the length needed

	expectBad("cert_chain/ptr-out", certChain(top, 16))
	expectBad("cert_chain/len-huge", certChain(b, huge))

	expectBad("verify_chain/ptr-out", verifyChain(top-100, 200, 0))
	expectBad("verify_chain/len-huge", verifyChain(b, huge, 0))
	expectBad("verify_chain/empty", verifyChain(b, 0, 0))
	expectBad("verify_chain/now-neg", verifyChain(b, 100, -1))
	expectBad("verify_chain/garbage", verifyChain(b, 100, 0))

	expectBad("sign/digest-out", sign(top-16, b, 128))
	expectBad("sign/sig-out", sign(b, top-10, 128))
	expectBad("sign/sig-len-huge", sign(b, b, huge))

	expectBad("attest/nonce-out", attest(top-4, 16, b, 2048))
	expectBad("attest/nonce-short", attest(b, 4, b+64, 2048))
	expectBad("attest/nonce-long", attest(b, 65, b+128, 2048))
	expectBad("attest/nonce-neg", attest(b, neg1, b+128, 2048))
	expectBad("attest/buf-out", attest(b, 16, top-100, 2048))

	expectBad("tls_sign/th-out", tlsSign(top-16, 32, b, 128))
	expectBad("tls_sign/sig-out", tlsSign(b, 32, top-10, 128))
	expectBad("tls_sign/len-huge", tlsSign(b, huge, b, 128))
	expectBad("tls_sign/th-short", tlsSign(b, 31, b+64, 128))
	expectBad("tls_sign/th-long", tlsSign(b, 49, b+64, 128))
	expectBad("tls_sign/th-digest-size-64", tlsSign(b, 64, b+128, 128))

	expectBad("report/nonce-out", report(top-4, 16, b, 2048))
	expectBad("report/nonce-short", report(b, 4, b+64, 2048))
	expectBad("report/nonce-long", report(b, 65, b+128, 2048))
	expectBad("report/nonce-neg", report(b, neg1, b+128, 2048))
	expectBad("report/buf-out", report(b, 16, top-100, 2048))

	size := stagingSize()
	expectGood("staging_size", size)
	s := uint32(size)
	expectBad("staging_write/ptr-out", stagingWrite(0, top-4, 16))
	expectBad("staging_write/len-huge", stagingWrite(0, b, huge))
	expectBad("staging_write/off-past-end", stagingWrite(s, b, 16))
	expectBad("staging_write/straddles-end", stagingWrite(s-8, b, 16))
	expectBad("staging_write/off-neg", stagingWrite(neg1, b, 16))
	expectBad("staging_write/off-wraps", stagingWrite(0xFFFFFFF0, b, 32))
	expectBad("staging_read/ptr-out", stagingRead(0, top-4, 16))
	expectBad("staging_read/len-huge", stagingRead(0, b, huge))
	expectBad("staging_read/off-past-end", stagingRead(s, b, 16))
	expectBad("staging_read/off-wraps", stagingRead(0xFFFFFFF0, b, 32))

	expectBad("fetch_open/ptr-out", fetchOpen(top-3, 20))
	expectBad("fetch_open/len-huge", fetchOpen(b, huge))
	expectBad("fetch_open/empty", fetchOpen(b, 0))
	for _, u := range []string{
		"http://example.com/pkg", "https://127.0.0.1/pkg", "file:///etc/passwd",
		"http://user:pw@127.0.0.1/pkg", "http://127.0.0.2/pkg", "http://[::ffff:127.0.0.1]/",
		"gopher://localhost/", "http://localhost.evil.example/",
	} {
		p, n := str(u)
		expectBad("fetch_open/denied "+u, fetchOpen(p, n))
	}
	ct, ctn := str("application/cose")
	pu, pn := str("http://127.0.0.1:1/reports")
	expectBad("fetch_post/ptr-out", fetchPost(top-3, 20, b, 16, ct, ctn))
	expectBad("fetch_post/body-out", fetchPost(pu, pn, top-4, 16, ct, ctn))
	expectBad("fetch_post/type-out", fetchPost(pu, pn, b, 16, top-2, 16))
	expectBad("fetch_post/body-oversize", fetchPost(pu, pn, b, 64<<10+1, ct, ctn))
	expectBad("fetch_post/type-empty", fetchPost(pu, pn, b, 16, ct, 0))
	cc, ccn := str("text/plain\r\nX-Injected: 1")
	expectBad("fetch_post/type-ctl", fetchPost(pu, pn, b, 16, cc, ccn))
	du, dn := str("https://example.com/reports")
	expectBad("fetch_post/denied https://example.com/reports", fetchPost(du, dn, b, 16, ct, ctn))
	expectBad("fetch_post/refused", fetchPost(pu, pn, b, 16, ct, ctn))

	p, n := str("http://127.0.0.1:1/refused")
	expectBad("fetch_open/refused", fetchOpen(p, n))
	expectBad("fetch_read/bad-handle", fetchRead(99, b, 16))
	expectBad("fetch_read/neg-handle", fetchRead(neg1, b, 16))
	expectBad("fetch_read/closed-handle", fetchRead(0, b, 16))
	expectBad("fetch_close/bad-handle", fetchClose(7))
	expectBad("fetch_close/neg-handle", fetchClose(neg1))

	if len(os.Args) > 1 {
		p, n := str(os.Args[1])
		var hs []int32
		for range 4 {
			h := fetchOpen(p, n)
			expectGood("fetch_open/allowed", h)
			hs = append(hs, h)
		}
		expectBad("fetch_open/too-many", fetchOpen(p, n))
		expectBad("fetch_read/buf-out", fetchRead(uint32(hs[0]), top-8, 4096))
		for _, h := range hs {
			expectGood("fetch_close", fetchClose(uint32(h)))
		}
		expectBad("fetch_close/twice", fetchClose(uint32(hs[0])))
	}
	fmt.Printf("hostile: done %d bad %d good\n", bad, good)
}

// keep keeps strings passed to the host alive.
var keep [][]byte

//go:wasmimport sbm boot_info
func bootInfo(buf, n uint32) int32

//go:wasmimport sbm cert_chain
func certChain(buf, n uint32) int32

//go:wasmimport sbm verify_chain
func verifyChain(chain, n uint32, now int64) int32

//go:wasmimport sbm sign
func sign(digest, sig, n uint32) int32

//go:wasmimport sbm attest
func attest(nonce, nonceLen, buf, n uint32) int32

//go:wasmimport sbm tls_sign
func tlsSign(th, thLen, sig, n uint32) int32

//go:wasmimport sbm report
func report(nonce, nonceLen, buf, n uint32) int32

//go:wasmimport sbm fetch_post
func fetchPost(url, urlLen, body, bodyLen, ctype, ctypeLen uint32) int32

//go:wasmimport sbm staging_size
func stagingSize() int32

//go:wasmimport sbm staging_write
func stagingWrite(off, p, n uint32) int32

//go:wasmimport sbm staging_read
func stagingRead(off, p, n uint32) int32

//go:wasmimport sbm fetch_open
func fetchOpen(url, n uint32) int32

//go:wasmimport sbm fetch_read
func fetchRead(h, buf, n uint32) int32

//go:wasmimport sbm fetch_close
func fetchClose(h uint32) int32
