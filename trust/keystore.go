package trust

import (
	"crypto"
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"

	"github.com/sbm-project/sbm/internal/secpkg"
)

// KeyAgreer is a key-agreement private key (ECDH P-256 or X25519) used only
// through its public key and the raw shared secret: *ecdh.PrivateKey
// implements it, and so does a key held by a PKCS#11 token, which derives
// the secret inside the token. It is the interface the package verifier
// unwraps UPKs with (secpkg.KeyAgreement).
type KeyAgreer = secpkg.KeyAgreement

// Keystore names where a context's private keys live (context.toml
// "keystore").
type Keystore string

const (
	// KeystoreFiles keeps every private key in a PKCS#8 PEM file in the
	// context directory (the default).
	KeystoreFiles Keystore = "files"
	// KeystorePKCS11 keeps every private key in a PKCS#11 token; the
	// context records a pkcs11: URI per key (RFC 7512) and nothing private.
	KeystorePKCS11 Keystore = "pkcs11"
)

// Errors of the keystores.
var (
	// ErrNotExportable is returned when a private key held by a token is
	// asked for its value (CKA_SENSITIVE, not CKA_EXTRACTABLE).
	ErrNotExportable = errors.New("the token marks it not extractable")
	// ErrNoCgo is returned by every PKCS#11 operation of a binary built
	// without cgo.
	ErrNoCgo = errors.New("this sbm was built without cgo: PKCS#11 keystores need a cgo build")
	// ErrWrongPIN is returned when the token refuses the PIN.
	ErrWrongPIN = errors.New("the token refused the PIN")
	// ErrPINRequired is returned when a token needs a PIN and none was
	// given (no pin-value or pin-source in the URI, no PIN file).
	ErrPINRequired = errors.New("the token needs a PIN: give pin-source=FILE in the URI or a PIN file")
	// ErrTokenNotFound is returned when no token matches the URI.
	ErrTokenNotFound = errors.New("no PKCS#11 token matches the URI")
	// ErrObjectNotFound is returned when a key named in context.toml is not
	// in the token.
	ErrObjectNotFound = errors.New("no such key object in the token")
	// ErrObjectExists is returned when a token already holds an object
	// with a label a new context wants.
	ErrObjectExists = errors.New("the token already holds an object with this label")
)

// tokenStore is an open PKCS#11 token (see pkcs11_cgo.go).
type tokenStore interface {
	// signer returns the signing key at loc, whose public key must be pub.
	signer(loc *PKCS11URI, pub crypto.PublicKey) (crypto.Signer, error)
	// keyAgreer returns the key-agreement key at loc, whose public key
	// must be pub.
	keyAgreer(loc *PKCS11URI, pub *ecdh.PublicKey) (KeyAgreer, error)
	// generate creates a new key pair of suite in the token (sensitive,
	// not extractable), labelled label with CKA_ID id: a signing key when
	// sign is set, else a key-agreement key. It returns a crypto.Signer or
	// a KeyAgreer.
	generate(suite Suite, sign bool, label string, id []byte) (any, error)
	// importKey creates key (an *ecdsa.PrivateKey, ed25519.PrivateKey or
	// *ecdh.PrivateKey) in the token, sensitive and not extractable, and
	// returns it as a crypto.Signer or KeyAgreer held by the token.
	importKey(key any, sign bool, label string, id []byte) (any, error)
	// exists reports whether the token holds an object labelled label.
	exists(label string) (bool, error)
	// destroy deletes the objects labelled label with CKA_ID id.
	destroy(label string, id []byte) error
	// close logs out and releases the module.
	close() error
}

// keystore returns the context's keystore kind.
func (c *Context) keystore() Keystore {
	if c.cfg.Keystore == "" {
		return KeystoreFiles
	}
	return c.cfg.Keystore
}

// Keystore returns where the context's private keys live.
func (c *Context) Keystore() Keystore { return c.keystore() }

// isURI reports whether a key location is a URI (pkcs11:…) rather than a
// file path.
func isURI(loc string) bool {
	return strings.HasPrefix(loc, "pkcs11:")
}

// token opens (once) the token named by the context's key locations.
func (c *Context) token() (tokenStore, *PKCS11URI, error) {
	loc, err := ParsePKCS11URI(c.cfg.Keys.Root)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: keys.root: %w", c.Path(ConfigFile), err)
	}
	if c.tok != nil {
		return c.tok, loc, nil
	}
	t, err := openToken(loc, c.passphrase)
	if err != nil {
		return nil, nil, err
	}
	c.tok = t
	return t, loc, nil
}

