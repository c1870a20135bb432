package trust

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sbm-project/sbm/internal/atomicfile"
	"github.com/sbm-project/sbm/internal/hostcose"
	"github.com/sbm-project/sbm/internal/secpkg"
)

// RootSlots is the number of root-key fuse slots of a device
// (hal.RootKeySlots): the roots a context makes at init (the first and two
// successors).
const RootSlots = 3

// ErrNoSuccessorRoot is returned by Rotate(RootKey) when the current root
// is the context's last one: it can never be revoked.
var ErrNoSuccessorRoot = errors.New("no successor root: the last root cannot be revoked")

// ErrEpoch is returned by Rotate when a role has used all its epochs, and
// by Revoke when a statement would revoke the role's current key.
var ErrEpoch = errors.New("key epoch out of range")

// keyFileName returns the key file name of a key role name ("root",
// "image_signing", …); "image_signing@2" names the key of epoch 2
// ("image-signing.2.key").
func keyFileName(name string) string {
	base, epoch, ok := strings.Cut(name, "@")
	if !ok {
		return keyFileNames[name]
	}
	return strings.TrimSuffix(keyFileNames[base], ".key") + "." + epoch + ".key"
}

// Epoch returns the key epoch of role's current key: the epoch of the
// image-signing or update-authority key certificate, or the number of
// device CA rotations.
func (c *Context) Epoch(role KeyRole) uint8 {
	switch role {
	case ImageSigningKey:
		return c.cfg.Epochs.ImageSigning
	case UpdateAuthorityKey:
		return c.cfg.Epochs.UpdateAuthority
	case DeviceCAKey:
		return c.cfg.Epochs.DeviceCA
	}
	return 0
}

// Rotate replaces role's key (image signing, update authority or device
// CA) by a new one made in the context's keystore (a new key file, or a
// new object in the token): an image-signing or update-authority key gets
// a key certificate from the root at the next epoch; a device CA key an
// X.509 certificate from the root, added in front of the CA chain (the
// older CA certificates stay in it, so device certificates they issued
// still verify). New packages, UPKs and device certificates use the new
// key; devices accept it as they are (packages carry their key
// certificates). The old key is deleted (its file, or its token object):
// no tool signs with it again; revoking it on devices is Revoke. It
// returns the new epoch.
func (c *Context) Rotate(role KeyRole, now time.Time) (uint8, error) {
	cfg := c.cfg
	var name string
	var epoch *uint8
	switch role {
	case RootKey:
		return c.rotateRoot(now)
	case ImageSigningKey:
		name, epoch = "image_signing", &cfg.Epochs.ImageSigning
	case UpdateAuthorityKey:
		name, epoch = "update_authority", &cfg.Epochs.UpdateAuthority
	case DeviceCAKey:
		name, epoch = "device_ca", &cfg.Epochs.DeviceCA
	default:
		return 0, fmt.Errorf("the %s key does not rotate (only root, image-signing, update-authority and device-ca)", role)
	}
	if *epoch >= secpkg.MaxEpoch {
		return 0, fmt.Errorf("%s: %w: all %d epochs used", role, ErrEpoch, secpkg.MaxEpoch)
	}
	next := *epoch + 1
	root, err := c.Signer(RootKey)
	if err != nil {
		return 0, err
	}
	keys, done, err := c.rotationKeys()
	if err != nil {
		return 0, err
	}
	defer done()
	loc, key, err := keys.newKey(name+"@"+strconv.Itoa(int(next)), true)
	if err != nil {
		return 0, fmt.Errorf("new %s key: %w", role, err)
	}
	pub := key.(crypto.Signer).Public()
	var written []string
	undo := func() {
		for _, p := range written {
			os.Remove(p)
		}
	}
	create := func(rel string, data []byte) error {
		if err := atomicfile.Create(c.Path(rel), data, 0o644); err != nil {
			return err
		}
		written = append(written, c.Path(rel))
		return nil
	}
	var chain []byte
	switch role {
	case ImageSigningKey, UpdateAuthorityKey:
		kcRole := uint(keyCertRoleImageSigning)
		rel := "image-signing." + strconv.Itoa(int(next)) + ".keycert"
		if role == UpdateAuthorityKey {
			kcRole, rel = keyCertRoleUpdateAuthority, "update-authority."+strconv.Itoa(int(next))+".keycert"
		}
		kc, err := createKeyCert(root, pub, kcRole, cfg.VendorID, now, next)
		if err != nil {
			return 0, err
		}
		if err := create(rel, kc); err != nil {
			return 0, err
		}
		if role == ImageSigningKey {
			cfg.Keys.ImageSigning, cfg.Public.ImageSigningKeyCert = loc, rel
		} else {
			cfg.Keys.UpdateAuthority, cfg.Public.UpdateAuthorityKeyCert = loc, rel
		}
	case DeviceCAKey:
		cert, err := createDeviceCACertificate(root, c.rootCert, pub, cfg.VendorID, cfg.Organization, now)
		if err != nil {
			return 0, err
		}
		rel := "device-ca." + strconv.Itoa(int(next)) + ".crt"
		if err := create(rel, certPEM(cert)); err != nil {
			return 0, err
		}
		if chain, err = c.chainWith(cert); err != nil {
			undo()
			return 0, err
		}
		cfg.Keys.DeviceCA, cfg.Public.DeviceCACertificate = loc, rel
	}
	*epoch = next
	data, err := marshalConfig(&cfg)
	if err != nil {
		undo()
		return 0, err
	}
	if chain != nil {
		if err := atomicfile.WriteFile(c.Path(cfg.Public.CAChain), chain, 0o644); err != nil {
			undo()
			return 0, err
		}
	}
	if err := atomicfile.WriteFile(c.Path(ConfigFile), data, 0o644); err != nil {
		undo()
		return 0, err
	}
	keys.commit()
	oldLoc := c.keyPath(role)
	c.cfg = cfg
	delete(c.signers, role)
	if err := c.loadPublic(); err != nil {
		return 0, err
	}
	if err := c.retire(oldLoc); err != nil {
		return next, fmt.Errorf("rotated to epoch %d, but deleting the old %s key failed (delete it by hand): %w", next, role, err)
	}
	return next, nil
}

