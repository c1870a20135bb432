package sbm

import (
	"bytes"
	"crypto/subtle"
	"encoding/binary"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/internal/errs"
	"github.com/sbm-project/sbm/internal/secpkg"
	"github.com/sbm-project/sbm/wire"
)

// Limits of the secure-storage state.
const (
	// MaxCertificateSize is the largest device certificate (DER) the SBM
	// stores.
	MaxCertificateSize = 1024
	// ReplayEntries is how many UPK IDs issued in the same second as the
	// newest accepted UPK the SBM remembers (the replay floor's list); a
	// UPK issued earlier is refused by the floor itself, so no ID is ever
	// forgotten (docs/sbm.md, "Replay").
	ReplayEntries = 32
	// MaxVersionSize is the largest application version string (spec §5).
	MaxVersionSize = 64
	// MaxCAChainSize is the largest device CA chain (length-prefixed DER
	// certificates, the encoding of Services.CertificateChain) the SBM
	// stores.
	MaxCAChainSize = 1024
	// maxDetail is the largest stored error detail.
	maxDetail = 64
)

// appEntry is the signature-table entry of the primary slot.
type appEntry struct {
	present        bool
	size           uint32
	digest         [32]byte
	manifestDigest [32]byte
	counter        uint32
	version        [MaxVersionSize]byte
	versionLen     uint8
	signer         [32]byte // key ID of the image-signing key (tag 20)
	hasSigner      bool
}

func (a *appEntry) versionString() string { return string(a.version[:a.versionLen]) }

// pendingInstall is the install-pending marker: an authenticated package
// waits in the staging slot to be installed into the primary slot.
type pendingInstall struct {
	present        bool
	size           uint32 // container size in staging
	manifestDigest [32]byte
	upkID          [16]byte
}

// state is the whole secure-storage state, held in fixed-size fields.
type state struct {
	seq           uint32
	provisioned   bool
	suite         secpkg.Suite
	rootKey       [65]byte
	rootKeyLen    uint8
	vendorID      [16]byte
	classID       [16]byte
	imageKeyCert  [secpkg.MaxKeyCertSize]byte
	imageCertLen  uint16
	updateKeyCert [secpkg.MaxKeyCertSize]byte
	updateCertLen uint16
	classKey      [32]byte
	hasClassKey   bool
	helper        [hal.PUFHelperSize]byte
	cert          [MaxCertificateSize]byte
	certLen       uint16
	counter       uint32 // stored anti-rollback counter
	timeFloor     uint64 // epoch seconds: no trusted time is earlier
	app           appEntry
	// replayFloor is the issued time of the newest accepted UPK; replay
	// lists the IDs accepted with exactly that issued time.
	replayFloor uint64
	replay      [ReplayEntries][16]byte
	replayLen   uint8
	// epochFloor, indexed by secpkg.Role, is the lowest key epoch the
	// device accepts for the role (a revocation statement installed with
	// a package); the fuse counters follow it (rollback.go).
	epochFloor [3]uint8
	// rootSlot is the root-key fuse slot of rootKey (a root transition
	// installed with a package); fuse counter FuseRootIndex follows it.
	rootSlot      uint8
	lastError     wire.Code
	lastDetail    [maxDetail]byte
	lastDetailLen uint8
	pending       pendingInstall
	caChain       [MaxCAChainSize]byte // device CA chain, length-prefixed DER
	caChainLen    uint16
	// updateRequested: the application asked for the staged package to be
	// installed at the next boot (Services.RequestUpdate).
	updateRequested bool
	// lastUpdate is the result of the last update: 0 success, else a
	// wire.Code; hasLastUpdate is false until there was one.
	hasLastUpdate       bool
	lastUpdate          wire.Code
	lastUpdateDetail    [maxDetail]byte
	lastUpdateDetailLen uint8
}

func (s *state) root() []byte          { return s.rootKey[:s.rootKeyLen] }
func (s *state) imageCert() []byte     { return s.imageKeyCert[:s.imageCertLen] }
func (s *state) updateCert() []byte    { return s.updateKeyCert[:s.updateCertLen] }
func (s *state) certificate() []byte   { return s.cert[:s.certLen] }
func (s *state) lastErrorText() string { return string(s.lastDetail[:s.lastDetailLen]) }
func (s *state) caChainBytes() []byte  { return s.caChain[:s.caChainLen] }
func (s *state) lastUpdateText() string {
	return string(s.lastUpdateDetail[:s.lastUpdateDetailLen])
}

