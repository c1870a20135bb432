package sbm

import (
	"bytes"
	"crypto/sha256"
	"io"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/internal/secpkg"
	"github.com/sbm-project/sbm/wire"
)

// verified is a package whose manifest and UPK passed every check and
// whose content-encryption key is unwrapped.
type verified struct {
	r        io.ReaderAt // the package in staging
	payload  secpkg.Span
	manifest *secpkg.Manifest
	upk      *secpkg.UPK
	cek      [32]byte
	// A root transition the package carries (spec §4.2): the package is
	// verified under newRoot, which becomes the device's root at install.
	transition bool
	rootSlot   uint8
	newRoot    [65]byte
	newRootLen uint8
}

// flashReader reads n bytes of flash at start as an io.ReaderAt.
type flashReader struct {
	f        hal.Flash
	start, n uint32
}

func (r flashReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(r.n) {
		return 0, io.ErrUnexpectedEOF
	}
	if err := r.f.Read(r.start+uint32(off), p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// checkPackage parses the container of size bytes in r and runs every
// check of spec §7.3 and the device's own rules on its manifest and its
// one UPK (docs/sbm.md, "Install"), then unwraps the CEK. It reads only
// the record headers, the manifest and the UPK, never the payload.
func (m *machine) checkPackage(r io.ReaderAt, size uint32, v *verified) *wire.Error {
	st := &m.st
	a, werr := m.deviceAnchors()
	if werr != nil {
		return werr
	}
	keys, werr := m.deviceKeys()
	if werr != nil {
		return werr
	}
	c, err := secpkg.ParseContainer(r, int64(size))
	if err != nil {
		return wire.Errorf(wire.CodeFormat, errText(err))
	}
	if c.NumUPKs != 1 {
		return wire.Errorf(wire.CodeFormat, "expected exactly one upk record")
	}
	mb := m.scratch.manifest[:c.Manifest.Length]
	ub := m.scratch.upk[:c.UPKs[0].Length]
	if _, err := r.ReadAt(mb, c.Manifest.Offset); err != nil {
		return wire.Errorf(wire.CodeFlash, "staging read failed")
	}
	if _, err := r.ReadAt(ub, c.UPKs[0].Offset); err != nil {
		return wire.Errorf(wire.CodeFlash, "staging read failed")
	}
	// The manifest digest (spec §5.2) names the package in an install
	// report, whether or not it turns out genuine.
	m.staged, m.stagedOK = sha256.Sum256(mb), true
	var tr verified // the transition fields only
	if a, werr = m.rootTransition(a, mb, &tr); werr != nil {
		return werr
	}
	man, err := secpkg.VerifyManifest(a, mb)
	if err != nil {
		return wire.Errorf(codeOf(err), "manifest: "+errText(err))
	}
	if man.Slot != "primary" {
		return wire.Errorf(wire.CodeSlot, "manifest targets slot "+man.Slot)
	}
	if werr := m.checkRuns(man.SourceFormat); werr != nil {
		return werr
	}
	if err := c.CheckPayload(man); err != nil {
		return wire.Errorf(wire.CodeFormat, errText(err))
	}
	floor, werr := m.counterFloor()
	if werr != nil {
		return werr
	}
	if man.SecurityCounter < floor {
		return wire.Errorf(wire.CodeDowngrade, "security counter below the device's")
	}
	if man.SecurityCounter > hal.CounterMax {
		return wire.Errorf(wire.CodeTooLarge, "security counter beyond the fuse counter's range")
	}
	if pr, ok := m.hw.Flash.Geometry().Region(hal.RegionPrimary); !ok || man.PayloadSize > pr.Size {
		return wire.Errorf(wire.CodeTooLarge, "application larger than the primary slot")
	}
	if len(man.Version) > MaxVersionSize {
		return wire.Errorf(wire.CodeFormat, "version too long")
	}
	u, err := secpkg.VerifyUPK(a, ub)
	if err != nil {
		return wire.Errorf(codeOf(err), "upk: "+errText(err))
	}
	// A revocation statement takes effect only together with a package
	// whose keys it does not revoke (the manifest's signer is checked by
	// VerifyManifest).
	if r := man.Revocation; r != nil && r.Role == secpkg.RoleUpdateAuthority && u.SignerEpoch < r.MinEpoch {
		return wire.Errorf(wire.CodeRevoked, "the package's revocation statement revokes its upk's key")
	}
	if err := u.CheckManifest(man); err != nil {
		return wire.Errorf(codeOf(err), "upk: "+errText(err))
	}
	if err := u.CheckDevice(m.hw.ID[:]); err != nil {
		// The code already says "not the recipient": give the reason.
		return wire.Errorf(wire.CodeNotRecipient, "upk: "+innermost(err))
	}
	if u.NotAfter < st.timeFloor {
		return wire.Errorf(wire.CodeExpired, "upk expired")
	}
	if st.replayed(u.ID, u.Issued) {
		return wire.Errorf(wire.CodeReplay, "upk already used or older than the last one")
	}
	var ka secpkg.KeyAgreement = keys.ka
	if u.Kind == secpkg.RecipientClass {
		if !st.hasClassKey {
			return wire.Errorf(wire.CodeNotRecipient, "class upk but no class key")
		}
		k, err := classKey(st.suite, st.classKey[:])
		if err != nil {
			return wire.Errorf(wire.CodeInternal, "stored class key invalid")
		}
		ka = k
	}
	cek, err := u.Unwrap(ka)
	if err != nil {
		return wire.Errorf(wire.CodeNotRecipient, "upk: "+errText(err))
	}
	*v = verified{r: r, payload: c.Payload, manifest: man, upk: u, cek: cek,
		transition: tr.transition, rootSlot: tr.rootSlot, newRoot: tr.newRoot, newRootLen: tr.newRootLen}
	return nil
}

// rootTransition processes the root transition statement the manifest mb
// may carry (spec §4.2). A statement the current root did not sign is
// ignored (it belongs to an earlier transition, or to nobody): the
// package is then verified under the current root, which such a
// statement cannot change. A statement the current root signed must name
// the next root-key fuse slot, which must hold the new key's hash; the
// package is then verified under the new root (the anchors returned), and
// tr records the transition for the install.
func (m *machine) rootTransition(a *secpkg.Anchors, mb []byte, tr *verified) (*secpkg.Anchors, *wire.Error) {
	raw, ok := secpkg.ManifestRootTransition(mb)
	if !ok {
		return a, nil
	}
	t, err := secpkg.VerifyRootTransition(a, raw)
	if err != nil {
		return a, nil
	}
	cur, werr := m.fuseValue(FuseRootIndex)
	if werr != nil {
		return nil, werr
	}
	switch {
	case int(cur) >= hal.RootKeySlots-1:
		return nil, wire.Errorf(wire.CodeRevoked, "root transition: the last root cannot be revoked")
	case uint32(t.Slot) != cur+1:
		return nil, wire.Errorf(wire.CodeSignature, "root transition: not to the next root slot")
	}
	h, err := hal.ReadRootKeySlot(m.hw.Fuses, int(t.Slot))
	var zero [32]byte
	if err != nil || bytes.Equal(h[:], zero[:]) {
		return nil, wire.Errorf(wire.CodeSignature, "root transition: the next root slot is empty")
	}
	if nk := secpkg.KeyID(t.NewRoot); !bytes.Equal(nk[:], h[:]) {
		return nil, wire.Errorf(wire.CodeSignature, "root transition: new root does not match its fuse slot")
	}
	tr.transition, tr.rootSlot = true, t.Slot
	tr.newRootLen = uint8(copy(tr.newRoot[:], t.NewRoot))
	m.transAnchors = secpkg.Anchors{Suite: a.Suite, RootKey: tr.newRoot[:tr.newRootLen],
		VendorID: a.VendorID, ClassID: a.ClassID, MinEpoch: a.MinEpoch}
	return &m.transAnchors, nil
}

// checkRuns refuses an application whose source format the device's
// runtime cannot execute (Options.Runs).
func (m *machine) checkRuns(format string) *wire.Error {
	if m.opts.Runs == nil || format == "" || format == "bin" {
		return nil
	}
	for _, f := range m.opts.Runs {
		if f == format {
			return nil
		}
	}
	runs := ""
	for i, f := range m.opts.Runs {
		if i > 0 {
			runs += ", "
		}
		runs += f
	}
	return wire.Errorf(wire.CodeAppStart, "the package is "+format+"; this device runs "+runs)
}

// chunkBuf returns the buffer for one encrypted chunk of d (at most
// secpkg.MaxChunkSize+16 bytes).
func (m *machine) chunkBuf(d *secpkg.Decrypter) []byte {
	n := d.MaxChunkLen()
	if cap(m.scratch.chunk) < n {
		m.scratch.chunk = make([]byte, n)
	}
	return m.scratch.chunk[:n]
}

// authenticate decrypts every chunk of the staged payload without writing
// anything and checks the plaintext digest.
func (m *machine) authenticate(v *verified) *wire.Error {
	return m.decrypt(v, nil)
}

// decrypt streams the payload through a Decrypter; if out is not nil it is
// called with each chunk's plaintext and its offset.
func (m *machine) decrypt(v *verified, out func(off uint32, plain []byte) *wire.Error) *wire.Error {
	d, err := secpkg.NewDecrypter(&v.cek, v.manifest)
	if err != nil {
		return wire.Errorf(wire.CodeFormat, errText(err))
	}
	buf := m.chunkBuf(d)
	off := v.payload.Offset
	var plainOff uint32
	for n := d.NextChunkLen(); n > 0; n = d.NextChunkLen() {
		c := buf[:n]
		if _, err := v.r.ReadAt(c, off); err != nil {
			return wire.Errorf(wire.CodeFlash, "staging read failed")
		}
		off += int64(n)
		plain, err := d.Open(c[:0], c)
		if err != nil {
			return wire.Errorf(wire.CodeDecrypt, errText(err))
		}
		if out != nil {
			if werr := out(plainOff, plain); werr != nil {
				return werr
			}
		}
		plainOff += uint32(len(plain))
	}
	if err := d.Finish(); err != nil {
		return wire.Errorf(codeOf(err), errText(err))
	}
	return nil
}

// install installs an authenticated package: it records the
// install-pending marker, erases the primary slot, decrypts the staged
// payload into it, re-hashes it and commits the new signature-table entry,
// counter, replay list and time floor in one secure-storage commit. A
// power cut after the marker makes the next boot resume (resume).
func (m *machine) install(v *verified) *wire.Error {
	st := &m.st
	man, u := v.manifest, v.upk
	p := &st.pending
	if !p.present || !bytes.Equal(p.manifestDigest[:], man.Digest[:]) || !bytes.Equal(p.upkID[:], u.ID[:]) {
		*p = pendingInstall{present: true, size: uint32(v.payload.Offset + v.payload.Length),
			manifestDigest: man.Digest, upkID: u.ID}
		if m.commit() != nil {
			return wire.Errorf(wire.CodeFlash, "secure storage write failed")
		}
	}
	werr := m.writePrimary(v)
	if werr != nil {
		// The staged package did not install: forget it and say why.
		m.installFailed(werr)
		return werr
	}
	st.app = appEntry{present: true, size: man.PayloadSize, digest: man.PayloadDigest,
		manifestDigest: man.Digest, counter: man.SecurityCounter, signer: man.SignerKID, hasSigner: true}
	st.app.versionLen = uint8(copy(st.app.version[:], man.Version))
	st.updateRequested = false
	st.setLastUpdate(0, "installed "+man.Version)
	st.counter = max(st.counter, man.SecurityCounter)
	st.remember(u.ID, u.Issued)
	st.timeFloor = max(st.timeFloor, u.Issued, man.Created)
	if r := man.Revocation; r != nil {
		st.epochFloor[r.Role] = max(st.epochFloor[r.Role], r.MinEpoch)
	}
	if v.transition {
		st.rootKeyLen = uint8(copy(st.rootKey[:], v.newRoot[:v.newRootLen]))
		st.rootSlot = v.rootSlot
	}
	st.setError(0, "")
	st.pending = pendingInstall{}
	if m.commit() != nil {
		return wire.Errorf(wire.CodeFlash, "secure storage write failed")
	}
	m.ret.flags &^= flagRejected | flagPackage // the committed result is now the newest
	m.ret.erases = 0                           // a genuine install renews the staging budget
	m.writeRetained()
	m.syncFuses()
	m.anchorsOK = false // the epoch floors may have risen
	m.log("sbm: installed application ", man.Version, " (sha256 ", shortHash(man.PayloadDigest[:]), ")")
	return nil
}

// writePrimary erases the sectors of the primary slot the payload needs,
// decrypts the payload into them and re-hashes the result.
func (m *machine) writePrimary(v *verified) *wire.Error {
	f := m.hw.Flash
	g := f.Geometry()
	pr, _ := g.Region(hal.RegionPrimary)
	size := v.manifest.PayloadSize
	for a := pr.Start; a < pr.Start+size; {
		i, ok := g.SectorAt(a)
		if !ok {
			return wire.Errorf(wire.CodeFlash, "primary slot out of range")
		}
		if err := f.Erase(g.Sectors[i].Start); err != nil {
			return wire.Errorf(wire.CodeFlash, "primary erase failed")
		}
		a = g.Sectors[i].End()
	}
	werr := m.decrypt(v, func(off uint32, plain []byte) *wire.Error {
		n := uint32(len(plain))
		padded := (n + g.WriteSize - 1) / g.WriteSize * g.WriteSize
		plain = plain[:padded] // the chunk buffer has room: it holds the tag too
		for i := n; i < padded; i++ {
			plain[i] = g.Erased
		}
		if err := f.Program(pr.Start+off, plain); err != nil {
			return wire.Errorf(wire.CodeFlash, "primary program failed")
		}
		return nil
	})
	if werr != nil {
		return werr
	}
	sum, err := hashFlash(f, pr.Start, size)
	if err != nil {
		return wire.Errorf(wire.CodeFlash, "primary read failed")
	}
	if !bytes.Equal(sum[:], v.manifest.PayloadDigest[:]) {
		return wire.Errorf(wire.CodeDigest, "primary slot does not match after install")
	}
	return nil
}

// resume finishes an install interrupted by a reset or power cut: the
// marker says an authenticated package waits in staging. It is verified
// again from scratch, then installed. If it no longer verifies, the marker
// is cleared and the reason recorded.
func (m *machine) resume() {
	m.log("sbm: resuming an interrupted install")
	p := m.st.pending
	sr, ok := m.hw.Flash.Geometry().Region(hal.RegionStaging)
	werr := wire.Errorf(wire.CodeInternal, "no staging slot")
	var v verified
	if ok && p.size <= sr.Size {
		werr = m.checkPackage(flashReader{m.hw.Flash, sr.Start, p.size}, p.size, &v)
	}
	if werr == nil && (!bytes.Equal(v.manifest.Digest[:], p.manifestDigest[:]) || !bytes.Equal(v.upk.ID[:], p.upkID[:])) {
		werr = wire.Errorf(wire.CodeState, "staged package changed")
	}
	if werr != nil && werr.Code == wire.CodeFormat {
		// Only a genuine, authenticated package gets a marker: one that
		// no longer parses was replaced in the staging slot.
		werr = wire.Errorf(wire.CodeState, "staged package changed ("+werr.Detail+")")
	}
	if werr == nil {
		werr = m.authenticate(&v)
	}
	if werr == nil {
		werr = m.install(&v)
		if werr == nil {
			m.updated = true
			return
		}
		return // install recorded the failure
	}
	m.log("sbm: resumed install failed: ", werr.Error())
	m.installFailed(werr)
}

// installFailed clears the install-pending marker and a pending update
// request and records werr as the last error (and as the update's result
// if the application had requested it).
func (m *machine) installFailed(werr *wire.Error) {
	st := &m.st
	st.pending = pendingInstall{}
	st.setError(werr.Code, werr.Detail)
	if st.updateRequested {
		st.updateRequested = false
		st.setLastUpdate(werr.Code, werr.Detail)
	}
	m.commit()
}
