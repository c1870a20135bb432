package trust

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/BurntSushi/toml"
)

// Open opens the security context in dir and loads its public material.
func Open(dir string, opts *OpenOptions) (*Context, error) {
	if opts == nil {
		opts = &OpenOptions{}
	}
	c := &Context{dir: dir, passphrase: opts.Passphrase, signers: map[KeyRole]crypto.Signer{}, agreers: map[string]KeyAgreer{}}
	data, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("%s is not a security context (no %s)", dir, ConfigFile)
		}
		return nil, err
	}
	md, err := toml.Decode(string(data), &c.cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, ConfigFile), err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return nil, fmt.Errorf("%s: unknown setting %q", filepath.Join(dir, ConfigFile), und[0].String())
	}
	if c.cfg.Format != 1 {
		return nil, fmt.Errorf("%s: unsupported context format %d", filepath.Join(dir, ConfigFile), c.cfg.Format)
	}
	if _, err := ParseSuite(string(c.cfg.Suite)); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, ConfigFile), err)
	}
	if err := c.checkKeystore(); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, ConfigFile), err)
	}
	if err := c.loadPublic(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Context) loadPublic() error {
	p := &c.cfg.Public
	var err error
	if c.rootCert, err = c.loadCert(p.RootCertificate); err != nil {
		return err
	}
	if c.deviceCACert, err = c.loadCert(p.DeviceCACertificate); err != nil {
		return err
	}
	if err := c.deviceCACert.CheckSignatureFrom(c.rootCert); err != nil {
		return fmt.Errorf("device CA certificate is not signed by the root: %w", err)
	}
	if s, err := suiteOf(c.rootCert.PublicKey); err != nil || s != c.cfg.Suite {
		return fmt.Errorf("root certificate key does not match suite %s", c.cfg.Suite)
	}
	if c.imageKeyCert, err = os.ReadFile(c.Path(p.ImageSigningKeyCert)); err != nil {
		return err
	}
	if c.updateKeyCert, err = os.ReadFile(c.Path(p.UpdateAuthorityKeyCert)); err != nil {
		return err
	}
	if c.classPub, err = c.loadKAPublic(p.ClassKeyAgreement); err != nil {
		return err
	}
	if c.escrowPub, err = c.loadKAPublic(p.Escrow); err != nil {
		return err
	}
	c.rootTransition = nil
	if t := c.cfg.Roots.Transition; t != "" {
		if c.rootTransition, err = os.ReadFile(c.Path(t)); err != nil {
			return err
		}
	}
	return nil
}

func (c *Context) loadCert(rel string) (*x509.Certificate, error) {
	data, err := os.ReadFile(c.Path(rel))
	if err != nil {
		return nil, err
	}
	certs, err := ParseCertificatesPEM(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Path(rel), err)
	}
	return certs[0], nil
}

func (c *Context) loadKAPublic(rel string) (*ecdh.PublicKey, error) {
	data, err := os.ReadFile(c.Path(rel))
	if err != nil {
		return nil, err
	}
	pub, err := ParsePublicKeyPEM(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Path(rel), err)
	}
	k, err := KeyAgreementPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Path(rel), err)
	}
	if k.Curve() != c.cfg.Suite.KeyAgreementCurve() {
		return nil, fmt.Errorf("%s: key-agreement key does not match suite %s", c.Path(rel), c.cfg.Suite)
	}
	return k, nil
}

// KeyAgreementPublicKey converts a parsed public key to an ECDH key.
func KeyAgreementPublicKey(pub crypto.PublicKey) (*ecdh.PublicKey, error) {
	switch k := pub.(type) {
	case *ecdh.PublicKey:
		return k, nil
	case *ecdsa.PublicKey:
		return k.ECDH()
	}
	return nil, fmt.Errorf("not a key-agreement public key: %T", pub)
}

// Path returns the absolute location of a context-relative path.
func (c *Context) Path(rel string) string {
	if filepath.IsAbs(rel) {
		return rel
	}
	return filepath.Join(c.dir, rel)
}

// Dir returns the context directory.
func (c *Context) Dir() string { return c.dir }