// setLastUpdate records the result of an update (code 0: success).
func (s *state) setLastUpdate(code wire.Code, detail string) {
	s.hasLastUpdate = true
	s.lastUpdate = code
	s.lastUpdateDetailLen = uint8(copy(s.lastUpdateDetail[:], detail))
}

// setError records the last error (code 0 clears it).
func (s *state) setError(code wire.Code, detail string) {
	s.lastError = code
	s.lastDetailLen = uint8(copy(s.lastDetail[:], detail))
}

// replayed reports whether a UPK with this ID and issued time may have
// been accepted before: it was issued before the newest accepted UPK, or in
// the same second and its ID is listed, or in the same second with the
// list full (refused rather than forgotten).
func (s *state) replayed(id [16]byte, issued uint64) bool {
	if issued != s.replayFloor {
		return issued < s.replayFloor
	}
	for i := range int(s.replayLen) {
		if bytes.Equal(s.replay[i][:], id[:]) {
			return true
		}
	}
	return int(s.replayLen) == ReplayEntries
}

// remember records an accepted UPK: a later issued time raises the floor
// and starts a new list; the same issued time adds the ID to the list.
// The caller has checked replayed.
func (s *state) remember(id [16]byte, issued uint64) {
	if issued > s.replayFloor {
		s.replayFloor = issued
		s.replayLen = 0
	}
	if issued < s.replayFloor || int(s.replayLen) == ReplayEntries {
		return
	}
	for i := range int(s.replayLen) {
		if bytes.Equal(s.replay[i][:], id[:]) {
			return
		}
	}
	s.replay[s.replayLen] = id
	s.replayLen++
}

// Record field tags (docs/sbm.md, "Secure storage").
const (
	tagProvisioned = 1  // empty
	tagSuite       = 2  // u8
	tagRootKey     = 3  // raw public key
	tagVendorID    = 4  // 16 bytes
	tagClassID     = 5  // 16 bytes
	tagImageCert   = 6  // key certificate, role 1
	tagUpdateCert  = 7  // key certificate, role 2
	tagClassKey    = 8  // 32-byte class key-agreement private key
	tagHelper      = 9  // PUF helper data
	tagCertificate = 10 // device certificate, DER
	tagCounter     = 11 // u32
	tagTimeFloor   = 12 // u64
	tagApp         = 13 // size u32, digest 32, manifest digest 32, counter u32, version
	tagReplay      = 14 // n × 16-byte UPK IDs accepted with issued == replay floor
	tagLastError   = 15 // code u8, detail
	tagPending     = 16 // size u32, manifest digest 32, UPK ID 16
	tagUpdateReq   = 17 // empty: an update of the staged package was requested
	tagLastUpdate  = 18 // code u8, detail: result of the last update
	tagCAChain     = 19 // device CA chain, length-prefixed DER certificates
	tagAppSigner   = 20 // 32-byte key ID of the installed application's signer
	tagReplayFloor = 21 // u64: issued time of the newest accepted UPK
	tagEpochFloor  = 22 // 2 bytes: lowest image-signing and update-authority key epochs
	tagRootSlot    = 23 // u8: the root-key fuse slot of the root key (tag 3)
)

var errRecord = errs.New("sbm: invalid secure-storage record")

