package trust

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	"github.com/sbm-project/sbm/internal/atomicfile"
	"github.com/sbm-project/sbm/internal/pkcs8"
)

// ErrPassphraseRequired is returned when a key is encrypted and no
// passphrase was given.
var ErrPassphraseRequired = errors.New("key is encrypted: a passphrase is required")

// ErrWrongPassphrase is returned when a passphrase does not decrypt a key.
var ErrWrongPassphrase = pkcs8.ErrWrongPassphrase

// MarshalPrivateKey encodes key as PKCS#8 PEM, encrypted with passphrase
// (PBES2) when passphrase is not empty.
func MarshalPrivateKey(key any, passphrase []byte) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	if len(passphrase) == 0 {
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
	}
	enc, err := pkcs8.Encrypt(der, passphrase, 0)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: enc}), nil
}

// ParsePrivateKey decodes a PKCS#8 PEM private key, encrypted or not.
// Signing keys are returned as crypto.Signer (*ecdsa.PrivateKey or
// ed25519.PrivateKey); key-agreement keys as *ecdh.PrivateKey. P-256 keys
// are returned as *ecdsa.PrivateKey; use KeyAgreementKey to convert.
func ParsePrivateKey(data, passphrase []byte) (any, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	if len(rest) != 0 && len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("trailing data after the PEM block")
	}
	der := block.Bytes
	switch block.Type {
	case "PRIVATE KEY":
	case "ENCRYPTED PRIVATE KEY":
		if len(passphrase) == 0 {
			return nil, ErrPassphraseRequired
		}
		var err error
		if der, err = pkcs8.Decrypt(der, passphrase); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("PEM block %q, want PRIVATE KEY (PKCS#8)", block.Type)
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		if block.Type == "ENCRYPTED PRIVATE KEY" {
			return nil, ErrWrongPassphrase
		}
		return nil, fmt.Errorf("invalid PKCS#8 key: %w", err)
	}
	switch k := key.(type) {
	case *ecdsa.PrivateKey, ed25519.PrivateKey, *ecdh.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("unsupported private key type %T", key)
}

// KeyAgreementKey converts a parsed private key to an ECDH key.
func KeyAgreementKey(key any) (*ecdh.PrivateKey, error) {
	switch k := key.(type) {
	case *ecdh.PrivateKey:
		return k, nil
	case *ecdsa.PrivateKey:
		return k.ECDH()
	}
	return nil, fmt.Errorf("not a key-agreement key: %T", key)
}

// LoadSigner reads a PKCS#8 PEM signing key from path.
func LoadSigner(path string, passphrase []byte) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	key, err := ParsePrivateKey(data, passphrase)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("%s: not a signing key (%T)", path, key)
}

// LoadKeyAgreementKey reads a PKCS#8 PEM key-agreement key from path.
func LoadKeyAgreementKey(path string, passphrase []byte) (*ecdh.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	key, err := ParsePrivateKey(data, passphrase)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	k, err := KeyAgreementKey(key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// writePrivateKey creates path (mode 0600) holding key; it never replaces
// an existing file.
func writePrivateKey(path string, key any, passphrase []byte) error {
	data, err := MarshalPrivateKey(key, passphrase)
	if err != nil {
		return err
	}
	return atomicfile.Create(path, data, 0o600)
}

// ParsePublicKeyPEM decodes a PEM "PUBLIC KEY" (SubjectPublicKeyInfo).
// P-256 keys are returned as *ecdsa.PublicKey, X25519 as *ecdh.PublicKey.
func ParsePublicKeyPEM(data []byte) (crypto.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, errors.New("no PEM PUBLIC KEY block found")
	}
	return x509.ParsePKIXPublicKey(block.Bytes)
}

// MarshalPublicKeyPEM encodes a public key as PEM SubjectPublicKeyInfo.
func MarshalPublicKeyPEM(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}
