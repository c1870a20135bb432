//go:build cgo

package trust

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/ThalesGroup/crypto11"
	"github.com/miekg/pkcs11"
)

// Mechanisms and key types newer than github.com/miekg/pkcs11's constants
// (PKCS#11 v3.0).
const (
	ckkECEdwards              = 0x40
	ckkECMontgomery           = 0x41
	ckmECEdwardsKeyPairGen    = 0x1055
	ckmECMontgomeryKeyPairGen = 0x1056
	ckmEdDSA                  = 0x1057
)

// Curve OIDs of CKA_EC_PARAMS.
var (
	oidP256    = asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}
	oidX25519  = asn1.ObjectIdentifier{1, 3, 101, 110}
	oidEd25519 = asn1.ObjectIdentifier{1, 3, 101, 112}
)

// token is an open PKCS#11 token. ECDSA signing goes through crypto11 (its
// session pool); EdDSA, ECDH derivation, key generation and import use
// one session of github.com/miekg/pkcs11 on the same, already initialised,
// module.
type token struct {
	c11  *crypto11.Context
	p    *pkcs11.Ctx
	slot uint
	mu   sync.Mutex // serialises use of sess
	sess pkcs11.SessionHandle
	mech map[uint]bool
}

// openToken loads the module of u, finds its token and logs in with the
// PIN from u or ask.
func openToken(u *PKCS11URI, ask func() ([]byte, error)) (tokenStore, error) {
	if _, err := os.Stat(u.ModulePath); err != nil {
		return nil, fmt.Errorf("PKCS#11 module %s: %w", u.ModulePath, err)
	}
	pin, err := u.pin(ask)
	if err != nil {
		return nil, err
	}
	cfg := &crypto11.Config{Path: u.ModulePath, Pin: pin, MaxSessions: 4}
	if u.Serial != "" {
		cfg.TokenSerial = u.Serial
	} else {
		cfg.TokenLabel = u.Token
	}
	c11, err := crypto11.Configure(cfg)
	if err != nil {
		return nil, tokenError(u, err)
	}
	t := &token{c11: c11, mech: map[uint]bool{}}
	if err := t.openSession(u); err != nil {
		t.close()
		return nil, err
	}
	return t, nil
}

// tokenError turns the module's errors into the package's sentinels.
func tokenError(u *PKCS11URI, err error) error {
	var p11 pkcs11.Error
	switch {
	case errors.As(err, &p11) && (p11 == pkcs11.CKR_PIN_INCORRECT || p11 == pkcs11.CKR_PIN_LEN_RANGE):
		return fmt.Errorf("token %q: %w (%v)", u.Token, ErrWrongPIN, p11)
	case errors.As(err, &p11) && p11 == pkcs11.CKR_PIN_LOCKED:
		return fmt.Errorf("token %q: the PIN is locked (%v): %w", u.Token, p11, ErrWrongPIN)
	case strings.Contains(err.Error(), "could not find PKCS#11 token"):
		return fmt.Errorf("token %q in %s: %w", u.Token, u.ModulePath, ErrTokenNotFound)
	}
	return fmt.Errorf("token %q in %s: %w", u.Token, u.ModulePath, err)
}

