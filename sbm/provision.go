package sbm

import (
	"bytes"
	"crypto/sha256"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/internal/secpkg"
	"github.com/sbm-project/sbm/sbm/mailbox"
	"github.com/sbm-project/sbm/wire"
)

// mailboxBuf holds one mailbox frame.
type mailboxBuf [mailbox.HeaderSize + mailbox.MaxBody]byte

// serveMailbox handles a provisioning request left in RAM, if any, and
// replaces it with the response. It does nothing once the debug port is
// locked: then no provisioning tool can be talking to the device.
func (m *machine) serveMailbox() {
	if m.locks&hal.LockDebug != 0 {
		return
	}
	ram := m.hw.RAM
	if ram == nil || ram.Size() < mailbox.Offset+mailbox.HeaderSize {
		return
	}
	buf := &m.scratch.mailbox
	if ram.Read(mailbox.Offset, buf[:mailbox.HeaderSize]) != nil {
		return
	}
	n, err := mailbox.ParseHeader(buf[:mailbox.HeaderSize], mailbox.MagicRequest)
	if err != nil && err != mailbox.ErrTooLarge {
		return // no request
	}
	resp := mailbox.Response{Code: uint8(wire.CodeMalformed), Detail: "malformed mailbox request"}
	if err == nil && ram.Size() >= mailbox.Offset+uint32(mailbox.HeaderSize+n) &&
		ram.Read(mailbox.Offset, buf[:mailbox.HeaderSize+n]) == nil {
		if body, err := mailbox.Unframe(buf[:mailbox.HeaderSize+n], mailbox.MagicRequest); err == nil {
			if req, err := mailbox.DecodeRequest(body); err == nil {
				resp = mailbox.Response{Op: req.Op}
				var werr *wire.Error
				switch req.Op {
				case mailbox.OpProvision:
					werr = m.provision(&req, &resp)
				case mailbox.OpInstallCertificate:
					werr = m.installCertificate(req.Certificate, req.CAChain)
				}
				if werr != nil {
					resp = mailbox.Response{Op: req.Op, Code: uint8(werr.Code), Detail: werr.Detail}
					m.log("sbm: provisioning: ", werr.Error())
				}
			}
		}
	}
	// The request body may alias buf: encode the response separately.
	var out [1024]byte
	body := mailbox.EncodeResponse(out[:0], &resp)
	frame, err := mailbox.Frame(buf[:0], mailbox.MagicResponse, body)
	if err != nil {
		return
	}
	ram.Write(mailbox.Offset, frame)
}