// Suite returns the context's algorithm suite.
func (c *Context) Suite() Suite { return c.cfg.Suite }

// VendorID returns the vendor UUID.
func (c *Context) VendorID() UUID { return c.cfg.VendorID }

// ClassID returns the device-class UUID.
func (c *Context) ClassID() UUID { return c.cfg.ClassID }

// Encrypted reports whether the private keys are passphrase-protected.
func (c *Context) Encrypted() bool { return c.cfg.Encrypted }

// RootCertificate returns the self-signed root CA certificate.
func (c *Context) RootCertificate() *x509.Certificate { return c.rootCert }

// RootPublicKey returns the root public key, the device's trust anchor.
func (c *Context) RootPublicKey() crypto.PublicKey { return c.rootCert.PublicKey }

// DeviceCACertificate returns the device CA certificate.
func (c *Context) DeviceCACertificate() *x509.Certificate { return c.deviceCACert }

// CAChainPath returns the path of the PEM file holding the device CA and
// root certificates (for openssl verify -CAfile).
func (c *Context) CAChainPath() string { return c.Path(c.cfg.Public.CAChain) }

// ImageSigningKeyCert returns the key certificate of the image-signing key.
func (c *Context) ImageSigningKeyCert() []byte { return c.imageKeyCert }

// UpdateAuthorityKeyCert returns the key certificate of the
// update-authority key.
func (c *Context) UpdateAuthorityKeyCert() []byte { return c.updateKeyCert }

// ClassPublicKey returns the device class's key-agreement public key.
func (c *Context) ClassPublicKey() *ecdh.PublicKey { return c.classPub }

// EscrowPublicKey returns the context's escrow key-agreement public key.
func (c *Context) EscrowPublicKey() *ecdh.PublicKey { return c.escrowPub }

func (c *Context) getPassphrase() ([]byte, error) {
	if !c.cfg.Encrypted {
		return nil, nil
	}
	if c.pass != nil {
		return c.pass, nil
	}
	if c.passphrase == nil {
		return nil, fmt.Errorf("the context's keys are encrypted: %w", ErrPassphraseRequired)
	}
	p, err := c.passphrase()
	if err != nil {
		return nil, err
	}
	if len(p) == 0 {
		return nil, fmt.Errorf("the context's keys are encrypted: %w", ErrPassphraseRequired)
	}
	c.pass = p
	return p, nil
}

// keyPath returns the configured location of a private key. A location
// with a URI scheme (such as pkcs11:) names a key held by a token.
func (c *Context) keyPath(role KeyRole) string {
	k := &c.cfg.Keys
	switch role {
	case RootKey:
		return k.Root
	case ImageSigningKey:
		return k.ImageSigning
	case UpdateAuthorityKey:
		return k.UpdateAuthority
	case DeviceCAKey:
		return k.DeviceCA
	}
	return ""
}

// Signer returns the private key of role as a crypto.Signer, decrypting it
// on first use.
func (c *Context) Signer(role KeyRole) (crypto.Signer, error) {
	if s, ok := c.signers[role]; ok {
		return s, nil
	}
	loc := c.keyPath(role)
	if loc == "" {
		return nil, fmt.Errorf("unknown key role %v", role)
	}
	s, err := c.loadSigner(role, loc, c.expectedPublic(role))
	if err != nil {
		return nil, err
	}
	if err := c.checkSigner(role, s); err != nil {
		return nil, err
	}
	c.signers[role] = s
	return s, nil
}

// loadSigner loads the signing key of role at loc (a key file, or a
// pkcs11: URI whose key has public key want, if known).
func (c *Context) loadSigner(role KeyRole, loc string, want crypto.PublicKey) (crypto.Signer, error) {
	var s crypto.Signer
	if c.keystore() == KeystorePKCS11 {
		tok, _, err := c.token()
		if err != nil {
			return nil, fmt.Errorf("%s key: %w", role, err)
		}
		u, err := ParsePKCS11URI(loc)
		if err != nil {
			return nil, fmt.Errorf("%s key: %w", role, err)
		}
		if s, err = tok.signer(u, want); err != nil {
			return nil, fmt.Errorf("%s key: %w", role, err)
		}
	} else {
		pass, err := c.getPassphrase()
		if err != nil {
			return nil, err
		}
		if s, err = LoadSigner(c.Path(loc), pass); err != nil {
			return nil, fmt.Errorf("%s key: %w", role, err)
		}
	}
	return s, nil
}