// openSession opens the raw session on the module crypto11 initialised.
func (t *token) openSession(u *PKCS11URI) error {
	p := pkcs11.New(u.ModulePath)
	if p == nil {
		return fmt.Errorf("PKCS#11 module %s: cannot load it", u.ModulePath)
	}
	if err := p.Initialize(); err != nil && !errors.Is(err, pkcs11.Error(pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
		p.Destroy()
		return fmt.Errorf("PKCS#11 module %s: %w", u.ModulePath, err)
	}
	t.p = p
	slots, err := p.GetSlotList(true)
	if err != nil {
		return fmt.Errorf("list slots: %w", err)
	}
	found := false
	for _, s := range slots {
		ti, err := p.GetTokenInfo(s)
		if err != nil {
			continue
		}
		if u.Serial != "" && strings.TrimSpace(ti.SerialNumber) == u.Serial || u.Serial == "" && strings.TrimRight(ti.Label, " ") == u.Token {
			t.slot, found = s, true
			break
		}
	}
	if !found {
		return fmt.Errorf("token %q: %w", u.Token, ErrTokenNotFound)
	}
	if ms, err := p.GetMechanismList(t.slot); err == nil {
		for _, m := range ms {
			t.mech[m.Mechanism] = true
		}
	}
	// crypto11 has logged the application in: every session of this
	// process on the token shares that state.
	if t.sess, err = p.OpenSession(t.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION); err != nil {
		return fmt.Errorf("open session: %w", err)
	}
	return nil
}

func (t *token) close() error {
	if t.p != nil {
		if t.sess != 0 {
			t.p.CloseSession(t.sess)
		}
	}
	var err error
	if t.c11 != nil {
		err = t.c11.Close() // finalises the module when it is the last user
	}
	if t.p != nil {
		t.p.Destroy()
	}
	t.p, t.c11, t.sess = nil, nil, 0
	return err
}

// find returns the handles of the objects of class labelled label with
// CKA_ID id (either may be empty: not matched).
func (t *token) find(class uint, label string, id []byte) ([]pkcs11.ObjectHandle, error) {
	tmpl := []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, class)}
	if label != "" {
		tmpl = append(tmpl, pkcs11.NewAttribute(pkcs11.CKA_LABEL, label))
	}
	if len(id) > 0 {
		tmpl = append(tmpl, pkcs11.NewAttribute(pkcs11.CKA_ID, id))
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.p.FindObjectsInit(t.sess, tmpl); err != nil {
		return nil, err
	}
	hs, _, err := t.p.FindObjects(t.sess, 16)
	if ferr := t.p.FindObjectsFinal(t.sess); err == nil {
		err = ferr
	}
	return hs, err
}

// findOne returns the one object of class at loc.
func (t *token) findOne(class uint, loc *PKCS11URI) (pkcs11.ObjectHandle, error) {
	if loc.Object == "" && len(loc.ID) == 0 {
		return 0, fmt.Errorf("%w: the URI names no object= or id=", ErrBadURI)
	}
	hs, err := t.find(class, loc.Object, loc.ID)
	if err != nil {
		return 0, fmt.Errorf("find %s: %w", loc.Redacted(), err)
	}
	switch len(hs) {
	case 0:
		return 0, fmt.Errorf("%s: %w", describe(loc), ErrObjectNotFound)
	case 1:
		return hs[0], nil
	}
	return 0, fmt.Errorf("%s: %d objects match: give id= as well", describe(loc), len(hs))
}

func describe(loc *PKCS11URI) string {
	s := fmt.Sprintf("token %q", loc.Token)
	if loc.Object != "" {
		s += fmt.Sprintf(" object %q", loc.Object)
	}
	if len(loc.ID) > 0 {
		s += fmt.Sprintf(" id %x", loc.ID)
	}
	return s
}

func (t *token) attrs(h pkcs11.ObjectHandle, types ...uint) ([]*pkcs11.Attribute, error) {
	tmpl := make([]*pkcs11.Attribute, len(types))
	for i, ty := range types {
		tmpl[i] = pkcs11.NewAttribute(ty, nil)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.p.GetAttributeValue(t.sess, h, tmpl)
}

// publicKey reads the public key of the key pair at loc from its public
// object: ECDSA, Ed25519 or (ecdh) P-256 and X25519.
func (t *token) publicKey(loc *PKCS11URI, sign bool) (crypto.PublicKey, error) {
	h, err := t.findOne(pkcs11.CKO_PUBLIC_KEY, loc)
	if err != nil {
		return nil, fmt.Errorf("public half: %w", err)
	}
	a, err := t.attrs(h, pkcs11.CKA_EC_PARAMS, pkcs11.CKA_EC_POINT)
	if err != nil {
		return nil, fmt.Errorf("%s: read the public key: %w", describe(loc), err)
	}
	var oid asn1.ObjectIdentifier
	if _, err := asn1.Unmarshal(a[0].Value, &oid); err != nil {
		return nil, fmt.Errorf("%s: CKA_EC_PARAMS is not a named curve", describe(loc))
	}
	point := a[1].Value
	var inner []byte
	if rest, err := asn1.Unmarshal(point, &inner); err == nil && len(rest) == 0 {
		point = inner
	}
	switch {
	case oid.Equal(oidP256) && sign:
		k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", describe(loc), err)
		}
		return k, nil
	case oid.Equal(oidP256):
		return ecdh.P256().NewPublicKey(point)
	case oid.Equal(oidEd25519) && sign && len(point) == ed25519.PublicKeySize:
		return ed25519.PublicKey(point), nil
	case oid.Equal(oidX25519) && !sign:
		return ecdh.X25519().NewPublicKey(point)
	}
	return nil, fmt.Errorf("%s: unsupported curve %v", describe(loc), oid)
}

