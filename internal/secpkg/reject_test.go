package secpkg

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/sbm-project/sbm/internal/cbor"
	"github.com/sbm-project/sbm/internal/cose"
)

func flipLast(b []byte) []byte {
	b = bytes.Clone(b)
	b[len(b)-1] ^= 1
	return b
}

func checkErr(t *testing.T, name string, err error, want ...error) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Errorf("%s: unexpected error %v", name, err)
		}
		return
	}
	for _, w := range want {
		if !errors.Is(err, w) {
			t.Errorf("%s: error %v, want %v", name, err, w)
		}
	}
}

func TestManifestRejects(t *testing.T) {
	for _, s := range suites {
		t.Run(s.name, func(t *testing.T) {
			c := newCtx(t, s.suite)
			p := c.build(5000, 1024)
			m := p.m
			kcImg := c.keyCertMap(RoleImageSigning, c.img)
			withKC := func(kc []byte) []byte { return c.sign(c.img, ContentTypeManifest, m.enc(), kc) }
			other := newSigningKey(t, s.suite)
			otherCtx := newCtx(t, s.suite)
			big := make([]byte, 2100)
			half := []byte{0xf9, 0x3c, 0x00} // 1.0 as a half float
			withUnprot := func(unprot []byte) []byte {
				kid := KeyID(c.img.pub)
				prot := cose.AppendProtected(nil, c.suite.Alg(), ContentTypeManifest, kid[:])
				msg, err := cose.Sign(nil, rand.Reader, c.img.signer, c.suite.Alg(), prot, unprot, m.enc())
				if err != nil {
					t.Fatal(err)
				}
				return msg
			}
			tests := []struct {
				name string
				msg  []byte
				want []error
			}{
				{"valid", p.manifest, nil},
				{"bad signature", flipLast(p.manifest), []error{ErrSignature}},
				{"keycert bad signature", withKC(flipLast(c.keyCert(kcImg))), []error{ErrKeyCert, ErrSignature}},
				{"keycert signed by another root", withKC(otherCtx.sign(otherCtx.root, ContentTypeKeyCert, kcImg.enc(), nil)), []error{ErrKeyCert}},
				{"keycert wrong role", withKC(c.keyCert(kcImg.set(1, u(2)))), []error{ErrWrongRole}},
				{"keycert unknown role", withKC(c.keyCert(kcImg.set(1, u(3)))), []error{ErrKeyCert, ErrMalformed}},
				{"keycert wrong vendor", withKC(c.keyCert(kcImg.set(4, bs(make([]byte, 16))))), []error{ErrKeyCert, ErrVendor}},
				{"keycert for another key", withKC(c.keyCert(kcImg.set(3, bs(other.pub)))), []error{ErrKeyCert}},
				{"keycert wrong alg", withKC(c.keyCert(kcImg.set(2, i(-15-c.suite.Alg())))), []error{ErrKeyCert}},
				{"keycert unknown critical", withKC(c.keyCert(kcImg.set(7, u(0)))), []error{ErrKeyCert, ErrUnknownCritical}},
				{"keycert content type", withKC(c.sign(c.root, ContentTypeManifest, kcImg.enc(), nil)), []error{ErrKeyCert, ErrContentType}},
				{"keycert missing", withKC(nil), []error{ErrKeyCert}},
				{"keycert too large", withKC(c.keyCert(kcImg.set(-9, bs(make([]byte, 512))))), []error{ErrKeyCert, ErrTooLarge}},
				{"wrong vendor", c.signManifest(m.set(2, bs(make([]byte, 16)))), []error{ErrVendor}},
				{"wrong class", c.signManifest(m.set(3, bs(make([]byte, 16)))), []error{ErrClass}},
				{"unknown critical key", c.signManifest(m.set(13, u(1))), []error{ErrUnknownCritical}},
				{"unknown critical key 0", c.signManifest(m.set(0, u(1))), []error{ErrUnknownCritical}},
				{"unknown negative key ignored", c.signManifest(m.set(-1, bs([]byte("ext")))), nil},
				{"duplicate key", c.signManifest(append(m, entry{5, u(8)})), []error{ErrMalformed}},
				{"duplicate ignored key", c.signManifest(append(m, entry{-2, u(0)}, entry{-2, u(0)})), []error{ErrMalformed}},
				{"format 2", c.signManifest(m.set(1, u(2))), []error{ErrVersion}},
				{"missing digest", c.signManifest(m.del(7)), []error{ErrMalformed}},
				{"short digest", c.signManifest(m.set(7, bs(make([]byte, 31)))), []error{ErrMalformed}},
				{"empty version", c.signManifest(m.set(4, tx(""))), []error{ErrMalformed}},
				{"long version", c.signManifest(m.set(4, tx(string(make([]byte, 65))))), []error{ErrMalformed}},
				{"version as bstr", c.signManifest(m.set(4, bs([]byte("1.0")))), []error{ErrMalformed}},
				{"counter 2^32", c.signManifest(m.set(5, u(1<<32))), []error{ErrMalformed}},
				{"payload size 0", c.signManifest(m.set(6, u(0))), []error{ErrMalformed}},
				{"payload size 2^32", c.signManifest(m.set(6, u(1<<32))), []error{ErrMalformed}},
				{"long slot", c.signManifest(m.set(8, tx("0123456789abcdefg"))), []error{ErrMalformed}},
				{"load address 2^32", c.signManifest(m.set(11, u(1<<32))), []error{ErrMalformed}},
				{"chunk size 1000", c.signManifest(m.set(9, cmap{{1, i(3)}, {2, u(1000)}, {3, bs(make([]byte, 7))}}.enc())), []error{ErrMalformed}},
				{"chunk size 128", c.signManifest(m.set(9, cmap{{1, i(3)}, {2, u(128)}, {3, bs(make([]byte, 7))}}.enc())), []error{ErrMalformed}},
				{"chunk size 131072", c.signManifest(m.set(9, cmap{{1, i(3)}, {2, u(131072)}, {3, bs(make([]byte, 7))}}.enc())), []error{ErrMalformed}},
				{"encryption alg 1", c.signManifest(m.set(9, cmap{{1, i(1)}, {2, u(4096)}, {3, bs(make([]byte, 7))}}.enc())), []error{ErrAlgorithm}},
				{"nonce prefix 8 bytes", c.signManifest(m.set(9, cmap{{1, i(3)}, {2, u(4096)}, {3, bs(make([]byte, 8))}}.enc())), []error{ErrMalformed}},
				{"encryption critical key", c.signManifest(m.set(9, cmap{{1, i(3)}, {2, u(4096)}, {3, bs(make([]byte, 7))}, {4, u(0)}}.enc())), []error{ErrUnknownCritical}},
				{"encryption not a map", c.signManifest(m.set(9, u(3))), []error{ErrMalformed}},
				// chunk-size has no default in the format (spec §5.1): every
				// encryption key is required.
				{"chunk size missing", c.signManifest(m.set(9, cmap{{1, i(3)}, {3, bs(make([]byte, 7))}}.enc())), []error{ErrMalformed}},
				{"encryption alg missing", c.signManifest(m.set(9, cmap{{2, u(4096)}, {3, bs(make([]byte, 7))}}.enc())), []error{ErrMalformed}},
				{"nonce prefix missing", c.signManifest(m.set(9, cmap{{1, i(3)}, {2, u(4096)}}.enc())), []error{ErrMalformed}},
				{"missing created", c.signManifest(m.del(10)), []error{ErrMalformed}},
				{"missing slot", c.signManifest(m.del(8)), []error{ErrMalformed}},
				{"load address and source format optional", c.signManifest(m.del(11).del(12)), nil},
				// The §1 ban on floats holds in ignored values too.
				{"float in an ignored key", c.signManifest(m.set(-1, []byte{0xf9, 0x3c, 0x00})), []error{ErrMalformed}},
				{"float nested in an ignored key", c.signManifest(m.set(-1, arr(u(1), []byte{0xfa, 0x3f, 0x80, 0, 0}))), []error{ErrMalformed}},
				{"undefined in an ignored key", c.signManifest(m.set(-1, []byte{0xf7})), []error{ErrMalformed}},
				{"indefinite length in an ignored key", c.signManifest(m.set(-1, []byte{0x5f, 0x41, 0x00, 0xff})), []error{ErrMalformed}},
				{"float in the unprotected header", withUnprot(cmap{{LabelKeyCert, bs(c.keyCert(kcImg))}, {-2, half}}.enc()), []error{ErrMalformed}},
				{"float under a text label in the unprotected header", withUnprot(append(cbor.AppendText(append(cbor.AppendMapHeader(nil, 2), cmap{{LabelKeyCert, bs(c.keyCert(kcImg))}}.enc()[1:]...), "x"), half...)), []error{ErrMalformed}},
				{"other unprotected labels ignored", withUnprot(cmap{{LabelKeyCert, bs(c.keyCert(kcImg))}, {-2, u(0)}, {7, tx("x")}}.enc()), nil},
				{"keycert: float in an ignored key", withKC(c.keyCert(kcImg.set(-1, half))), []error{ErrKeyCert, ErrMalformed}},
				{"trailing data", c.sign(c.img, ContentTypeManifest, append(m.enc(), 0), c.keyCert(kcImg)), []error{ErrTrailingData}},
				{"not a map", c.sign(c.img, ContentTypeManifest, arr(u(1)), c.keyCert(kcImg)), []error{ErrMalformed}},
				{"too large", c.signManifest(m.set(-3, bs(big))), []error{ErrTooLarge}},
				{"upk as manifest", c.signUPK(c.upkMap(p.manifest, RecipientClass, p.cek)), []error{ErrContentType}},
				{"signed by the update authority", c.sign(c.ua, ContentTypeManifest, m.enc(), c.keyCert(c.keyCertMap(RoleUpdateAuthority, c.ua))), []error{ErrWrongRole}},
				{"untagged", p.manifest[1:], []error{ErrMalformed}},
				{"empty", nil, []error{ErrMalformed}},
			}
			for _, tt := range tests {
				_, err := VerifyManifest(c.anchors, tt.msg)
				checkErr(t, tt.name, err, tt.want...)
			}
			// A text key is rejected: build it by hand.
			bad := append(cbor.AppendText(cbor.AppendMapHeader(nil, 1), "a"), 0)
			_, err := VerifyManifest(c.anchors, c.sign(c.img, ContentTypeManifest, bad, c.keyCert(kcImg)))
			checkErr(t, "text key", err, ErrMalformed)
			// Anchors of the other suite.
			a := *c.anchors
			a.Suite = SuiteP256 + SuiteEd25519 - s.suite
			_, err = VerifyManifest(&a, p.manifest)
			checkErr(t, "other suite", err, ErrAlgorithm)
		})
	}
}

