// Package trust is the OEM's security context: the root key and its
// certificate, the image-signing and update-authority keys with their key
// certificates, the device CA, the vendor and device-class IDs, and the
// class and escrow key-agreement keys.
//
// A context is a directory holding a context.toml file, PKCS#8 PEM private
// keys (mode 0600, optionally encrypted with a passphrase) and public
// certificates, or a context.toml naming keys held by a PKCS#11 token
// (keystore = "pkcs11"). Private keys are only ever used through
// crypto.Signer and KeyAgreer, so that a hardware security module can hold
// them.
package trust

import (
	"crypto"
	"crypto/ecdh"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/sbm-project/sbm/internal/atomicfile"
)

// ConfigFile is the name of the context file inside a context directory.
const ConfigFile = "context.toml"

// ErrExists is returned by Init when the directory already holds a context
// or any other file.
var ErrExists = errors.New("refusing to overwrite: directory exists and is not empty")

// KeyRole names one of the context's signing keys.
type KeyRole int

const (
	// RootKey signs the root certificate, the device CA certificate and
	// key certificates. Its key ID is the root-of-trust hash in device fuses.
	RootKey KeyRole = iota
	// ImageSigningKey signs manifests.
	ImageSigningKey
	// UpdateAuthorityKey signs Update Protection Keys.
	UpdateAuthorityKey
	// DeviceCAKey issues device certificates.
	DeviceCAKey
)

func (r KeyRole) String() string {
	switch r {
	case RootKey:
		return "root"
	case ImageSigningKey:
		return "image-signing"
	case UpdateAuthorityKey:
		return "update-authority"
	case DeviceCAKey:
		return "device-ca"
	}
	return fmt.Sprintf("KeyRole(%d)", int(r))
}

// config is the content of context.toml. Paths are relative to the context
// directory.
type config struct {
	Format       int       `toml:"format"`
	Suite        Suite     `toml:"suite"`
	VendorID     UUID      `toml:"vendor_id"`
	ClassID      UUID      `toml:"class_id"`
	Organization string    `toml:"organization"`
	Created      time.Time `toml:"created"`
	Encrypted    bool      `toml:"encrypted"`
	// Keystore is "files" (or empty) or "pkcs11"; with pkcs11 every
	// Keys entry is a pkcs11: URI.
	Keystore Keystore `toml:"keystore,omitempty"`
	Keys     struct {
		Root              string `toml:"root"`
		ImageSigning      string `toml:"image_signing"`
		UpdateAuthority   string `toml:"update_authority"`
		DeviceCA          string `toml:"device_ca"`
		ClassKeyAgreement string `toml:"class_key_agreement"`
		Escrow            string `toml:"escrow"`
	} `toml:"keys"`
	Public struct {
		RootCertificate        string `toml:"root_certificate"`
		DeviceCACertificate    string `toml:"device_ca_certificate"`
		CAChain                string `toml:"ca_chain"`
		ImageSigningKeyCert    string `toml:"image_signing_keycert"`
		UpdateAuthorityKeyCert string `toml:"update_authority_keycert"`
		ClassKeyAgreement      string `toml:"class_key_agreement"`
		Escrow                 string `toml:"escrow"`
	} `toml:"public"`
	// Epochs are the key epochs of the current image-signing and
	// update-authority keys (their key certificates' key 6) and the
	// number of device CA rotations (Rotate).
	Epochs struct {
		ImageSigning    uint8 `toml:"image_signing,omitempty"`
		UpdateAuthority uint8 `toml:"update_authority,omitempty"`
		DeviceCA        uint8 `toml:"device_ca,omitempty"`
	} `toml:"epochs,omitempty"`
	// Roots are the root keys of the devices' root-key fuse slots
	// (docs/keys.md, "Root key rotation"): Keys[i] and Public[i] (a PEM
	// public key file) are slot i's; Slot is the current one (Keys.Root is
	// Keys[Slot]); Transition is the statement by which the previous root
	// handed over to it, carried by every package. A context made before
	// root slots existed has none: one root, slot 0.
	Roots struct {
		Slot       uint8    `toml:"slot,omitempty"`
		Keys       []string `toml:"keys,omitempty"`
		Public     []string `toml:"public,omitempty"`
		Transition string   `toml:"transition,omitempty"`
	} `toml:"roots,omitempty"`
}

// Context is an opened security context. Public material is loaded by Open;
// private keys are loaded (and decrypted) on first use.
type Context struct {
	dir        string
	cfg        config
	passphrase func() ([]byte, error)
	pass       []byte

	rootCert, deviceCACert      *x509.Certificate
	imageKeyCert, updateKeyCert []byte
	classPub, escrowPub         *ecdh.PublicKey
	rootTransition              []byte
	signers                     map[KeyRole]crypto.Signer
	agreers                     map[string]KeyAgreer
	tok                         tokenStore
}