// signer implements tokenStore.
func (t *token) signer(loc *PKCS11URI, want crypto.PublicKey) (crypto.Signer, error) {
	h, err := t.findOne(pkcs11.CKO_PRIVATE_KEY, loc)
	if err != nil {
		return nil, err
	}
	a, err := t.attrs(h, pkcs11.CKA_KEY_TYPE)
	if err != nil {
		return nil, err
	}
	var s crypto.Signer
	switch kt := ulong(a[0].Value); kt {
	case pkcs11.CKK_EC:
		// crypto11 signs (CKM_ECDSA) and returns DER, as hostcose wants.
		if s, err = t.c11.FindKeyPair(loc.ID, labelBytes(loc.Object)); err != nil {
			return nil, fmt.Errorf("%s: %w", describe(loc), err)
		}
		if s == nil {
			return nil, fmt.Errorf("%s: %w", describe(loc), ErrObjectNotFound)
		}
	case ckkECEdwards:
		if !t.mech[ckmEdDSA] {
			return nil, fmt.Errorf("%s: the token does not offer CKM_EDDSA", describe(loc))
		}
		pub, err := t.publicKey(loc, true)
		if err != nil {
			return nil, err
		}
		ed, ok := pub.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("%s: not an Ed25519 key", describe(loc))
		}
		s = &edSigner{t: t, h: h, pub: ed}
	default:
		return nil, fmt.Errorf("%s: unsupported key type %#x", describe(loc), kt)
	}
	if want != nil {
		if e, ok := s.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !e.Equal(want) {
			return nil, fmt.Errorf("%s: the token's key is not the context's key", describe(loc))
		}
	}
	return s, nil
}

func labelBytes(l string) []byte {
	if l == "" {
		return nil
	}
	return []byte(l)
}

func ulong(b []byte) uint {
	var v uint
	for i := len(b) - 1; i >= 0; i-- { // native (little-endian) CK_ULONG
		v = v<<8 | uint(b[i])
	}
	return v
}

// edSigner signs with an Ed25519 key in the token (CKM_EDDSA, pure).
type edSigner struct {
	t   *token
	h   pkcs11.ObjectHandle
	pub ed25519.PublicKey
}

func (s *edSigner) Public() crypto.PublicKey { return s.pub }

// Sign signs message (opts must be crypto.Hash(0): pure Ed25519).
func (s *edSigner) Sign(_ io.Reader, message []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts != nil && opts.HashFunc() != 0 {
		return nil, errors.New("ed25519 token key: only pure Ed25519 (crypto.Hash(0)) is supported")
	}
	s.t.mu.Lock()
	defer s.t.mu.Unlock()
	if err := s.t.p.SignInit(s.t.sess, []*pkcs11.Mechanism{pkcs11.NewMechanism(ckmEdDSA, nil)}, s.h); err != nil {
		return nil, fmt.Errorf("CKM_EDDSA: %w", err)
	}
	sig, err := s.t.p.Sign(s.t.sess, message)
	if err != nil {
		return nil, fmt.Errorf("CKM_EDDSA: %w", err)
	}
	return sig, nil
}

// ecdhKey is a key-agreement key in the token: CKM_ECDH1_DERIVE (CKD_NULL)
// derives the raw shared secret as an extractable session secret key,
// whose value is read and the object destroyed.
type ecdhKey struct {
	t   *token
	h   pkcs11.ObjectHandle
	pub *ecdh.PublicKey
}

func (k *ecdhKey) PublicKey() *ecdh.PublicKey { return k.pub }