// provision performs OpProvision: check the anchors against the fuses,
// enrol the PUF, derive the keys, write the state and answer with a CSR.
// On failure nothing is stored.
func (m *machine) provision(req *mailbox.Request, resp *mailbox.Response) *wire.Error {
	st := &m.st
	if st.provisioned && st.certLen > 0 {
		return wire.Errorf(wire.CodeState, "already provisioned")
	}
	suite := secpkg.Suite(req.Suite)
	if len(req.RootKey) != suite.PublicKeySize() {
		return wire.Errorf(wire.CodeMalformed, "root key size does not match the suite")
	}
	fuseHash, err := hal.ReadRootKeyHash(m.hw.Fuses)
	if err != nil {
		return wire.Errorf(wire.CodeInternal, "cannot read fuses")
	}
	if fuseHash == ([32]byte{}) {
		return wire.Errorf(wire.CodeNotProvisioned, "no root key hash in fuses")
	}
	if sha256.Sum256(req.RootKey) != fuseHash {
		return wire.Errorf(wire.CodeSignature, "root key does not match the fuses")
	}
	if len(req.ImageKeyCert) > secpkg.MaxKeyCertSize || len(req.UpdateKeyCert) > secpkg.MaxKeyCertSize {
		return wire.Errorf(wire.CodeTooLarge, "key certificate too large")
	}
	a := secpkg.Anchors{Suite: suite, RootKey: req.RootKey, VendorID: req.VendorID, ClassID: req.ClassID}
	if err := a.TrustKeyCert(req.ImageKeyCert, secpkg.RoleImageSigning); err != nil {
		return wire.Errorf(codeOf(err), "image-signing key certificate: "+errText(err))
	}
	if err := a.TrustKeyCert(req.UpdateKeyCert, secpkg.RoleUpdateAuthority); err != nil {
		return wire.Errorf(codeOf(err), "update-authority key certificate: "+errText(err))
	}
	if req.ClassKey != nil {
		if len(req.ClassKey) != 32 {
			return wire.Errorf(wire.CodeMalformed, "class key must be 32 bytes")
		}
		if _, err := classKey(suite, req.ClassKey); err != nil {
			return wire.Errorf(wire.CodeMalformed, "invalid class key")
		}
	}
	var helper [hal.PUFHelperSize]byte
	pufKey, err := hal.EnrollPUF(m.hw.PUF, m.hw.RNG, &helper)
	if err != nil {
		return wire.Errorf(wire.CodeInternal, "puf enrolment failed")
	}
	keys, err := deriveKeys(suite, &pufKey)
	clear(pufKey[:])
	if err != nil {
		return wire.Errorf(wire.CodeInternal, "key derivation failed")
	}
	csr, err := buildCSR(keys, m.hw.ID[:], m.hw.RNG)
	if err != nil {
		return wire.Errorf(wire.CodeInternal, "cannot sign the csr")
	}

	// The new state: a fresh record, keeping only the commit sequence.
	seq := st.seq
	*st = state{seq: seq, provisioned: true, suite: suite}
	st.rootKeyLen = uint8(copy(st.rootKey[:], req.RootKey))
	st.vendorID, st.classID = req.VendorID, req.ClassID
	st.imageCertLen = uint16(copy(st.imageKeyCert[:], req.ImageKeyCert))
	st.updateCertLen = uint16(copy(st.updateKeyCert[:], req.UpdateKeyCert))
	if req.ClassKey != nil {
		st.hasClassKey = true
		copy(st.classKey[:], req.ClassKey)
	}
	st.helper = helper
	st.counter = req.SecurityCounter
	st.timeFloor = req.Time
	if err := m.commit(); err != nil {
		return wire.Errorf(wire.CodeFlash, "secure storage write failed")
	}
	m.keys = keys
	m.anchorsOK = false
	resp.DeviceID = m.hw.ID[:]
	resp.CSR = csr
	resp.KeyAgreement = keys.ka.PublicKey().Bytes()
	m.log("sbm: provisioned: keys derived, csr issued")
	return nil
}

// installCertificate performs OpInstallCertificate: the certificate must
// carry this device's identity public key; the optional CA chain must be a
// well-formed chain of at most MaxChainCerts-1 certificates. Together they
// must leave room in a secure-storage record for every later commit.
func (m *machine) installCertificate(der, caChain []byte) *wire.Error {
	st := &m.st
	if !st.provisioned {
		return wire.Errorf(wire.CodeNotProvisioned, "not provisioned")
	}
	if len(der) == 0 || len(der) > MaxCertificateSize {
		return wire.Errorf(wire.CodeTooLarge, "certificate size out of range")
	}
	keys, werr := m.deviceKeys()
	if werr != nil {
		return werr
	}
	if !bytes.Contains(der, keys.identity) {
		return wire.Errorf(wire.CodeNotRecipient, "certificate is not for this device's identity key")
	}
	if len(caChain) > MaxCAChainSize {
		return wire.Errorf(wire.CodeTooLarge, "ca chain too large")
	}
	var certs [MaxChainCerts][]byte
	certs[0] = der
	n, ok := chainCerts(caChain, certs[1:])
	if caChain != nil && !ok {
		return wire.Errorf(wire.CodeMalformed, "malformed ca chain")
	}
	if caChain != nil {
		// The chain must be the device certificate's: leaf to root key
		// (validity is not checked: the device has no clock yet).
		if err := verifyChain(certs[:1+n], st.root(), uint8(st.suite), 0); err != nil {
			werr, _ := err.(*wire.Error)
			return wire.Errorf(werr.Code, "ca chain: "+werr.Detail)
		}
	}
	oldCert, oldChain := st.certLen, st.caChainLen
	st.certLen = uint16(copy(st.cert[:], der))
	st.caChainLen = uint16(copy(st.caChain[:], caChain))
	if !m.store.fits(st.maxBodySize()) {
		st.certLen, st.caChainLen = oldCert, oldChain
		return wire.Errorf(wire.CodeTooLarge, "certificate and ca chain leave no room in secure storage")
	}
	if err := m.commit(); err != nil {
		return wire.Errorf(wire.CodeFlash, "secure storage write failed")
	}
	m.log("sbm: device certificate installed")
	return nil
}