// Close releases the context's token session, if one was opened. File
// contexts need no Close, but calling it is harmless.
func (c *Context) Close() error {
	if c.tok == nil {
		return nil
	}
	err := c.tok.close()
	c.tok = nil
	c.signers = map[KeyRole]crypto.Signer{}
	c.agreers = map[string]KeyAgreer{}
	return err
}

// ExportClassKey returns the raw class key-agreement private key, which
// provisioning with --class-key sends into devices. A token-held class key
// cannot be exported: the error wraps ErrNotExportable.
func (c *Context) ExportClassKey() ([]byte, error) {
	if isURI(c.cfg.Keys.ClassKeyAgreement) {
		return nil, fmt.Errorf("the class key is in a token and cannot be exported: provision without --class-key or use a file context (%w)", ErrNotExportable)
	}
	k, err := c.ClassKey()
	if err != nil {
		return nil, err
	}
	fk, ok := k.(*ecdh.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("class key: %w", ErrNotExportable)
	}
	return fk.Bytes(), nil
}

// tokenKeys makes a new context's keys in a token.
type tokenKeys struct {
	tok       tokenStore
	base      *PKCS11URI
	suite     Suite
	prefix    string
	made      []madeKey
	committed bool
}

type madeKey struct {
	label string
	id    []byte
}

// keyRoleNames lists the Keys fields in the order their CKA_ID suffix
// bytes are given (1…6).
var keyRoleNames = []string{"root", "image_signing", "update_authority", "device_ca", "class_key_agreement", "escrow"}

// newTokenKeys opens the token of uri for a new context and checks that
// it holds none of the labels the context would use.
func newTokenKeys(uri string, suite Suite, pin []byte) (*tokenKeys, error) {
	u, err := ParsePKCS11URI(uri)
	if err != nil {
		return nil, err
	}
	t, err := openToken(u, func() ([]byte, error) { return pin, nil })
	if err != nil {
		return nil, err
	}
	tk := &tokenKeys{tok: t, base: u, suite: suite, prefix: u.Object}
	if tk.prefix == "" {
		tk.prefix = "sbm"
	}
	for _, name := range keyRoleNames {
		label := tk.label(name)
		ok, err := t.exists(label)
		if err != nil {
			t.close()
			return nil, fmt.Errorf("token %q: %w", u.Token, err)
		}
		if ok {
			t.close()
			return nil, fmt.Errorf("token %q, label %q: %w (give another object= prefix, or delete it)", u.Token, label, ErrObjectExists)
		}
	}
	return tk, nil
}

// label returns the token label of the key of role name.
func (tk *tokenKeys) label(name string) string {
	return tk.prefix + "-" + strings.TrimSuffix(keyFileName(name), ".key")
}

// id returns a CKA_ID for the key of role name.
func (tk *tokenKeys) id(name string) ([]byte, error) {
	if len(tk.base.ID) > 0 {
		for i, n := range keyRoleNames {
			if n == name {
				return append(append([]byte(nil), tk.base.ID...), byte(i+1)), nil
			}
		}
	}
	id := make([]byte, 16)
	_, err := rand.Read(id)
	return id, err
}

func (tk *tokenKeys) newKey(name string, sign bool) (string, any, error) {
	label := tk.label(name)
	id, err := tk.id(name)
	if err != nil {
		return "", nil, err
	}
	tk.made = append(tk.made, madeKey{label, id})
	key, err := tk.tok.generate(tk.suite, sign, label, id)
	if err != nil {
		return "", nil, fmt.Errorf("token %q: %w", tk.base.Token, err)
	}
	return tk.base.withObject(label, id, "private").Redacted(), key, nil
}

func (tk *tokenKeys) commit() { tk.committed = true }

// finish deletes the keys made unless commit was called, and closes the
// token.
func (tk *tokenKeys) finish() {
	if !tk.committed {
		for _, m := range tk.made {
			tk.tok.destroy(m.label, m.id)
		}
	}
	tk.tok.close()
}

// importKey creates key (a file context's key of role name) in the token
// and returns its location and the token's key.
func (tk *tokenKeys) importKey(name string, key any, sign bool) (string, any, error) {
	label := tk.label(name)
	id, err := tk.id(name)
	if err != nil {
		return "", nil, err
	}
	tk.made = append(tk.made, madeKey{label, id})
	tkey, err := tk.tok.importKey(key, sign, label, id)
	if err != nil {
		return "", nil, fmt.Errorf("token %q: %w", tk.base.Token, err)
	}
	return tk.base.withObject(label, id, "private").Redacted(), tkey, nil
}