func (k *ecdhKey) ECDH(peer *ecdh.PublicKey) ([]byte, error) {
	if peer.Curve() != k.pub.Curve() {
		return nil, errors.New("ecdh: peer key on another curve")
	}
	params := pkcs11.NewECDH1DeriveParams(pkcs11.CKD_NULL, nil, peer.Bytes())
	tmpl := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, false),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32),
	}
	k.t.mu.Lock()
	defer k.t.mu.Unlock()
	sk, err := k.t.p.DeriveKey(k.t.sess, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_ECDH1_DERIVE, params)}, k.h, tmpl)
	if err != nil {
		return nil, fmt.Errorf("CKM_ECDH1_DERIVE: %w", err)
	}
	defer k.t.p.DestroyObject(k.t.sess, sk)
	a, err := k.t.p.GetAttributeValue(k.t.sess, sk, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
	if err != nil {
		return nil, fmt.Errorf("CKM_ECDH1_DERIVE: read the shared secret: %w", err)
	}
	z := a[0].Value
	if len(z) != 32 {
		return nil, fmt.Errorf("CKM_ECDH1_DERIVE: %d-byte shared secret, want 32", len(z))
	}
	if k.pub.Curve() == ecdh.X25519() && isZero(z) {
		return nil, errors.New("ecdh: low-order X25519 peer key")
	}
	return z, nil
}

func isZero(b []byte) bool {
	var acc byte
	for _, c := range b {
		acc |= c
	}
	return acc == 0
}

// keyAgreer implements tokenStore.
func (t *token) keyAgreer(loc *PKCS11URI, want *ecdh.PublicKey) (KeyAgreer, error) {
	h, err := t.findOne(pkcs11.CKO_PRIVATE_KEY, loc)
	if err != nil {
		return nil, err
	}
	pub, err := t.publicKey(loc, false)
	if err != nil {
		return nil, err
	}
	ep, ok := pub.(*ecdh.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%s: not a key-agreement key", describe(loc))
	}
	if want != nil && !ep.Equal(want) {
		return nil, fmt.Errorf("%s: the token's key is not the context's key", describe(loc))
	}
	return &ecdhKey{t: t, h: h, pub: ep}, nil
}

// exists implements tokenStore.
func (t *token) exists(label string) (bool, error) {
	for _, class := range []uint{pkcs11.CKO_PRIVATE_KEY, pkcs11.CKO_PUBLIC_KEY, pkcs11.CKO_SECRET_KEY} {
		hs, err := t.find(class, label, nil)
		if err != nil {
			return false, err
		}
		if len(hs) > 0 {
			return true, nil
		}
	}
	return false, nil
}

// destroy implements tokenStore.
func (t *token) destroy(label string, id []byte) error {
	var first error
	for _, class := range []uint{pkcs11.CKO_PRIVATE_KEY, pkcs11.CKO_PUBLIC_KEY} {
		hs, err := t.find(class, label, id)
		if err != nil {
			return err
		}
		for _, h := range hs {
			t.mu.Lock()
			if err := t.p.DestroyObject(t.sess, h); err != nil && first == nil {
				first = err
			}
			t.mu.Unlock()
		}
	}
	return first
}

// keySpec returns the key type, CKA_EC_PARAMS and generation mechanism of
// a suite's signing or key-agreement keys on this token.
func (t *token) keySpec(suite Suite, sign bool) (keyType uint, params []byte, mech uint, err error) {
	var oid asn1.ObjectIdentifier
	switch {
	case suite == SuiteP256:
		keyType, oid, mech = pkcs11.CKK_EC, oidP256, pkcs11.CKM_EC_KEY_PAIR_GEN
	case sign:
		if !t.mech[ckmEdDSA] || !t.mech[ckmECEdwardsKeyPairGen] {
			return 0, nil, 0, errors.New("the token does not offer Ed25519 (CKM_EDDSA, CKM_EC_EDWARDS_KEY_PAIR_GEN): use --suite p256")
		}
		keyType, oid, mech = ckkECEdwards, oidEd25519, ckmECEdwardsKeyPairGen
	case t.mech[ckmECMontgomeryKeyPairGen]:
		keyType, oid, mech = ckkECMontgomery, oidX25519, ckmECMontgomeryKeyPairGen
	case t.mech[ckmECEdwardsKeyPairGen]:
		// SoftHSM 2.6 makes X25519 keys with the Edwards mechanism and the
		// X25519 curve OID.
		keyType, oid, mech = ckkECEdwards, oidX25519, ckmECEdwardsKeyPairGen
	default:
		return 0, nil, 0, errors.New("the token does not offer X25519 keys: use --suite p256")
	}
	if !sign && !t.mech[pkcs11.CKM_ECDH1_DERIVE] {
		return 0, nil, 0, errors.New("the token does not offer CKM_ECDH1_DERIVE")
	}
	params, err = asn1.Marshal(oid)
	return keyType, params, mech, err
}

