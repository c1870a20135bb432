package sbm

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"

	"github.com/sbm-project/sbm/attest"
	"github.com/sbm-project/sbm/attest/report"
	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/internal/cose"
	"github.com/sbm-project/sbm/internal/secpkg"
	"github.com/sbm-project/sbm/internal/x509lite"
	"github.com/sbm-project/sbm/wire"
)

// services implements Services for the verified application of one boot.
// It lives in the machine (no allocation per call beyond what the caller's
// dst needs) and validates every argument.
type services struct {
	m   *machine
	app *AppInfo

	staging  hal.Region
	pendOff  uint32 // staging offset of the buffered partial word
	pendMask uint32 // bit i: byte i of the word is written
	pendOK   bool
	pend     [32]byte
	// lazy marks staging sectors (by index from the slot's first sector)
	// that StagingErase scheduled for erasure: each is erased just before
	// its first write, so an update erases only the sectors its package
	// uses (wear), and reads of a scheduled sector return erased bytes.
	lazy      [maxLazySectors / 8]byte
	lazyFirst int // sector index of the slot's first sector

	sbmMeasurement [32]byte
	measured       bool
	bootSeed       [32]byte
	seeded         bool
}

var _ Services = (*services)(nil)

// services returns the runtime services for app.
func (m *machine) services(app *AppInfo) *services {
	s := &m.svc
	*s = services{m: m, app: app}
	s.staging, _ = m.hw.Flash.Geometry().Region(hal.RegionStaging)
	return s
}

// BootInfo returns the device and boot information.
func (s *services) BootInfo() BootInfo {
	m := s.m
	bi := BootInfo{
		DeviceID: m.hw.ID, SBMVersion: m.version, Lifecycle: m.lifecycle(),
		SecurityCounter: m.st.counter, UpdatedThisBoot: m.updated,
	}
	if f, werr := m.counterFloor(); werr == nil {
		bi.SecurityCounter = f
	}
	if s.app != nil {
		bi.AppVersion = s.app.Version
	}
	switch {
	case m.ret.rejected(): // newer than the committed result
		bi.LastUpdate = uint8(m.ret.code)
		bi.LastUpdateDetail = m.ret.detailText()
	case m.st.hasLastUpdate:
		bi.LastUpdate = uint8(m.st.lastUpdate)
		bi.LastUpdateDetail = m.st.lastUpdateText()
	}
	return bi
}

// CertificateChain appends the device certificate and the device CA chain
// stored at provisioning.
func (s *services) CertificateChain(dst []byte) ([]byte, error) {
	st := &s.m.st
	if st.certLen == 0 {
		return dst, wire.Errorf(wire.CodeNotProvisioned, "no device certificate")
	}
	dst = binary.BigEndian.AppendUint16(dst, st.certLen)
	dst = append(dst, st.certificate()...)
	return append(dst, st.caChainBytes()...), nil
}

// VerifyChain checks chain against the provisioned root key.
func (s *services) VerifyChain(chain []byte, now uint64) error {
	if len(chain) > MaxChainSize {
		return wire.Errorf(wire.CodeTooLarge, "certificate chain too large")
	}
	var certs [MaxChainCerts][]byte
	n, ok := chainCerts(chain, certs[:])
	if !ok {
		return wire.Errorf(wire.CodeMalformed, "malformed certificate chain")
	}
	m := s.m
	if _, werr := m.deviceAnchors(); werr != nil {
		return werr
	}
	if now == 0 {
		now = m.st.timeFloor
	}
	return verifyChain(certs[:n], m.st.root(), uint8(m.st.suite), now, x509lite.UsageAny)
}

// Sign signs a SHA-256 digest with the device identity key: ES256 or
// Ed25519 with the 32 bytes as the signed message (docs/sbm.md,
// "Runtime services").
func (s *services) Sign(dst, digest []byte) ([]byte, error) {
	if len(digest) != 32 {
		return dst, wire.Errorf(wire.CodeMalformed, "digest must be 32 bytes")
	}
	keys, werr := s.m.deviceKeys()
	if werr != nil {
		return dst, werr
	}
	if keys.suite == secpkg.SuiteEd25519 {
		return append(dst, ed25519.Sign(keys.ed25519, digest)...), nil
	}
	// ES256 over the 32-byte message digest: ECDSA over SHA-256(digest),
	// as Ed25519 signs the digest as its message. Never ECDSA over the
	// caller's value directly: the attestation token's ES256 signature is
	// over SHA-256(Sig_structure), so that would let the application forge
	// tokens.
	h := sha256.Sum256(digest)
	der, err := keys.p256.SignASN1(s.m.hw.RNG, h[:])
	if err != nil {
		return dst, wire.Errorf(wire.CodeInternal, "signing failed")
	}
	var raw [64]byte
	if !derToRaw(der, &raw) {
		return dst, wire.Errorf(wire.CodeInternal, "signing failed")
	}
	cose.NormalizeLowS(raw[:]) // the one encoding verifiers accept (spec §2)
	return append(dst, raw[:]...), nil
}

