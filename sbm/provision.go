package sbm

import (
	"bytes"
	"crypto/sha256"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/internal/errs"
	"github.com/sbm-project/sbm/internal/p256"
	"github.com/sbm-project/sbm/internal/secpkg"
	"github.com/sbm-project/sbm/internal/x509lite"
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
	if err != nil && !errs.Same(err, mailbox.ErrTooLarge) {
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
	if suite == secpkg.SuiteP256 && !p256.Compiled {
		return wire.Errorf(wire.CodeUnsupported, "suite P-256 is not compiled into this SBM (an Ed25519-only build)")
	}
	if len(req.RootKey) != suite.PublicKeySize() {
		return wire.Errorf(wire.CodeMalformed, "root key size does not match the suite")
	}
	// The root of the current root-key slot (a context whose root has
	// rotated provisions new devices at its current slot).
	slot, werr := m.fuseValue(FuseRootIndex)
	if werr != nil {
		return werr
	}
	fuseHash, err := hal.ReadRootKeySlot(m.hw.Fuses, int(slot))
	if err != nil {
		return wire.Errorf(wire.CodeInternal, "cannot read fuses")
	}
	var zero [32]byte
	if bytes.Equal(fuseHash[:], zero[:]) {
		return wire.Errorf(wire.CodeNotProvisioned, "no root key hash in fuses")
	}
	if rk := sha256.Sum256(req.RootKey); !bytes.Equal(rk[:], fuseHash[:]) {
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
	st.rootSlot = uint8(slot)
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
// parse, have this device's identity public key as its subject key and name
// exactly this device's ID and key-agreement key in its subjectAltName
// URIs (certNamesDevice); the optional CA chain must be a
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
	var cert x509lite.Certificate
	if err := x509lite.Parse(der, &cert); err != nil {
		code := wire.CodeMalformed
		if errs.Is(err, x509lite.ErrUnsupportedAlgorithm) || errs.Is(err, x509lite.ErrCriticalExtension) {
			code = wire.CodeUnsupported
		}
		return wire.Errorf(code, "certificate: "+errText(err))
	}
	alg := x509lite.ECDSAP256
	if keys.suite == secpkg.SuiteEd25519 {
		alg = x509lite.Ed25519
	}
	if cert.KeyAlgorithm != alg || !bytes.Equal(cert.PublicKey, keys.identity) {
		return wire.Errorf(wire.CodeNotRecipient, "certificate is not for this device's identity key")
	}
	dev, ka := deviceURIs(keys, m.hw.ID[:])
	if !certNamesDevice(cert.TBS, dev, ka) {
		return wire.Errorf(wire.CodeNotRecipient, "certificate does not name this device's id and key-agreement key")
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
		if err := verifyChain(certs[:1+n], st.root(), uint8(st.suite), 0, x509lite.UsageClientAuth); err != nil {
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

// certNamesDevice reports whether the TBSCertificate tbs, already checked by
// x509lite.Parse, has exactly one subjectAltName extension and whether its
// URIs are exactly one device-ID URI, equal to dev, and exactly one
// key-agreement URI, equal to ka (other URIs and other kinds of names are
// ignored, as by the host's trust.ParseDeviceIdentity).
func certNamesDevice(tbs, dev, ka []byte) bool {
	tag, body, _, ok := derNext(tbs)
	if !ok || tag != derSequence {
		return false
	}
	// The only element tagged [3] in a TBSCertificate is the extensions.
	var exts []byte
	for len(body) > 0 {
		var c []byte
		if tag, c, body, ok = derNext(body); !ok {
			return false
		}
		if tag == derContext3 {
			exts = c
		}
	}
	tag, list, _, ok := derNext(exts)
	if !ok || tag != derSequence {
		return false
	}
	sans, devs, kas := 0, 0, 0
	for len(list) > 0 {
		var e, oid, v, names []byte
		if tag, e, list, ok = derNext(list); !ok || tag != derSequence {
			return false
		}
		if tag, oid, e, ok = derNext(e); !ok || tag != derOID {
			return false
		}
		if !bytes.Equal(oid, oidSubjectAlt) {
			continue
		}
		sans++
		if tag, v, e, ok = derNext(e); ok && tag == derBoolean {
			tag, v, _, ok = derNext(e) // critical: then the value
		}
		if !ok || tag != derOctetString {
			return false
		}
		if tag, names, _, ok = derNext(v); !ok || tag != derSequence {
			return false
		}
		for len(names) > 0 {
			var n []byte
			if tag, n, names, ok = derNext(names); !ok {
				return false
			}
			if tag != derURI {
				continue
			}
			switch {
			case bytes.HasPrefix(n, []byte(uriDevicePrefix)):
				devs++
				if !bytes.Equal(n, dev) {
					return false
				}
			case bytes.HasPrefix(n, []byte(uriKAPrefix)):
				kas++
				if !bytes.Equal(n, ka) {
					return false
				}
			}
		}
	}
	return sans == 1 && devs == 1 && kas == 1
}
