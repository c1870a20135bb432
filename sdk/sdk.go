package sdk

import (
	"encoding/binary"
	"io"
	"runtime"
	"time"
	"unsafe"
)

// ptr returns the address of b's first byte (nil for an empty b) for a
// host call; the caller keeps b alive until the call returns.
func ptr(b []byte) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(b)) }

// maxResult bounds a variable-size result.
const maxResult = 1 << 20

// fill calls f with a buffer of size bytes; if the host answers that it
// needs more (the buffer-too-small protocol), it retries once with that
// size. It returns the result bytes.
func fill(op string, size int, f func(b []byte) int32) ([]byte, error) {
	for try := 0; try < 2; try++ {
		b := make([]byte, size)
		r := f(b)
		runtime.KeepAlive(b)
		if err := check(op, r); err != nil {
			return nil, err
		}
		if int(r) <= len(b) {
			return b[:r], nil
		}
		if r > maxResult {
			break
		}
		size = int(r)
	}
	return nil, &Error{Op: op, Code: CodeTooLarge}
}

// BootInfo returns the device and boot information. It works even when
// the SBM offers no other service (Info.ServicesAvailable false).
func BootInfo() (Info, error) {
	b, err := fill("boot_info", 1024, func(b []byte) int32 { return sbmBootInfo(ptr(b), uint32(len(b))) })
	if err != nil {
		return Info{}, err
	}
	return ParseInfo(b)
}

// CertificateChain returns the device certificate chain, DER
// certificates, leaf (the device certificate) first.
func CertificateChain() ([][]byte, error) {
	b, err := fill("cert_chain", 4096, func(b []byte) int32 { return sbmCertChain(ptr(b), uint32(len(b))) })
	if err != nil {
		return nil, err
	}
	return ParseChain(b)
}

// ParseChain splits the chain encoding of the services (each DER
// certificate prefixed by its 2-byte big-endian length).
func ParseChain(b []byte) ([][]byte, error) {
	var certs [][]byte
	for len(b) > 0 {
		if len(b) < 2 {
			return nil, &Error{Op: "cert_chain", Code: CodeMalformed}
		}
		n := int(binary.BigEndian.Uint16(b))
		if n == 0 || len(b) < 2+n {
			return nil, &Error{Op: "cert_chain", Code: CodeMalformed}
		}
		certs = append(certs, b[2:2+n:2+n])
		b = b[2+n:]
	}
	return certs, nil
}

// AppendChain appends the chain encoding of certs to dst.
func AppendChain(dst []byte, certs [][]byte) ([]byte, error) {
	for _, c := range certs {
		if len(c) == 0 || len(c) > 0xffff {
			return nil, &Error{Op: "verify_chain", Code: CodeBadArgument}
		}
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(c)))
		dst = append(dst, c...)
	}
	return dst, nil
}

// VerifyChain checks a certificate chain (DER, leaf first) against the
// device's provisioned trust anchors, at the device's time floor: the last
// certificate must be signed by the root key, each other one by the next.
func VerifyChain(certs [][]byte) error { return verifyChain(certs, 0) }

// VerifyChainAt is VerifyChain at time t.
func VerifyChainAt(certs [][]byte, t time.Time) error {
	s := t.Unix()
	if s <= 0 {
		return &Error{Op: "verify_chain", Code: CodeBadArgument}
	}
	return verifyChain(certs, s)
}

func verifyChain(certs [][]byte, now int64) error {
	b, err := AppendChain(nil, certs)
	if err != nil {
		return err
	}
	r := sbmVerifyChain(ptr(b), uint32(len(b)), now)
	runtime.KeepAlive(b)
	return check("verify_chain", r)
}

// Sign signs a SHA-256 digest with the device identity key (the key in
// the device certificate; it never leaves the SBM), the 32 bytes being the
// signed message: ES256 (ECDSA P-256 over SHA-256(digest)) as 64-byte
// r‖s, or Ed25519 over the 32 bytes. A verifier checks it as a standard
// signature over the 32-byte message.
func Sign(digest [32]byte) ([]byte, error) {
	return fill("sign", 128, func(b []byte) int32 {
		r := sbmSign(unsafe.Pointer(&digest), ptr(b), uint32(len(b)))
		runtime.KeepAlive(&digest)
		return r
	})
}

// Attest returns an attestation token for nonce (8 to 64 bytes): a
// COSE_Sign1 over claims binding the nonce, the device ID, the lifecycle
// and the SBM and application measurements, signed by the device identity
// key (docs/spec/attestation.md).
func Attest(nonce []byte) ([]byte, error) {
	return fill("attest", 2048, func(b []byte) int32 {
		r := sbmAttest(ptr(nonce), uint32(len(nonce)), ptr(b), uint32(len(b)))
		runtime.KeepAlive(nonce)
		return r
	})
}

// TLSSign signs the TLS 1.3 client CertificateVerify of a handshake with
// the device identity key: the SBM signs 64 × 0x20 ‖ "TLS 1.3, client
// CertificateVerify" ‖ 0x00 ‖ transcriptHash (RFC 8446 §4.4.3), so the
// application supplies only the transcript hash (32 bytes for SHA-256
// suites, 48 for SHA-384). The 64-byte result is ECDSA r‖s
// (ecdsa_secp256r1_sha256; TLS carries it DER-encoded) or Ed25519. It
// signs nothing else: no attestation token, report or data of the
// application's choosing can come out of it.
func TLSSign(transcriptHash []byte) ([]byte, error) {
	if n := len(transcriptHash); n != 32 && n != 48 {
		return nil, &Error{Op: "tls_sign", Code: CodeBadArgument}
	}
	return fill("tls_sign", 128, func(b []byte) int32 {
		r := sbmTLSSign(ptr(transcriptHash), uint32(len(transcriptHash)), ptr(b), uint32(len(b)))
		runtime.KeepAlive(transcriptHash)
		return r
	})
}

// Report returns an install report signed by the device (a COSE_Sign1,
// docs/spec/report.md): the device ID, a sequence number that never
// repeats, the boots since power-on, the last update's result and the
// manifest digest of the package it is about, the running application —
// all filled in by the SBM — and nonce (empty, or 8 to 64 bytes, e.g. the
// server's challenge).
func Report(nonce []byte) ([]byte, error) {
	return fill("report", 1024, func(b []byte) int32 {
		r := sbmReport(ptr(nonce), uint32(len(nonce)), ptr(b), uint32(len(b)))
		runtime.KeepAlive(nonce)
		return r
	})
}

// RequestUpdate asks the SBM to install the package in the staging slot:
// it records the request and resets the device. It returns only on error.
// After the reset BootInfo's LastUpdate tells the outcome.
func RequestUpdate() error { return check("request_update", sbmRequestUpdate()) }

// RequestRecovery resets the device into the SBM's recovery mode (the
// connection protocol on the UART). It returns only on error.
func RequestRecovery() error { return check("request_recovery", sbmRequestRecovery()) }

var _ io.WriterAt = StagingSlot{}
var _ io.ReaderAt = StagingSlot{}