func TestUPKRejects(t *testing.T) {
	for _, s := range suites {
		t.Run(s.name, func(t *testing.T) {
			c := newCtx(t, s.suite)
			p := c.build(3000, 1024)
			um := c.upkMap(p.manifest, RecipientDevice, p.cek)
			kid := KeyID(c.device.PublicKey().Bytes())
			rcp := cmap{{1, u(1)}, {2, bs(kid[:])}}
			wk := um.get(9)
			kcUA := c.keyCertMap(RoleUpdateAuthority, c.ua)
			// Replace parts of the wrapped key array.
			wrapped := func(prot, unprot, ct []byte) []byte { return arr(prot, unprot, ct) }
			d := cbor.NewDecoder(wk)
			d.ArrayHeader(3)
			protRaw, _ := d.RawItem()
			unprotRaw, _ := d.RawItem()
			ctRaw, _ := d.RawItem()
			tests := []struct {
				name string
				msg  []byte
				want []error
			}{
				{"valid", c.signUPK(um), nil},
				{"bad signature", flipLast(c.signUPK(um)), []error{ErrSignature}},
				{"keycert bad signature", c.sign(c.ua, ContentTypeUPK, um.enc(), flipLast(c.keyCert(kcUA))), []error{ErrKeyCert, ErrSignature}},
				{"keycert role 1", c.sign(c.ua, ContentTypeUPK, um.enc(), c.keyCert(kcUA.set(1, u(1)))), []error{ErrWrongRole}},
				{"signed by image key", c.sign(c.img, ContentTypeUPK, um.enc(), c.keyCert(c.keyCertMap(RoleImageSigning, c.img))), []error{ErrWrongRole}},
				{"manifest as upk", p.manifest, []error{ErrContentType}},
				{"wrong vendor", c.signUPK(um.set(4, bs(make([]byte, 16)))), []error{ErrVendor}},
				{"wrong class", c.signUPK(um.set(5, bs(make([]byte, 16)))), []error{ErrClass}},
				{"format 0", c.signUPK(um.set(1, u(0))), []error{ErrVersion}},
				{"unknown critical", c.signUPK(um.set(11, u(0))), []error{ErrUnknownCritical}},
				{"unknown negative ignored", c.signUPK(um.set(-11, u(0))), nil},
				{"float in an ignored key", c.signUPK(um.set(-11, []byte{0xf9, 0x3c, 0x00})), []error{ErrMalformed}},
				{"missing issued", c.signUPK(um.del(10)), []error{ErrMalformed}},
				{"missing not-before", c.signUPK(um.del(7)), []error{ErrMalformed}},
				{"recipient key-id missing", c.signUPK(um.set(6, cmap{{1, u(2)}}.enc())), []error{ErrMalformed}},
				{"duplicate key", c.signUPK(append(um, entry{7, u(0)})), []error{ErrMalformed}},
				{"not-before after not-after", c.signUPK(um.set(7, u(c.now+86401))), []error{ErrMalformed}},
				{"kind 1 without device id", c.signUPK(um.set(6, rcp.enc())), []error{ErrMalformed}},
				{"kind 2 with device id", c.signUPK(um.set(6, rcp.set(1, u(2)).set(3, bs([]byte("x"))).enc())), []error{ErrMalformed}},
				{"kind 4", c.signUPK(um.set(6, rcp.set(1, u(4)).enc())), []error{ErrMalformed}},
				{"device id 33 bytes", c.signUPK(um.set(6, rcp.set(3, bs(make([]byte, 33))).enc())), []error{ErrMalformed}},
				{"recipient critical key", c.signUPK(um.set(6, rcp.set(3, bs([]byte("x"))).set(4, u(0)).enc())), []error{ErrUnknownCritical}},
				{"wrapped key protected", c.signUPK(um.set(9, wrapped(bs([]byte{0xa1, 0x01, 0x38, 0x1d}), unprotRaw, ctRaw))), []error{ErrAlgorithm}},
				{"wrapped key 39 bytes", c.signUPK(um.set(9, wrapped(protRaw, unprotRaw, bs(make([]byte, 39))))), []error{ErrMalformed}},
				{"wrapped key 2 items", c.signUPK(um.set(9, arr(protRaw, unprotRaw))), []error{ErrMalformed}},
				{"ephemeral missing", c.signUPK(um.set(9, wrapped(protRaw, cmap{}.enc(), ctRaw))), []error{ErrMalformed}},
				{"ephemeral extra label", c.signUPK(um.set(9, wrapped(protRaw, cmap{{-1, extraLabel(t, unprotRaw)}}.enc(), ctRaw))), []error{ErrMalformed}},
				{"recipient unprotected extra label", c.signUPK(um.set(9, wrapped(protRaw, cmap{{-1, ephKey(t, unprotRaw)}, {5, u(0)}}.enc(), ctRaw))), []error{ErrMalformed}},
				{"recipient unprotected label -2", c.signUPK(um.set(9, wrapped(protRaw, cmap{{-2, ephKey(t, unprotRaw)}}.enc(), ctRaw))), []error{ErrMalformed}},
				{"recipient unprotected text label", c.signUPK(um.set(9, wrapped(protRaw, append(cbor.AppendText(cbor.AppendMapHeader(nil, 1), "a"), ephKey(t, unprotRaw)...), ctRaw))), []error{ErrMalformed}},
				{"recipient unprotected extra negative label", c.signUPK(um.set(9, wrapped(protRaw, cmap{{-1, ephKey(t, unprotRaw)}, {-5, u(0)}}.enc(), ctRaw))), []error{ErrMalformed}},
				{"recipient unprotected duplicate -1", c.signUPK(um.set(9, wrapped(protRaw, append(cmap{{-1, ephKey(t, unprotRaw)}}, entry{-1, ephKey(t, unprotRaw)}).enc(), ctRaw))), []error{ErrMalformed}},
			}
			for _, tt := range tests {
				_, err := VerifyUPK(c.anchors, tt.msg)
				checkErr(t, tt.name, err, tt.want...)
			}
			// The wrong suite of ephemeral key.
			o := newCtx(t, SuiteP256+SuiteEd25519-s.suite)
			oum := o.upkMap(p.manifest, RecipientDevice, p.cek)
			_, err := VerifyUPK(c.anchors, c.signUPK(um.set(9, oum.get(9))))
			checkErr(t, "ephemeral key of the other suite", err, ErrAlgorithm)
		})
	}
}