// retire deletes a key the context no longer uses: its file, or its token
// object.
func (c *Context) retire(loc string) error {
	if !isURI(loc) {
		err := os.Remove(c.Path(loc))
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	u, err := ParsePKCS11URI(loc)
	if err != nil {
		return err
	}
	tok, _, err := c.token()
	if err != nil {
		return err
	}
	return tok.destroy(u.Object, u.ID)
}

// chainWith returns the CA chain file with ca in front of the device CA
// certificates it holds, and the root last.
func (c *Context) chainWith(ca *x509.Certificate) ([]byte, error) {
	data, err := os.ReadFile(c.CAChainPath())
	if err != nil {
		return nil, err
	}
	certs := []*x509.Certificate{ca}
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.CAChainPath(), err)
		}
		if !cert.Equal(c.rootCert) {
			certs = append(certs, cert)
		}
	}
	return certPEM(append(certs, c.rootCert)...), nil
}

// rotationKeys returns the key maker of the context's keystore for new
// keys of an existing context, and a function that removes what it made
// unless committed.
func (c *Context) rotationKeys() (keyMaker, func(), error) {
	if c.keystore() != KeystorePKCS11 {
		pass, err := c.getPassphrase()
		if err != nil {
			return nil, nil, err
		}
		return &fileKeys{dir: c.dir, suite: c.cfg.Suite, pass: pass}, func() {}, nil
	}
	tok, base, err := c.token()
	if err != nil {
		return nil, nil, err
	}
	u := *base
	u.ID = nil // new keys get random IDs
	tk := &tokenKeys{tok: tok, base: &u, suite: c.cfg.Suite, prefix: strings.TrimSuffix(base.Object, "-root")}
	done := func() {
		if !tk.committed {
			for _, m := range tk.made {
				tk.tok.destroy(m.label, m.id)
			}
		}
	}
	return tk, done, nil
}

// revocationPayload is the payload of a revocation statement (spec §4.1).
type revocationPayload struct {
	Format   uint   `cbor:"1,keyasint"`
	VendorID []byte `cbor:"2,keyasint"`
	Role     uint   `cbor:"3,keyasint"`
	MinEpoch uint8  `cbor:"4,keyasint"`
	Issued   uint64 `cbor:"5,keyasint"`
}