// checkSigner makes sure a loaded private key matches the context's public
// material, so a swapped key file is caught before it signs anything.
func (c *Context) checkSigner(role KeyRole, s crypto.Signer) error {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	var want crypto.PublicKey
	switch role {
	case RootKey:
		want = c.rootCert.PublicKey
	case DeviceCAKey:
		want = c.deviceCACert.PublicKey
	default:
		return nil // checked against the key certificate by its users
	}
	if e, ok := s.Public().(equaler); !ok || !e.Equal(want) {
		return fmt.Errorf("%s key does not match its certificate", role)
	}
	return nil
}

// ClassKey returns the device class's key-agreement private key. Its
// value can be had (for provisioning devices with it) only from a file
// context, through ExportClassKey.
func (c *Context) ClassKey() (KeyAgreer, error) {
	return c.loadKA("class key-agreement", c.cfg.Keys.ClassKeyAgreement, c.classPub)
}

// EscrowKey returns the escrow key-agreement private key.
func (c *Context) EscrowKey() (KeyAgreer, error) {
	return c.loadKA("escrow", c.cfg.Keys.Escrow, c.escrowPub)
}

func (c *Context) loadKA(what, loc string, pub *ecdh.PublicKey) (KeyAgreer, error) {
	if k, ok := c.agreers[what]; ok {
		return k, nil
	}
	var k KeyAgreer
	if c.keystore() == KeystorePKCS11 {
		tok, _, err := c.token()
		if err != nil {
			return nil, fmt.Errorf("%s key: %w", what, err)
		}
		u, err := ParsePKCS11URI(loc)
		if err != nil {
			return nil, fmt.Errorf("%s key: %w", what, err)
		}
		if k, err = tok.keyAgreer(u, pub); err != nil {
			return nil, fmt.Errorf("%s key: %w", what, err)
		}
	} else {
		pass, err := c.getPassphrase()
		if err != nil {
			return nil, err
		}
		fk, err := LoadKeyAgreementKey(c.Path(loc), pass)
		if err != nil {
			return nil, fmt.Errorf("%s key: %w", what, err)
		}
		k = fk
	}
	if !k.PublicKey().Equal(pub) {
		return nil, errors.New(what + " key does not match its public key")
	}
	c.agreers[what] = k
	return k, nil
}

// expectedPublic returns the public key a signing key of role must have,
// from the context's X.509 certificates, or nil.
func (c *Context) expectedPublic(role KeyRole) crypto.PublicKey {
	switch role {
	case RootKey:
		return c.rootCert.PublicKey
	case DeviceCAKey:
		return c.deviceCACert.PublicKey
	}
	return nil // checked against the key certificate by its users
}

// checkKeystore checks that the key locations fit the keystore.
func (c *Context) checkKeystore() error {
	k := &c.cfg.Keys
	locs := []string{k.Root, k.ImageSigning, k.UpdateAuthority, k.DeviceCA, k.ClassKeyAgreement, k.Escrow}
	switch c.keystore() {
	case KeystoreFiles:
		for _, l := range locs {
			if isURI(l) {
				return fmt.Errorf("key %q is a URI but the keystore is files (set keystore = \"pkcs11\")", l)
			}
		}
	case KeystorePKCS11:
		if c.cfg.Encrypted {
			return errors.New("a pkcs11 keystore cannot be encrypted = true")
		}
		for _, l := range locs {
			if _, err := ParsePKCS11URI(l); err != nil {
				return fmt.Errorf("key %q: %w", l, err)
			}
		}
	default:
		return fmt.Errorf("unknown keystore %q (want files or pkcs11)", c.cfg.Keystore)
	}
	return nil
}
