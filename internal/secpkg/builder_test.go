package secpkg

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"testing"

	"github.com/sbm-project/sbm/internal/aeskw"
	"github.com/sbm-project/sbm/internal/cbor"
	"github.com/sbm-project/sbm/internal/cose"
)

// This file is a tiny test-only package builder, written with this
// module's own CBOR encoder and COSE signer so the verifier can be tested
// independently of the host-side encoder.

// entry is one map entry: an integer key and the encoded value.
type entry struct {
	k int64
	v []byte
}

// cmap is an ordered integer-keyed map that tests can mutate freely
// (including into invalid shapes such as duplicate keys).
type cmap []entry

func (m cmap) enc() []byte {
	b := cbor.AppendMapHeader(nil, uint64(len(m)))
	for _, e := range m {
		b = append(cbor.AppendInt(b, e.k), e.v...)
	}
	return b
}

// set replaces the value of k (all occurrences), or appends it.
func (m cmap) set(k int64, v []byte) cmap {
	out := append(cmap(nil), m...)
	found := false
	for i := range out {
		if out[i].k == k {
			out[i].v, found = v, true
		}
	}
	if !found {
		out = append(out, entry{k, v})
	}
	return out
}

func (m cmap) del(k int64) cmap {
	var out cmap
	for _, e := range m {
		if e.k != k {
			out = append(out, e)
		}
	}
	return out
}

func (m cmap) get(k int64) []byte {
	for _, e := range m {
		if e.k == k {
			return e.v
		}
	}
	return nil
}

func u(v uint64) []byte  { return cbor.AppendUint(nil, v) }
func i(v int64) []byte   { return cbor.AppendInt(nil, v) }
func bs(b []byte) []byte { return cbor.AppendBytes(nil, b) }
func tx(s string) []byte { return cbor.AppendText(nil, s) }
func arr(items ...[]byte) []byte {
	b := cbor.AppendArrayHeader(nil, uint64(len(items)))
	for _, it := range items {
		b = append(b, it...)
	}
	return b
}

// keyPair is a signing key with its raw public encoding.
type keyPair struct {
	signer crypto.Signer
	pub    []byte
}

func newSigningKey(t testing.TB, s Suite) keyPair {
	t.Helper()
	if s == SuiteP256 {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		pub, _ := k.PublicKey.Bytes()
		return keyPair{k, pub}
	}
	pub, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return keyPair{k, pub}
}