// templates returns the public and private templates of a new key pair.
func templates(keyType uint, params []byte, sign bool, label string, id []byte) (pub, priv []*pkcs11.Attribute) {
	use := uint(pkcs11.CKA_DERIVE)
	pubUse := uint(pkcs11.CKA_DERIVE)
	if sign {
		use, pubUse = pkcs11.CKA_SIGN, pkcs11.CKA_VERIFY
	}
	pub = []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, keyType),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, params),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
	}
	if sign {
		pub = append(pub, pkcs11.NewAttribute(pubUse, true))
	}
	priv = []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, keyType),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
		pkcs11.NewAttribute(use, true),
	}
	return pub, priv
}

// generate implements tokenStore.
func (t *token) generate(suite Suite, sign bool, label string, id []byte) (any, error) {
	keyType, params, mech, err := t.keySpec(suite, sign)
	if err != nil {
		return nil, err
	}
	pub, priv := templates(keyType, params, sign, label, id)
	t.mu.Lock()
	_, _, err = t.p.GenerateKeyPair(t.sess, []*pkcs11.Mechanism{pkcs11.NewMechanism(mech, nil)}, pub, priv)
	t.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("generate %s in the token: %w", label, err)
	}
	return t.load(label, id, sign)
}

// load returns the key pair labelled label as a crypto.Signer or KeyAgreer.
func (t *token) load(label string, id []byte, sign bool) (any, error) {
	loc := &PKCS11URI{Object: label, ID: id}
	if sign {
		return t.signer(loc, nil)
	}
	return t.keyAgreer(loc, nil)
}

// importKey implements tokenStore.
func (t *token) importKey(key any, sign bool, label string, id []byte) (any, error) {
	var suite Suite
	var value, point []byte
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		suite = SuiteP256
		ek, err := k.ECDH()
		if err != nil {
			return nil, err
		}
		value, point = ek.Bytes(), ek.PublicKey().Bytes()
	case ed25519.PrivateKey:
		suite = SuiteEd25519
		value, point = k.Seed(), k.Public().(ed25519.PublicKey)
	case *ecdh.PrivateKey:
		suite = SuiteP256
		if k.Curve() == ecdh.X25519() {
			suite = SuiteEd25519
		}
		value, point = k.Bytes(), k.PublicKey().Bytes()
	default:
		return nil, fmt.Errorf("cannot import a %T", key)
	}
	keyType, params, _, err := t.keySpec(suite, sign)
	if err != nil {
		return nil, err
	}
	wrapped, err := asn1.Marshal(point)
	if err != nil {
		return nil, err
	}
	pub, priv := templates(keyType, params, sign, label, id)
	pub = append(pub, pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, wrapped))
	priv = append(priv, pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, params), pkcs11.NewAttribute(pkcs11.CKA_VALUE, value))
	t.mu.Lock()
	_, err = t.p.CreateObject(t.sess, priv)
	what := "private key"
	if err == nil {
		what = "public key"
		_, err = t.p.CreateObject(t.sess, pub)
	}
	t.mu.Unlock()
	if err != nil {
		t.destroy(label, id)
		return nil, fmt.Errorf("import %s into the token (%s object): %w", label, what, err)
	}
	return t.load(label, id, sign)
}

// readValue tries to read a private key's CKA_VALUE; the token must refuse
// (used by the tests to show keys are not extractable).
func (t *token) readValue(loc *PKCS11URI) ([]byte, error) {
	h, err := t.findOne(pkcs11.CKO_PRIVATE_KEY, loc)
	if err != nil {
		return nil, err
	}
	a, err := t.attrs(h, pkcs11.CKA_VALUE)
	if err != nil {
		if errors.Is(err, pkcs11.Error(pkcs11.CKR_ATTRIBUTE_SENSITIVE)) {
			return nil, fmt.Errorf("%s: %w (%v)", describe(loc), ErrNotExportable, err)
		}
		return nil, err
	}
	return a[0].Value, nil
}
