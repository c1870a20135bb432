package trust

import (
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/sbm-project/sbm/internal/hostcose"
)

// Info summarises a context for display. It holds no secrets.
type Info struct {
	Dir          string    `json:"dir"`
	Suite        Suite     `json:"suite"`
	VendorID     UUID      `json:"vendor_id"`
	ClassID      UUID      `json:"class_id"`
	Organization string    `json:"organization"`
	Created      time.Time `json:"created"`
	Encrypted    bool      `json:"encrypted"`
	// Keystore is "files" or "pkcs11".
	Keystore Keystore `json:"keystore"`
	// Token is the token label of a pkcs11 keystore.
	Token string `json:"token,omitempty"`
	// RootKeyID is the root-of-trust hash written into device fuses.
	RootKeyID            string `json:"root_key_id"`
	ImageSigningKeyID    string `json:"image_signing_key_id"`
	UpdateAuthorityKeyID string `json:"update_authority_key_id"`
	ClassKeyID           string `json:"class_key_id"`
	EscrowKeyID          string `json:"escrow_key_id"`
	RootCertificate      string `json:"root_certificate"`
	DeviceCACertificate  string `json:"device_ca_certificate"`
	// CAChain is the path of a PEM file with the device CA and root
	// certificates.
	CAChain string `json:"ca_chain"`
}

// Info returns a summary of the context.
func (c *Context) Info() (*Info, error) {
	kid := func(pub any) (string, error) {
		id, err := hostcose.KeyID(pub)
		return hex.EncodeToString(id[:]), err
	}
	in := &Info{
		Dir: c.dir, Suite: c.cfg.Suite, VendorID: c.cfg.VendorID, ClassID: c.cfg.ClassID,
		Organization: c.cfg.Organization, Created: c.cfg.Created, Encrypted: c.cfg.Encrypted,
		RootCertificate:     c.Path(c.cfg.Public.RootCertificate),
		DeviceCACertificate: c.Path(c.cfg.Public.DeviceCACertificate),
		CAChain:             c.CAChainPath(),
		Keystore:            c.keystore(),
	}
	if in.Keystore == KeystorePKCS11 {
		if u, err := ParsePKCS11URI(c.cfg.Keys.Root); err == nil {
			in.Token = u.Token
		}
	}
	var err error
	if in.RootKeyID, err = kid(c.rootCert.PublicKey); err != nil {
		return nil, err
	}
	if in.ClassKeyID, err = kid(c.classPub); err != nil {
		return nil, err
	}
	if in.EscrowKeyID, err = kid(c.escrowPub); err != nil {
		return nil, err
	}
	for _, kc := range []struct {
		cert []byte
		out  *string
	}{{c.imageKeyCert, &in.ImageSigningKeyID}, {c.updateKeyCert, &in.UpdateAuthorityKeyID}} {
		msg, err := hostcose.Parse(kc.cert, hostcose.ContentTypeKeyCert)
		if err != nil {
			return nil, err
		}
		var p keyCertPayload
		if err := hostcose.Unmarshal(msg.Payload, &p); err != nil {
			return nil, err
		}
		*kc.out = hex.EncodeToString(sha256Sum(p.Key))
	}
	return in, nil
}

func sha256Sum(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:]
}