// InitOptions configures Init.
type InitOptions struct {
	// Suite defaults to SuiteP256.
	Suite Suite
	// VendorID and ClassID default to random UUIDs.
	VendorID, ClassID *UUID
	// Organization is written into certificate subjects; default "SBM OEM".
	Organization string
	// Passphrase, if not empty, encrypts every private key. With PKCS11
	// it is instead the token PIN, used when the URI has neither pin-value
	// nor pin-source.
	Passphrase []byte
	// PKCS11, if not empty, is an RFC 7512 pkcs11: URI naming a token
	// (token=, module-path=, and pin-value= or pin-source=): every private
	// key is generated in it (CKA_TOKEN, CKA_SENSITIVE, not
	// CKA_EXTRACTABLE) and context.toml records one URI per key, without
	// the PIN value. object= is the prefix of the keys' labels (default
	// "sbm": sbm-root, sbm-image-signing, …); id=, if given, the prefix of
	// their CKA_IDs (one byte per key follows it), else the IDs are random.
	// Nothing private is written to the directory.
	PKCS11 string
	// Now defaults to time.Now.
	Now func() time.Time
}

// OpenOptions configures Open.
type OpenOptions struct {
	// Passphrase is called once, the first time an encrypted private key
	// is needed.
	Passphrase func() ([]byte, error)
}

// Init creates a new security context in dir, which must not exist or be
// empty. The context appears atomically: on error nothing is left behind.
func Init(dir string, opts *InitOptions) (*Context, error) {
	if opts == nil {
		opts = &InitOptions{}
	}
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return nil, fmt.Errorf("%s: %w", dir, ErrExists)
	} else if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	suite := opts.Suite
	if suite == "" {
		suite = SuiteP256
	}
	if _, err := ParseSuite(string(suite)); err != nil {
		return nil, err
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	t := now().UTC().Truncate(time.Second)
	var cfg config
	cfg.Format = 1
	cfg.Suite = suite
	cfg.Organization = opts.Organization
	if cfg.Organization == "" {
		cfg.Organization = "SBM OEM"
	}
	cfg.Created = t
	cfg.Encrypted = len(opts.Passphrase) > 0 && opts.PKCS11 == ""
	cfg.VendorID, cfg.ClassID = NewUUID(), NewUUID()
	if opts.VendorID != nil {
		cfg.VendorID = *opts.VendorID
	}
	if opts.ClassID != nil {
		cfg.ClassID = *opts.ClassID
	}
	p := &cfg.Public
	p.RootCertificate, p.DeviceCACertificate, p.CAChain = "root.crt", "device-ca.crt", "ca-chain.pem"
	p.ImageSigningKeyCert, p.UpdateAuthorityKeyCert = "image-signing.keycert", "update-authority.keycert"
	p.ClassKeyAgreement, p.Escrow = "class-ka.pub", "escrow.pub"

	// Build the context in a temporary sibling directory and rename it into
	// place, so that a failure never leaves a half-made context.
	parent := filepath.Dir(filepath.Clean(dir))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	pass := opts.Passphrase
	var keys keyMaker
	if opts.PKCS11 != "" {
		tk, err := newTokenKeys(opts.PKCS11, cfg.Suite, pass)
		if err != nil {
			return nil, err
		}
		defer tk.finish() // removes the keys it made unless committed
		keys = tk
		cfg.Keystore = KeystorePKCS11
	} else {
		if err := os.Mkdir(filepath.Join(tmp, "keys"), 0o700); err != nil {
			return nil, err
		}
		keys = &fileKeys{dir: tmp, suite: cfg.Suite, pass: pass}
	}
	if err := generate(tmp, &cfg, keys); err != nil {
		return nil, err
	}
	if err := os.Chmod(tmp, 0o700); err != nil {
		return nil, err
	}
	os.Remove(dir) // succeeds only if dir is empty; checked above
	if err := os.Rename(tmp, dir); err != nil {
		return nil, fmt.Errorf("create context: %w", err)
	}
	keys.commit()
	return Open(dir, &OpenOptions{Passphrase: func() ([]byte, error) { return pass, nil }})
}

// A keyMaker makes the private keys of a new context.
type keyMaker interface {
	// newKey makes the key of role name (a Keys field: "root", …, "escrow")
	// and returns its location for context.toml and the key as a
	// crypto.Signer (sign) or KeyAgreer.
	newKey(name string, sign bool) (loc string, key any, err error)
	// commit keeps the keys made: the context is in place.
	commit()
}

// fileKeys makes PKCS#8 key files in dir/keys.
type fileKeys struct {
	dir   string
	suite Suite
	pass  []byte
}

func (f *fileKeys) newKey(name string, sign bool) (string, any, error) {
	var key any
	var err error
	if sign {
		key, err = f.suite.GenerateSigningKey()
	} else {
		key, err = f.suite.GenerateKeyAgreementKey()
	}
	if err != nil {
		return "", nil, err
	}
	loc := "keys/" + keyFileName(name)
	if err := writePrivateKey(filepath.Join(f.dir, loc), key, f.pass); err != nil {
		return "", nil, err
	}
	return loc, key, nil
}