// encode appends the TLV body of s to dst. The secret fields (the class
// key) are encrypted with pad, the record's one-time pad (storage.pad).
func (s *state) encode(dst []byte, pad *[32]byte) []byte {
	tlv := func(tag byte, parts ...[]byte) {
		n := 0
		for _, p := range parts {
			n += len(p)
		}
		dst = append(dst, tag)
		dst = binary.LittleEndian.AppendUint16(dst, uint16(n))
		for _, p := range parts {
			dst = append(dst, p...)
		}
	}
	var u32 [4]byte
	var u64 [8]byte
	if s.provisioned {
		tlv(tagProvisioned)
		tlv(tagSuite, []byte{byte(s.suite)})
		tlv(tagRootKey, s.root())
		tlv(tagVendorID, s.vendorID[:])
		tlv(tagClassID, s.classID[:])
		tlv(tagImageCert, s.imageCert())
		tlv(tagUpdateCert, s.updateCert())
		if s.hasClassKey && pad != nil {
			var ct [32]byte
			subtle.XORBytes(ct[:], s.classKey[:], pad[:])
			tlv(tagClassKey, ct[:])
		}
		tlv(tagHelper, s.helper[:])
	}
	if s.certLen > 0 {
		tlv(tagCertificate, s.certificate())
	}
	if s.caChainLen > 0 {
		tlv(tagCAChain, s.caChainBytes())
	}
	binary.LittleEndian.PutUint32(u32[:], s.counter)
	tlv(tagCounter, u32[:])
	binary.LittleEndian.PutUint64(u64[:], s.timeFloor)
	tlv(tagTimeFloor, u64[:])
	if a := &s.app; a.present {
		var sz, ctr [4]byte
		binary.LittleEndian.PutUint32(sz[:], a.size)
		binary.LittleEndian.PutUint32(ctr[:], a.counter)
		tlv(tagApp, sz[:], a.digest[:], a.manifestDigest[:], ctr[:], a.version[:a.versionLen])
		if a.hasSigner {
			tlv(tagAppSigner, a.signer[:])
		}
	}
	if s.rootSlot != 0 {
		tlv(tagRootSlot, []byte{s.rootSlot})
	}
	if s.epochFloor != ([3]uint8{}) {
		tlv(tagEpochFloor, s.epochFloor[1:])
	}
	if s.replayFloor > 0 {
		binary.LittleEndian.PutUint64(u64[:], s.replayFloor)
		tlv(tagReplayFloor, u64[:])
	}
	if s.replayLen > 0 {
		dst = append(dst, tagReplay)
		dst = binary.LittleEndian.AppendUint16(dst, uint16(16*int(s.replayLen)))
		for i := range int(s.replayLen) {
			dst = append(dst, s.replay[i][:]...)
		}
	}
	if s.lastError != 0 {
		tlv(tagLastError, []byte{byte(s.lastError)}, s.lastDetail[:s.lastDetailLen])
	}
	if p := &s.pending; p.present {
		binary.LittleEndian.PutUint32(u32[:], p.size)
		tlv(tagPending, u32[:], p.manifestDigest[:], p.upkID[:])
	}
	if s.updateRequested {
		tlv(tagUpdateReq)
	}
	if s.hasLastUpdate {
		tlv(tagLastUpdate, []byte{byte(s.lastUpdate)}, s.lastUpdateDetail[:s.lastUpdateDetailLen])
	}
	return dst
}