// ephKey extracts the encoded COSE_Key from the recipient unprotected map.
func ephKey(t *testing.T, unprot []byte) []byte {
	d := cbor.NewDecoder(unprot)
	d.MapHeader(1)
	d.Int()
	k, err := d.RawItem()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// extraLabel returns the COSE_Key with an additional label 2 (kid).
func extraLabel(t *testing.T, unprot []byte) []byte {
	k := ephKey(t, unprot)
	b := append([]byte{k[0] + 1}, k[1:]...) // one more entry (maps of < 23 entries)
	return append(b, cbor.AppendBytes(cbor.AppendUint(nil, 2), []byte("k"))...)
}

func TestUPKBinding(t *testing.T) {
	for _, s := range suites {
		t.Run(s.name, func(t *testing.T) {
			c := newCtx(t, s.suite)
			p := c.build(3000, 1024)
			m, err := VerifyManifest(c.anchors, p.manifest)
			if err != nil {
				t.Fatal(err)
			}
			p2 := c.build(3000, 1024)
			m2, err := VerifyManifest(c.anchors, p2.manifest)
			if err != nil {
				t.Fatal(err)
			}
			dev, err := VerifyUPK(c.anchors, c.signUPK(c.upkMap(p.manifest, RecipientDevice, p.cek)))
			if err != nil {
				t.Fatal(err)
			}
			cls, err := VerifyUPK(c.anchors, c.signUPK(c.upkMap(p.manifest, RecipientClass, p.cek)))
			if err != nil {
				t.Fatal(err)
			}
			checkErr(t, "other manifest", dev.CheckManifest(m2), ErrManifestMismatch)
			checkErr(t, "own manifest", dev.CheckManifest(m))
			mv := *m
			mv.VendorID[0] ^= 1
			checkErr(t, "vendor differs", dev.CheckManifest(&mv), ErrVendor)
			mc := *m
			mc.ClassID[0] ^= 1
			checkErr(t, "class differs", dev.CheckManifest(&mc), ErrClass)
			checkErr(t, "other device", dev.CheckDevice([]byte("device-0002")), ErrNotRecipient)
			checkErr(t, "class upk names no device", cls.CheckDevice([]byte("device-0002")))
			esc := *cls
			esc.Kind = RecipientEscrow
			checkErr(t, "escrow upk", esc.CheckDevice(c.deviceID), ErrNotRecipient)
			checkErr(t, "not yet valid", dev.CheckValidity(dev.NotBefore-1), ErrNotYetValid)
			checkErr(t, "first second", dev.CheckValidity(dev.NotBefore))
			checkErr(t, "last second", dev.CheckValidity(dev.NotAfter))
			checkErr(t, "expired", dev.CheckValidity(dev.NotAfter+1), ErrExpired)

			other := newAgreementKey(t, s.suite)
			_, err = dev.Unwrap(other)
			checkErr(t, "other device key", err, ErrNotRecipient)
			_, err = dev.Unwrap(c.classKey)
			checkErr(t, "class key on device upk", err, ErrNotRecipient)
			_, err = cls.Unwrap(c.device)
			checkErr(t, "device key on class upk", err, ErrNotRecipient)
			// A key that claims the right public key but holds another
			// private key fails the unwrap integrity check.
			_, err = dev.Unwrap(liar{pub: c.device.PublicKey(), priv: other})
			checkErr(t, "wrong private key", err, ErrUnwrap)
			bad := *dev
			bad.wrappedKey[3] ^= 1
			_, err = bad.Unwrap(c.device)
			checkErr(t, "wrapped key flipped", err, ErrUnwrap)
			bad = *dev
			bad.ephemeral[5] ^= 1
			_, err = bad.Unwrap(c.device)
			checkErr(t, "ephemeral key changed", err, ErrUnwrap)
			if s.suite == SuiteP256 {
				bad = *dev
				bad.ephemeral[64] ^= 1 // off the curve
				_, err = bad.Unwrap(c.device)
				checkErr(t, "ephemeral point off the curve", err, ErrUnwrap)
			} else {
				bad = *dev
				clear(bad.ephemeral[:32]) // low-order point: all-zero secret
				_, err = bad.Unwrap(c.device)
				checkErr(t, "low-order X25519 point", err, ErrUnwrap)
			}
			cek, err := dev.Unwrap(c.device)
			if err != nil || cek != p.cek {
				t.Fatalf("Unwrap = %v", err)
			}
		})
	}
}

// liar presents one public key and computes ECDH with another private key.
type liar struct {
	pub  *ecdh.PublicKey
	priv *ecdh.PrivateKey
}

func (l liar) PublicKey() *ecdh.PublicKey             { return l.pub }
func (l liar) ECDH(p *ecdh.PublicKey) ([]byte, error) { return l.priv.ECDH(p) }