func newAgreementKey(t testing.TB, s Suite) *ecdh.PrivateKey {
	t.Helper()
	c := ecdh.X25519()
	if s == SuiteP256 {
		c = ecdh.P256()
	}
	k, err := c.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// testCtx is a security context with a device and a class key.
type testCtx struct {
	t        testing.TB
	suite    Suite
	root     keyPair
	img      keyPair
	ua       keyPair
	vendor   [16]byte
	class    [16]byte
	anchors  *Anchors
	device   *ecdh.PrivateKey
	classKey *ecdh.PrivateKey
	deviceID []byte
	now      uint64
}

var suites = []struct {
	name  string
	suite Suite
}{{"p256", SuiteP256}, {"ed25519", SuiteEd25519}}

func newCtx(t testing.TB, s Suite) *testCtx {
	c := &testCtx{t: t, suite: s, now: 1767225600}
	c.root, c.img, c.ua = newSigningKey(t, s), newSigningKey(t, s), newSigningKey(t, s)
	rand.Read(c.vendor[:])
	rand.Read(c.class[:])
	c.anchors = &Anchors{Suite: s, RootKey: c.root.pub, VendorID: c.vendor, ClassID: c.class}
	c.device, c.classKey = newAgreementKey(t, s), newAgreementKey(t, s)
	c.deviceID = []byte("device-0001")
	return c
}

// sign produces a COSE_Sign1 with the package profile headers.
func (c *testCtx) sign(k keyPair, ct string, payload, keycert []byte) []byte {
	c.t.Helper()
	kid := KeyID(k.pub)
	prot := cose.AppendProtected(nil, c.suite.Alg(), ct, kid[:])
	var unprot []byte
	if keycert != nil {
		unprot = cbor.AppendBytes(cbor.AppendInt(cbor.AppendMapHeader(nil, 1), LabelKeyCert), keycert)
	}
	msg, err := cose.Sign(nil, rand.Reader, k.signer, c.suite.Alg(), prot, unprot, payload)
	if err != nil {
		c.t.Fatal(err)
	}
	return msg
}

func (c *testCtx) keyCertMap(role Role, subject keyPair) cmap {
	return cmap{
		{1, u(uint64(role))}, {2, i(c.suite.Alg())}, {3, bs(subject.pub)},
		{4, bs(c.vendor[:])}, {5, u(c.now)},
	}
}

func (c *testCtx) keyCert(m cmap) []byte {
	return c.sign(c.root, ContentTypeKeyCert, m.enc(), nil)
}

// plaintext returns n deterministic bytes.
func plaintext(n int) []byte {
	p := make([]byte, n)
	for j := range p {
		p[j] = byte(j*7 + j>>8)
	}
	return p
}

// pkg is a built package: parts and the values needed to check them.
type pkg struct {
	manifest []byte
	payload  []byte // encrypted
	plain    []byte
	cek      [32]byte
	m        cmap // manifest payload map
}

func (c *testCtx) manifestMap(plain []byte, chunkSize uint32, prefix [7]byte) cmap {
	digest := sha256.Sum256(plain)
	enc := cmap{{1, i(3)}, {2, u(uint64(chunkSize))}, {3, bs(prefix[:])}}
	return cmap{
		{1, u(1)}, {2, bs(c.vendor[:])}, {3, bs(c.class[:])}, {4, tx("1.2.0")},
		{5, u(7)}, {6, u(uint64(len(plain)))}, {7, bs(digest[:])}, {8, tx("primary")},
		{9, enc.enc()}, {10, u(c.now)},
	}
}

// signManifest signs a manifest payload map with the image key.
func (c *testCtx) signManifest(m cmap) []byte {
	kc := c.keyCert(c.keyCertMap(RoleImageSigning, c.img))
	return c.sign(c.img, ContentTypeManifest, m.enc(), kc)
}

func encryptChunks(cek [32]byte, prefix [7]byte, chunkSize int, plain []byte) [][]byte {
	block, _ := aes.NewCipher(cek[:])
	aead, _ := cipher.NewGCM(block)
	n := (len(plain) + chunkSize - 1) / chunkSize
	var out [][]byte
	for j := 0; j < n; j++ {
		var nonce [12]byte
		copy(nonce[:], prefix[:])
		binary.BigEndian.PutUint32(nonce[7:], uint32(j))
		if j == n-1 {
			nonce[11] = 1
		}
		end := min((j+1)*chunkSize, len(plain))
		out = append(out, aead.Seal(nil, nonce[:], plain[j*chunkSize:end], nil))
	}
	return out
}

func (c *testCtx) build(size int, chunkSize uint32) *pkg {
	p := &pkg{plain: plaintext(size)}
	rand.Read(p.cek[:])
	var prefix [7]byte
	rand.Read(prefix[:])
	p.m = c.manifestMap(p.plain, chunkSize, prefix)
	p.manifest = c.signManifest(p.m)
	p.payload = bytes.Join(encryptChunks(p.cek, prefix, int(chunkSize), p.plain), nil)
	return p
}

// coseKey encodes an ephemeral public key as a COSE_Key (spec §7.2).
func coseKey(pub *ecdh.PublicKey) []byte {
	raw := pub.Bytes()
	if len(raw) == 65 {
		return cmap{{1, u(2)}, {-1, u(1)}, {-2, bs(raw[1:33])}, {-3, bs(raw[33:])}}.enc()
	}
	return cmap{{1, u(1)}, {-1, u(4)}, {-2, bs(raw)}}.enc()
}

// wrapFor wraps cek for the recipient public key (ECDH-ES + A256KW).
func (c *testCtx) wrapFor(recipient *ecdh.PublicKey, cek [32]byte) []byte {
	c.t.Helper()
	eph, err := recipient.Curve().GenerateKey(rand.Reader)
	if err != nil {
		c.t.Fatal(err)
	}
	z, err := eph.ECDH(recipient)
	if err != nil {
		c.t.Fatal(err)
	}
	kid := KeyID(recipient.Bytes())
	kek, err := deriveKEK(z, &kid)
	if err != nil {
		c.t.Fatal(err)
	}
	ct, err := aeskw.Wrap(kek, cek[:])
	if err != nil {
		c.t.Fatal(err)
	}
	return arr(bs(recipientProtected), cmap{{-1, coseKey(eph.PublicKey())}}.enc(), bs(ct))
}

// upkMap returns a UPK payload map for manifest msg, for the device
// (kind 1) or the class (kind 2).
func (c *testCtx) upkMap(manifest []byte, kind RecipientKind, cek [32]byte) cmap {
	digest := sha256.Sum256(manifest)
	key := c.device.PublicKey()
	rcp := cmap{{1, u(uint64(kind))}}
	if kind == RecipientClass {
		key = c.classKey.PublicKey()
	}
	kid := KeyID(key.Bytes())
	rcp = append(rcp, entry{2, bs(kid[:])})
	if kind == RecipientDevice {
		rcp = append(rcp, entry{3, bs(c.deviceID)})
	}
	var id [16]byte
	rand.Read(id[:])
	return cmap{
		{1, u(1)}, {2, bs(id[:])}, {3, bs(digest[:])}, {4, bs(c.vendor[:])}, {5, bs(c.class[:])},
		{6, rcp.enc()}, {7, u(c.now - 3600)}, {8, u(c.now + 86400)},
		{9, c.wrapFor(key, cek)}, {10, u(c.now)},
	}
}

func (c *testCtx) signUPK(m cmap) []byte {
	kc := c.keyCert(c.keyCertMap(RoleUpdateAuthority, c.ua))
	return c.sign(c.ua, ContentTypeUPK, m.enc(), kc)
}

// container assembles a package file from raw records.
func container(records ...record) []byte {
	b := append([]byte(nil), Magic[:]...)
	for _, r := range records {
		var h [8]byte
		h[0] = r.typ
		binary.LittleEndian.PutUint32(h[4:], uint32(len(r.body)))
		b = append(append(b, h[:]...), r.body...)
	}
	return b
}

type record struct {
	typ  byte
	body []byte
}