// Revoke returns a revocation statement signed by the root (spec §4.1):
// role's keys (image signing or update authority) with an epoch below
// minEpoch are revoked. It refuses to revoke the role's current key
// (rotate first). Devices apply it when they install a package that
// carries it (image.CreateOptions.Revocation), signed by keys it does not
// revoke.
func (c *Context) Revoke(role KeyRole, minEpoch uint8, now time.Time) ([]byte, error) {
	var kcRole uint
	switch role {
	case ImageSigningKey:
		kcRole = keyCertRoleImageSigning
	case UpdateAuthorityKey:
		kcRole = keyCertRoleUpdateAuthority
	default:
		return nil, fmt.Errorf("devices revoke only image-signing and update-authority keys, not the %s key", role)
	}
	cur := c.Epoch(role)
	if minEpoch == 0 || minEpoch > cur {
		return nil, fmt.Errorf("%s keys below epoch %d: %w: the current key has epoch %d (rotate first; epochs 1..%d revoke the keys before them)",
			role, minEpoch, ErrEpoch, cur, cur)
	}
	root, err := c.Signer(RootKey)
	if err != nil {
		return nil, err
	}
	vendor := c.cfg.VendorID
	payload, err := hostcose.Marshal(revocationPayload{Format: 1, VendorID: vendor[:], Role: kcRole, MinEpoch: minEpoch, Issued: uint64(now.Unix())})
	if err != nil {
		return nil, err
	}
	return hostcose.Sign1(root, secpkg.ContentTypeRevocation, payload, nil)
}

// RootSlot returns the root-key fuse slot of the context's current root.
func (c *Context) RootSlot() uint8 { return c.cfg.Roots.Slot }

// RootTransition returns the statement by which the previous root handed
// over to the current one (spec §4.2), nil if the root never rotated.
// Every package carries it (image.Create): devices still on the previous
// root move with it; the others ignore it.
func (c *Context) RootTransition() []byte { return c.rootTransition }

// RootSlotHashes returns the SHA-256 of the raw public key of each root
// slot's root (slot 0 first): what provisioning programs into a device's
// root-key fuse slots. A context made before root slots existed has one.
func (c *Context) RootSlotHashes() ([][32]byte, error) {
	pubs := []crypto.PublicKey{c.RootPublicKey()}
	if len(c.cfg.Roots.Public) > 0 {
		pubs = pubs[:0]
		for _, rel := range c.cfg.Roots.Public {
			data, err := os.ReadFile(c.Path(rel))
			if err != nil {
				return nil, err
			}
			pub, err := ParsePublicKeyPEM(data)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", rel, err)
			}
			pubs = append(pubs, pub)
		}
	}
	var out [][32]byte
	for _, p := range pubs {
		raw, err := hostcose.RawPublicKey(p)
		if err != nil {
			return nil, err
		}
		out = append(out, secpkg.KeyID(raw))
	}
	return out, nil
}

// transitionPayload is the payload of a root transition statement
// (spec §4.2).
type transitionPayload struct {
	Format   uint   `cbor:"1,keyasint"`
	VendorID []byte `cbor:"2,keyasint"`
	Slot     uint8  `cbor:"3,keyasint"`
	RootKey  []byte `cbor:"4,keyasint"`
	Issued   uint64 `cbor:"5,keyasint"`
}