func (f *fileKeys) commit() {}

// keyFileNames are the file names of a file context's keys, and the label
// suffixes of a token context's.
var keyFileNames = map[string]string{
	"root": "root.key", "image_signing": "image-signing.key", "update_authority": "update-authority.key",
	"device_ca": "device-ca.key", "class_key_agreement": "class-ka.key", "escrow": "escrow.key",
}

// generate creates every key (through keys) and certificate of cfg in
// dir, and sets cfg.Keys.
func generate(dir string, cfg *config, keys keyMaker) error {
	signers := map[string]crypto.Signer{}
	for _, r := range []struct {
		name string
		loc  *string
	}{{"root", &cfg.Keys.Root}, {"image_signing", &cfg.Keys.ImageSigning}, {"update_authority", &cfg.Keys.UpdateAuthority}, {"device_ca", &cfg.Keys.DeviceCA}} {
		loc, key, err := keys.newKey(r.name, true)
		if err != nil {
			return err
		}
		*r.loc = loc
		signers[r.name] = key.(crypto.Signer)
	}
	root := signers["root"]
	// The successor roots, whose hashes go into root-key fuse slots 1 and
	// 2 at provisioning.
	cfg.Roots.Keys, cfg.Roots.Public = []string{cfg.Keys.Root}, []string{"root.0.pub"}
	successorPub := map[string]crypto.PublicKey{"root.0.pub": root.Public()}
	for i := 1; i < RootSlots; i++ {
		loc, key, err := keys.newKey("root@"+strconv.Itoa(i), true)
		if err != nil {
			return err
		}
		pub := "root." + strconv.Itoa(i) + ".pub"
		cfg.Roots.Keys = append(cfg.Roots.Keys, loc)
		cfg.Roots.Public = append(cfg.Roots.Public, pub)
		successorPub[pub] = key.(crypto.Signer).Public()
	}
	rootCert, err := createRootCertificate(root, cfg.VendorID, cfg.Organization, cfg.Created)
	if err != nil {
		return err
	}
	caCert, err := createDeviceCACertificate(root, rootCert, signers["device_ca"].Public(), cfg.VendorID, cfg.Organization, cfg.Created)
	if err != nil {
		return err
	}
	imageKC, err := createKeyCert(root, signers["image_signing"].Public(), keyCertRoleImageSigning, cfg.VendorID, cfg.Created, 0)
	if err != nil {
		return err
	}
	updateKC, err := createKeyCert(root, signers["update_authority"].Public(), keyCertRoleUpdateAuthority, cfg.VendorID, cfg.Created, 0)
	if err != nil {
		return err
	}
	files := map[string][]byte{
		cfg.Public.RootCertificate:        certPEM(rootCert),
		cfg.Public.DeviceCACertificate:    certPEM(caCert),
		cfg.Public.CAChain:                certPEM(caCert, rootCert),
		cfg.Public.ImageSigningKeyCert:    imageKC,
		cfg.Public.UpdateAuthorityKeyCert: updateKC,
	}
	for _, r := range []struct {
		name, pub string
		loc       *string
	}{{"class_key_agreement", cfg.Public.ClassKeyAgreement, &cfg.Keys.ClassKeyAgreement}, {"escrow", cfg.Public.Escrow, &cfg.Keys.Escrow}} {
		loc, key, err := keys.newKey(r.name, false)
		if err != nil {
			return err
		}
		*r.loc = loc
		if files[r.pub], err = MarshalPublicKeyPEM(key.(KeyAgreer).PublicKey()); err != nil {
			return err
		}
	}
	for name, pub := range successorPub {
		if files[name], err = MarshalPublicKeyPEM(pub); err != nil {
			return err
		}
	}
	for name, data := range files {
		if err := atomicfile.Create(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	data, err := marshalConfig(cfg)
	if err != nil {
		return err
	}
	return atomicfile.Create(filepath.Join(dir, ConfigFile), data, 0o644)
}

// marshalConfig encodes cfg as context.toml.
func marshalConfig(cfg *config) ([]byte, error) {
	var sb strings.Builder
	sb.WriteString("# SBM security context. Paths are relative to this directory.\n")
	if cfg.Keystore == KeystorePKCS11 {
		sb.WriteString("# Private keys are in a PKCS#11 token (RFC 7512 URIs below); none is in this directory.\n")
	} else {
		sb.WriteString("# Private keys are PKCS#8 PEM files (mode 0600); encrypted = true means PBES2 with a passphrase.\n")
	}
	if err := toml.NewEncoder(&sb).Encode(cfg); err != nil {
		return nil, err
	}
	return []byte(sb.String()), nil
}