// decode sets s from a TLV body, decrypting the secret fields with pad
// (nil: they are left out, as in a host tool's view). Unknown tags are
// ignored.
func (s *state) decode(b []byte, pad *[32]byte) error {
	*s = state{}
	for len(b) > 0 {
		if len(b) < 3 {
			return errRecord
		}
		tag := b[0]
		n := int(binary.LittleEndian.Uint16(b[1:3]))
		if len(b) < 3+n {
			return errRecord
		}
		v := b[3 : 3+n]
		b = b[3+n:]
		ok := true
		switch tag {
		case tagProvisioned:
			s.provisioned = true
		case tagSuite:
			ok = n == 1 && (v[0] == byte(secpkg.SuiteP256) || v[0] == byte(secpkg.SuiteEd25519))
			if ok {
				s.suite = secpkg.Suite(v[0])
			}
		case tagRootKey:
			ok = n <= len(s.rootKey)
			s.rootKeyLen = uint8(copy(s.rootKey[:], v))
		case tagVendorID:
			ok = n == 16
			copy(s.vendorID[:], v)
		case tagClassID:
			ok = n == 16
			copy(s.classID[:], v)
		case tagImageCert:
			ok = n <= len(s.imageKeyCert)
			s.imageCertLen = uint16(copy(s.imageKeyCert[:], v))
		case tagUpdateCert:
			ok = n <= len(s.updateKeyCert)
			s.updateCertLen = uint16(copy(s.updateKeyCert[:], v))
		case tagClassKey:
			ok = n == 32
			s.hasClassKey = ok
			if ok && pad != nil {
				subtle.XORBytes(s.classKey[:], v, pad[:])
			}
		case tagHelper:
			ok = n == len(s.helper)
			copy(s.helper[:], v)
		case tagCertificate:
			ok = n <= len(s.cert)
			s.certLen = uint16(copy(s.cert[:], v))
		case tagCounter:
			ok = n == 4
			if ok {
				s.counter = binary.LittleEndian.Uint32(v)
			}
		case tagTimeFloor:
			ok = n == 8
			if ok {
				s.timeFloor = binary.LittleEndian.Uint64(v)
			}
		case tagApp:
			ok = n >= 72 && n <= 72+MaxVersionSize
			if ok {
				a := &s.app
				a.present = true
				a.size = binary.LittleEndian.Uint32(v)
				copy(a.digest[:], v[4:36])
				copy(a.manifestDigest[:], v[36:68])
				a.counter = binary.LittleEndian.Uint32(v[68:72])
				a.versionLen = uint8(copy(a.version[:], v[72:]))
			}
		case tagReplay:
			ok = n%16 == 0 && n/16 <= ReplayEntries
			if ok {
				for i := 0; i < n/16; i++ {
					copy(s.replay[i][:], v[16*i:])
				}
				s.replayLen = uint8(n / 16)
			}
		case tagLastError:
			ok = n >= 1 && n <= 1+maxDetail
			if ok {
				s.lastError = wire.Code(v[0])
				s.lastDetailLen = uint8(copy(s.lastDetail[:], v[1:]))
			}
		case tagPending:
			ok = n == 52
			if ok {
				p := &s.pending
				p.present = true
				p.size = binary.LittleEndian.Uint32(v)
				copy(p.manifestDigest[:], v[4:36])
				copy(p.upkID[:], v[36:52])
			}
		case tagUpdateReq:
			ok = n == 0
			s.updateRequested = true
		case tagLastUpdate:
			ok = n >= 1 && n <= 1+maxDetail
			if ok {
				s.hasLastUpdate = true
				s.lastUpdate = wire.Code(v[0])
				s.lastUpdateDetailLen = uint8(copy(s.lastUpdateDetail[:], v[1:]))
			}
		case tagCAChain:
			ok = n <= len(s.caChain)
			s.caChainLen = uint16(copy(s.caChain[:], v))
		case tagRootSlot:
			ok = n == 1 && int(v[0]) < hal.RootKeySlots
			if ok {
				s.rootSlot = v[0]
			}
		case tagEpochFloor:
			ok = n == 2
			if ok {
				copy(s.epochFloor[1:], v)
			}
		case tagReplayFloor:
			ok = n == 8
			if ok {
				s.replayFloor = binary.LittleEndian.Uint64(v)
			}
		case tagAppSigner:
			ok = n == 32
			s.app.hasSigner = ok
			copy(s.app.signer[:], v)
		}
		if !ok {
			return errRecord
		}
	}
	if s.provisioned && (s.suite == 0 || int(s.rootKeyLen) != s.suite.PublicKeySize() ||
		s.imageCertLen == 0 || s.updateCertLen == 0) {
		return errRecord
	}
	return nil
}

// maxBodySize returns the largest body s can grow to without a new
// provisioning: its fixed fields as they are and every variable field
// (table entry, replay list, errors, markers) at its maximum. Commits must
// never fail for size, so OpInstallCertificate refuses a certificate or CA
// chain that would make this exceed a record.
func (s *state) maxBodySize() int {
	const tl = 3 // tag and length
	n := 0
	if s.provisioned {
		n += tl + tl + 1 + tl + int(s.rootKeyLen) + 2*(tl+16) + tl + int(s.imageCertLen) + tl + int(s.updateCertLen) + tl + len(s.helper)
		if s.hasClassKey {
			n += tl + 32
		}
	}
	n += tl + int(s.certLen) + tl + int(s.caChainLen)
	n += tl + 4 + tl + 8                    // counter, time floor
	n += tl + 72 + MaxVersionSize + tl + 32 // table entry and signer
	n += tl + 16*ReplayEntries + tl + 8     // replay list and floor
	n += tl + 2 + tl + 1                    // key epoch floors, root slot
	n += 2 * (tl + 1 + maxDetail)           // last error, last update
	n += tl + 52 + tl                       // pending marker, update request
	return n
}