// rotateRoot moves the context to the root of the next slot: the current
// root signs a transition statement naming it; the new root certifies the
// current image-signing, update-authority and device CA keys (same keys
// and epochs, new certificates); root.crt, the key certificates and the
// device CA certificate are replaced (ca-chain.pem keeps the old ones);
// context.toml names the new root. Packages made from then on are signed
// in the new hierarchy and carry the statement, which moves each device
// that installs one; the old root is then revoked on it for good.
func (c *Context) rotateRoot(now time.Time) (uint8, error) {
	cfg := c.cfg
	next := int(cfg.Roots.Slot) + 1
	if next >= len(cfg.Roots.Keys) {
		return 0, fmt.Errorf("root slot %d: %w", cfg.Roots.Slot, ErrNoSuccessorRoot)
	}
	old, err := c.Signer(RootKey)
	if err != nil {
		return 0, err
	}
	cfg.Keys.Root = cfg.Roots.Keys[next]
	pemData, err := os.ReadFile(c.Path(cfg.Roots.Public[next]))
	if err != nil {
		return 0, err
	}
	want, err := ParsePublicKeyPEM(pemData)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", cfg.Roots.Public[next], err)
	}
	newRoot, err := c.loadSigner(RootKey, cfg.Keys.Root, want)
	if err != nil {
		return 0, fmt.Errorf("root of slot %d: %w", next, err)
	}
	if e, ok := newRoot.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !e.Equal(want) {
		return 0, fmt.Errorf("root key of slot %d does not match %s", next, cfg.Roots.Public[next])
	}
	raw, err := hostcose.RawPublicKey(want)
	if err != nil {
		return 0, err
	}
	vendor := cfg.VendorID
	payload, err := hostcose.Marshal(transitionPayload{Format: 1, VendorID: vendor[:], Slot: uint8(next), RootKey: raw, Issued: uint64(now.Unix())})
	if err != nil {
		return 0, err
	}
	statement, err := hostcose.Sign1(old, secpkg.ContentTypeRootTransition, payload, nil)
	if err != nil {
		return 0, err
	}
	rootCert, err := createRootCertificate(newRoot, vendor, cfg.Organization, now)
	if err != nil {
		return 0, err
	}
	pubOf := func(role KeyRole) (crypto.PublicKey, error) {
		s, err := c.Signer(role)
		if err != nil {
			return nil, err
		}
		return s.Public(), nil
	}
	imgPub, err := pubOf(ImageSigningKey)
	if err != nil {
		return 0, err
	}
	updPub, err := pubOf(UpdateAuthorityKey)
	if err != nil {
		return 0, err
	}
	imgKC, err := createKeyCert(newRoot, imgPub, keyCertRoleImageSigning, vendor, now, cfg.Epochs.ImageSigning)
	if err != nil {
		return 0, err
	}
	updKC, err := createKeyCert(newRoot, updPub, keyCertRoleUpdateAuthority, vendor, now, cfg.Epochs.UpdateAuthority)
	if err != nil {
		return 0, err
	}
	caCert, err := createDeviceCACertificate(newRoot, rootCert, c.DeviceCACertificate().PublicKey, vendor, cfg.Organization, now)
	if err != nil {
		return 0, err
	}
	s := "r" + strconv.Itoa(next)
	files := []struct {
		rel  string
		data []byte
		set  *string
	}{
		{"root." + s + ".crt", certPEM(rootCert), &cfg.Public.RootCertificate},
		{"image-signing." + s + ".keycert", imgKC, &cfg.Public.ImageSigningKeyCert},
		{"update-authority." + s + ".keycert", updKC, &cfg.Public.UpdateAuthorityKeyCert},
		{"device-ca." + s + ".crt", certPEM(caCert), &cfg.Public.DeviceCACertificate},
		{"root-transition." + strconv.Itoa(next) + ".cose", statement, &cfg.Roots.Transition},
	}
	var written []string
	undo := func() {
		for _, p := range written {
			os.Remove(p)
		}
	}
	for _, f := range files {
		if err := atomicfile.Create(c.Path(f.rel), f.data, 0o644); err != nil {
			undo()
			return 0, err
		}
		written = append(written, c.Path(f.rel))
		*f.set = f.rel
	}
	chain, err := c.chainWith(caCert)
	if err != nil {
		undo()
		return 0, err
	}
	// The new root last, after the old chain's root: old device
	// certificates keep verifying against the file.
	chain = append(chain, certPEM(rootCert)...)
	cfg.Roots.Slot = uint8(next)
	data, err := marshalConfig(&cfg)
	if err != nil {
		undo()
		return 0, err
	}
	if err := atomicfile.WriteFile(c.Path(cfg.Public.CAChain), chain, 0o644); err != nil {
		undo()
		return 0, err
	}
	if err := atomicfile.WriteFile(c.Path(ConfigFile), data, 0o644); err != nil {
		undo()
		return 0, err
	}
	c.cfg = cfg
	c.signers = map[KeyRole]crypto.Signer{RootKey: newRoot}
	if err := c.loadPublic(); err != nil {
		return 0, err
	}
	return uint8(next), nil
}