// tlsClientContext is the context string of a TLS 1.3 client
// CertificateVerify (RFC 8446 §4.4.3), with its 0x00 separator.
const tlsClientContext = "TLS 1.3, client CertificateVerify\x00"

// tlsPadding is the 64 spaces that start every TLS 1.3 CertificateVerify
// content.
const tlsPadding = "                                                                "

// TLSSign signs the TLS 1.3 client CertificateVerify content of the
// transcript hash th. The SBM builds the whole content, so the caller
// chooses only the last 32 or 48 bytes of a message that starts with 64
// spaces: no other message the device signs (attestation tokens and
// install reports, which sign a Sig_structure starting 0x84 "Signature1";
// Sign's 32-byte messages; the CSR, DER starting 0x30) has that form
// (docs/spec/services.md, "tls_sign").
func (s *services) TLSSign(dst, th []byte) ([]byte, error) {
	if len(th) != 32 && len(th) != 48 {
		return dst, wire.Errorf(wire.CodeMalformed, "transcript hash must be 32 or 48 bytes")
	}
	keys, werr := s.m.deviceKeys()
	if werr != nil {
		return dst, werr
	}
	var buf [len(tlsPadding) + len(tlsClientContext) + 48]byte
	n := copy(buf[:], tlsPadding)
	n += copy(buf[n:], tlsClientContext)
	n += copy(buf[n:], th)
	content := buf[:n]
	if keys.suite == secpkg.SuiteEd25519 {
		return append(dst, ed25519.Sign(keys.ed25519, content)...), nil
	}
	h := sha256.Sum256(content) // ecdsa_secp256r1_sha256
	der, err := keys.p256.SignASN1(s.m.hw.RNG, h[:])
	if err != nil {
		return dst, wire.Errorf(wire.CodeInternal, "signing failed")
	}
	var raw [64]byte
	if !derToRaw(der, &raw) {
		return dst, wire.Errorf(wire.CodeInternal, "signing failed")
	}
	return append(dst, raw[:]...), nil
}

// Report appends an install report with the caller's nonce. Every fact
// comes from the SBM's state; the application chooses only the nonce.
func (s *services) Report(dst, nonce []byte) ([]byte, error) {
	if len(nonce) != 0 && (len(nonce) < report.MinNonceSize || len(nonce) > report.MaxNonceSize) {
		return dst, wire.Errorf(wire.CodeMalformed, "nonce must be empty or 8 to 64 bytes")
	}
	m := s.m
	keys, werr := m.deviceKeys()
	if werr != nil {
		return dst, werr
	}
	seq, werr := m.nextReportSequence()
	if werr != nil {
		return dst, werr
	}
	r := report.Report{DeviceID: m.hw.ID[:], Sequence: seq, Boots: m.ret.boots, Updated: m.updated, Nonce: nonce}
	switch st := &m.st; {
	case m.ret.rejected(): // newer than the committed result
		r.HasResult, r.Result, r.Detail = true, uint8(m.ret.code), m.ret.detailText()
		if m.ret.flags&flagPackage != 0 {
			r.HasPackage, r.Package = true, m.ret.pkg
		}
	case st.hasLastUpdate:
		r.HasResult, r.Result, r.Detail = true, uint8(st.lastUpdate), st.lastUpdateText()
		if st.lastUpdate == 0 && st.app.present {
			r.HasPackage, r.Package = true, st.app.manifestDigest
		}
	}
	if a := s.app; a != nil && a.Version != "" {
		r.HasApp = true
		r.App = report.App{ManifestDigest: a.ManifestDigest, Measurement: a.Digest,
			Version: a.Version, SecurityCounter: a.SecurityCounter}
	}
	out, err := report.Append(dst, &r, keys.signer(), m.st.suite.Alg())
	if err != nil {
		return dst, wire.Errorf(wire.CodeInternal, "report failed")
	}
	return out, nil
}

