package trust

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/sbm-project/sbm/internal/atomicfile"
)

// ErrNotFileContext is returned by ImportKeys for a context whose keys
// are already in a token.
var ErrNotFileContext = errors.New("the context's keys are not in files")

// ImportOptions configures ImportKeys.
type ImportOptions struct {
	// Passphrase decrypts the keys of an encrypted context; required for
	// one.
	Passphrase []byte
	// PIN is the token PIN, used when the URI has neither pin-value nor
	// pin-source.
	PIN []byte
}

// ImportKeys moves the private keys of the file context in dir into the
// token named by uri (see InitOptions.PKCS11 for the labels and IDs):
// each key is created in the token (C_CreateObject, CKA_SENSITIVE, not
// CKA_EXTRACTABLE) and checked to sign, or derive, as the file key does;
// only then is context.toml rewritten (atomically) to name the token's
// keys, and only after that are the key files deleted. On error before the
// rewrite, the objects made in the token are deleted and the context is
// unchanged.
func ImportKeys(dir, uri string, opts *ImportOptions) error {
	if opts == nil {
		opts = &ImportOptions{}
	}
	pass := opts.Passphrase
	c, err := Open(dir, &OpenOptions{Passphrase: func() ([]byte, error) { return pass, nil }})
	if err != nil {
		return err
	}
	if c.keystore() != KeystoreFiles {
		return fmt.Errorf("%s: %w (keystore %s)", dir, ErrNotFileContext, c.keystore())
	}
	if c.cfg.Encrypted && len(pass) == 0 {
		return fmt.Errorf("%s: the context's keys are encrypted: %w", dir, ErrPassphraseRequired)
	}
	// Every file key, checked against the context's public material.
	type fileKey struct {
		name string
		loc  *string
		sign bool
		key  any
		pub  crypto.PublicKey
	}
	cfg := c.cfg
	keys := []*fileKey{
		{name: "root", loc: &cfg.Keys.Root, sign: true},
		{name: "image_signing", loc: &cfg.Keys.ImageSigning, sign: true},
		{name: "update_authority", loc: &cfg.Keys.UpdateAuthority, sign: true},
		{name: "device_ca", loc: &cfg.Keys.DeviceCA, sign: true},
		{name: "class_key_agreement", loc: &cfg.Keys.ClassKeyAgreement},
		{name: "escrow", loc: &cfg.Keys.Escrow},
	}
	var files []string
	// The other root slots' keys (successors, or earlier roots).
	cfg.Roots.Keys = slices.Clone(cfg.Roots.Keys)
	for i := range cfg.Roots.Keys {
		if i == int(cfg.Roots.Slot) {
			cfg.Roots.Keys[i] = "" // the current root's, set below
			continue
		}
		data, err := os.ReadFile(c.Path(cfg.Roots.Public[i]))
		if err != nil {
			return err
		}
		want, err := ParsePublicKeyPEM(data)
		if err != nil {
			return err
		}
		s, err := c.loadSigner(RootKey, cfg.Roots.Keys[i], want)
		if err != nil {
			return fmt.Errorf("root of slot %d: %w", i, err)
		}
		files = append(files, c.Path(cfg.Roots.Keys[i]))
		keys = append(keys, &fileKey{name: "root@" + strconv.Itoa(i), loc: &cfg.Roots.Keys[i], sign: true, key: s, pub: want})
	}
	roles := map[string]KeyRole{"root": RootKey, "image_signing": ImageSigningKey, "update_authority": UpdateAuthorityKey, "device_ca": DeviceCAKey}
	for _, k := range keys {
		if k.key != nil {
			continue // a root slot's key, loaded above
		}
		files = append(files, c.Path(*k.loc))
		if k.sign {
			s, err := c.Signer(roles[k.name])
			if err != nil {
				return err
			}
			k.key, k.pub = s, s.Public()
			continue
		}
		get := c.ClassKey
		if k.name == "escrow" {
			get = c.EscrowKey
		}
		ka, err := get()
		if err != nil {
			return err
		}
		k.key, k.pub = ka, ka.PublicKey()
	}

	tk, err := newTokenKeys(uri, c.cfg.Suite, opts.PIN)
	if err != nil {
		return err
	}
	defer tk.finish() // deletes what it imported unless committed
	for _, k := range keys {
		loc, tkey, err := tk.importKey(k.name, k.key, k.sign)
		if err != nil {
			return err
		}
		if err := checkImported(tkey, k.pub); err != nil {
			return fmt.Errorf("%s key imported into token %q: %w", k.name, tk.base.Token, err)
		}
		*k.loc = loc
	}
	if len(cfg.Roots.Keys) > 0 {
		cfg.Roots.Keys[cfg.Roots.Slot] = cfg.Keys.Root
	}
	cfg.Keystore = KeystorePKCS11
	cfg.Encrypted = false
	data, err := marshalConfig(&cfg)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(c.Path(ConfigFile), data, 0o644); err != nil {
		return err
	}
	tk.commit()
	// The token holds the keys and the context names them: the files go.
	var errs []error
	for _, f := range files {
		if err := os.Remove(f); err != nil && !os.IsNotExist(err) {
			errs = append(errs, err)
		}
	}
	os.Remove(filepath.Join(dir, "keys")) // only if empty
	if len(errs) > 0 {
		return fmt.Errorf("the keys are in the token and the context names them, but deleting the key files failed (delete them by hand): %w", errors.Join(errs...))
	}
	return nil
}

// checkImported checks that a token key signs (or derives) as the key
// whose public key is pub.
func checkImported(key any, pub crypto.PublicKey) error {
	msg := []byte("sbm import-keys check")
	switch k := key.(type) {
	case crypto.Signer:
		switch p := pub.(type) {
		case *ecdsa.PublicKey:
			d := sha256.Sum256(msg)
			sig, err := k.Sign(rand.Reader, d[:], crypto.SHA256)
			if err != nil {
				return err
			}
			if !ecdsa.VerifyASN1(p, d[:], sig) {
				return errors.New("its signature does not verify with the file key's public key")
			}
			return nil
		case ed25519.PublicKey:
			sig, err := k.Sign(rand.Reader, msg, crypto.Hash(0))
			if err != nil {
				return err
			}
			if !ed25519.Verify(p, msg, sig) {
				return errors.New("its signature does not verify with the file key's public key")
			}
			return nil
		}
	case KeyAgreer:
		p, ok := pub.(*ecdh.PublicKey)
		if !ok {
			break
		}
		peer, err := p.Curve().GenerateKey(rand.Reader)
		if err != nil {
			return err
		}
		z1, err := k.ECDH(peer.PublicKey())
		if err != nil {
			return err
		}
		z2, err := peer.ECDH(p)
		if err != nil {
			return err
		}
		if !bytes.Equal(z1, z2) {
			return errors.New("it derives another secret than the file key")
		}
		return nil
	}
	return fmt.Errorf("unexpected key %T for %T", key, pub)
}