// nextReportSequence returns the next report sequence number: the report
// epoch in the high 32 bits, the count of reports in the epoch in the low
// ones. The epoch is opened by the first report after power-on (or after
// 2^32 reports): one secure-storage commit, whose record sequence number
// (higher than any earlier record's) becomes the epoch; the count lives in
// retained RAM. So reports cost at most one commit per power-on, whatever
// the application does (it cannot cut the power), and a sequence number
// is never issued twice unless secure storage itself is rolled back
// (docs/spec/report.md, "Sequence").
func (m *machine) nextReportSequence() (uint64, *wire.Error) {
	r := &m.ret
	if r.flags&flagEpoch == 0 || r.reports == ^uint32(0) {
		if !m.st.provisioned {
			return 0, wire.Errorf(wire.CodeNotProvisioned, "not provisioned")
		}
		if m.commit() != nil {
			return 0, wire.Errorf(wire.CodeFlash, "secure storage write failed")
		}
		r.flags |= flagEpoch
		r.epoch, r.reports = m.st.seq, 0
	}
	seq := uint64(r.epoch)<<32 | uint64(r.reports)
	r.reports++
	m.writeRetained()
	return seq, nil
}

// Attest appends an attestation token for nonce.
func (s *services) Attest(dst, nonce []byte) ([]byte, error) {
	if len(nonce) < attest.MinNonceSize || len(nonce) > attest.MaxNonceSize {
		return dst, wire.Errorf(wire.CodeMalformed, "nonce must be 8 to 64 bytes")
	}
	m := s.m
	keys, werr := m.deviceKeys()
	if werr != nil {
		return dst, werr
	}
	if !s.measured {
		sum, err := Measurement(m.hw.Flash)
		if err != nil {
			return dst, wire.Errorf(wire.CodeFlash, "cannot measure the sbm")
		}
		s.sbmMeasurement, s.measured = sum, true
	}
	if !s.seeded {
		if m.hw.RNG == nil || readFull(m.hw.RNG, s.bootSeed[:]) != nil {
			return dst, wire.Errorf(wire.CodeInternal, "no random source")
		}
		s.seeded = true
	}
	c := attest.Claims{
		Nonce: nonce, DeviceID: m.hw.ID[:], Lifecycle: m.lifecycle(), BootSeed: s.bootSeed[:],
		SBM: attest.Component{Type: attest.TypeSBM, Measurement: s.sbmMeasurement, Version: m.version},
	}
	if a := s.app; a != nil {
		c.HasApp = true
		c.App = attest.Component{Type: attest.TypeApp, Measurement: a.Digest, Version: a.Version,
			SecurityCounter: a.SecurityCounter, HasCounter: true,
			SignerID: m.st.app.signer, HasSigner: m.st.app.hasSigner}
	}
	signer := keys.signer()
	tok, err := attest.Append(dst, &c, signer, m.st.suite.Alg())
	if err != nil {
		return dst, wire.Errorf(wire.CodeInternal, "attestation failed")
	}
	return tok, nil
}

// RequestUpdate records the update request in RAM and resets.
func (s *services) RequestUpdate() error {
	m := s.m
	if werr := s.flush(); werr != nil {
		return werr
	}
	if !m.st.provisioned {
		return wire.Errorf(wire.CodeNotProvisioned, "not provisioned")
	}
	// A staging slot erased (lazily) but never written must not present
	// the package that was there before: erase its first sector, which
	// holds the container header. (Stale bytes elsewhere cannot matter: a
	// package is authenticated chunk by chunk.)
	if werr := s.eraseScheduled(0, 1); werr != nil {
		return werr
	}
	// The request is kept in RAM, which survives the reset: no flash is
	// written unless the staged package turns out genuine.
	m.ret.flags |= flagUpdateReq
	m.writeRetained()
	m.log("sbm: update requested; resetting")
	m.hw.System.Reset()
	return wire.Errorf(wire.CodeInternal, "reset failed")
}

// RequestRecovery sets the recovery flag in RAM and resets.
func (s *services) RequestRecovery() {
	s.m.setRecoveryFlag()
	s.m.log("sbm: recovery requested; resetting")
	s.m.hw.System.Reset()
}
