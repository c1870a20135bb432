package apphost

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"

	"github.com/sbm-project/sbm/sbm"
)

// TLS 1.3 CertificateVerify content (RFC 8446 §4.4.3): 64 spaces, the
// context string, 0x00, the transcript hash.
const (
	tlsPadding       = "                                                                "
	tlsClientContext = "TLS 1.3, client CertificateVerify\x00"
)

// ErrNotTLS13ClientVerify is returned (wrapped) by Signer for anything
// but the content of a TLS 1.3 client CertificateVerify: the SBM's
// tls_sign service signs nothing else.
var ErrNotTLS13ClientVerify = errors.New("the device key signs only tls 1.3 client certificate verify messages")

// Signer is the device identity key held by the SBM as a crypto.Signer
// for crypto/tls, in the manner of a PSA opaque key: the private key never
// leaves the SBM. It implements crypto.MessageSigner, which crypto/tls
// (Go 1.25 and later) prefers to Sign: for a TLS 1.3 CertificateVerify it
// hands SignMessage the unhashed content, 64 × 0x20 ‖ "TLS 1.3, client
// CertificateVerify" ‖ 0x00 ‖ transcript hash. SignMessage checks that
// prefix and passes only the transcript hash to the SBM's TLSSign, which
// rebuilds the content itself and signs it (ecdsa_secp256r1_sha256 or
// Ed25519). Anything else — a TLS 1.2 signature, a server
// CertificateVerify, a bare digest through Sign — is refused with
// ErrNotTLS13ClientVerify, so a TLS configuration using Signer must allow
// TLS 1.3 only (ClientTLSConfig does).
//
// Like every use of sbm.Services, Signer must be called on the goroutine
// that owns the services (the device's): the runtime's https fetch runs
// the TLS handshake synchronously inside the fetch_open call.
type Signer struct {
	svc sbm.Services
	pub crypto.PublicKey
}

var _ crypto.MessageSigner = (*Signer)(nil)

// NewSigner returns the Signer of the device key whose public key is pub
// (the device certificate's: a P-256 *ecdsa.PublicKey or an
// ed25519.PublicKey).
func NewSigner(svc sbm.Services, pub crypto.PublicKey) (*Signer, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, errors.New("apphost: device key: not a p-256 key")
		}
	case ed25519.PublicKey:
	default:
		return nil, fmt.Errorf("apphost: device key: unsupported key type %T", pub)
	}
	if svc == nil {
		return nil, errors.New("apphost: no runtime services")
	}
	return &Signer{svc: svc, pub: pub}, nil
}

// Public returns the device identity public key.
func (s *Signer) Public() crypto.PublicKey { return s.pub }

// Sign refuses: the SBM does not sign a caller's digest with the identity
// key for TLS (that would be an oracle for forged attestation tokens and
// reports); crypto/tls calls SignMessage instead.
func (s *Signer) Sign(_ io.Reader, _ []byte, _ crypto.SignerOpts) ([]byte, error) {
	return nil, fmt.Errorf("apphost: sign a digest: %w (use SignMessage)", ErrNotTLS13ClientVerify)
}

// SignMessage signs msg, which must be the content of a TLS 1.3 client
// CertificateVerify with a 32- or 48-byte transcript hash, through the
// SBM: ECDSA (opts.HashFunc() SHA-256; ASN.1 DER signature, as TLS
// carries it) or Ed25519 (opts.HashFunc() 0).
func (s *Signer) SignMessage(_ io.Reader, msg []byte, opts crypto.SignerOpts) ([]byte, error) {
	th, ok := bytes.CutPrefix(msg, []byte(tlsPadding+tlsClientContext))
	if !ok || len(th) != 32 && len(th) != 48 {
		return nil, fmt.Errorf("apphost: %w", ErrNotTLS13ClientVerify)
	}
	_, ed := s.pub.(ed25519.PublicKey)
	switch {
	case ed && opts.HashFunc() != 0, !ed && opts.HashFunc() != crypto.SHA256:
		return nil, fmt.Errorf("apphost: %w: hash %v for this key", ErrNotTLS13ClientVerify, opts.HashFunc())
	}
	sig, err := s.svc.TLSSign(nil, th)
	if err != nil {
		return nil, fmt.Errorf("apphost: tls_sign: %w", err)
	}
	if len(sig) != 64 {
		return nil, fmt.Errorf("apphost: tls_sign: %d-byte signature", len(sig))
	}
	if ed {
		return sig, nil
	}
	return ecdsaDER(sig)
}

// ecdsaDER encodes a 64-byte r ‖ s signature as an ECDSA-Sig-Value.
func ecdsaDER(raw []byte) ([]byte, error) {
	return asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(raw[:32]), new(big.Int).SetBytes(raw[32:])})
}

// ClientCertificate returns the device's TLS client certificate: the
// chain of the cert_chain service (device certificate, then the device CA
// chain stored at provisioning) with a Signer as its private key, limited
// to the signature scheme of the key (ecdsa_secp256r1_sha256 or Ed25519).
// Use it in tls.Config.Certificates or GetClientCertificate with
// MinVersion TLS 1.3 (ClientTLSConfig).
func ClientCertificate(svc sbm.Services) (*tls.Certificate, error) {
	if svc == nil {
		return nil, errors.New("apphost: no runtime services")
	}
	b, err := svc.CertificateChain(nil)
	if err != nil {
		return nil, fmt.Errorf("apphost: device certificate chain: %w", err)
	}
	var chain [][]byte
	for len(b) > 0 {
		if len(b) < 2 || int(binary.BigEndian.Uint16(b)) > len(b)-2 || binary.BigEndian.Uint16(b) == 0 {
			return nil, errors.New("apphost: device certificate chain: malformed")
		}
		n := 2 + int(binary.BigEndian.Uint16(b))
		chain = append(chain, b[2:n:n])
		b = b[n:]
	}
	if len(chain) == 0 {
		return nil, errors.New("apphost: device certificate chain: empty")
	}
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		return nil, fmt.Errorf("apphost: device certificate: %w", err)
	}
	signer, err := NewSigner(svc, leaf.PublicKey)
	if err != nil {
		return nil, err
	}
	scheme := tls.ECDSAWithP256AndSHA256
	if _, ok := leaf.PublicKey.(ed25519.PublicKey); ok {
		scheme = tls.Ed25519
	}
	return &tls.Certificate{
		Certificate:                  chain,
		PrivateKey:                   signer,
		Leaf:                         leaf,
		SupportedSignatureAlgorithms: []tls.SignatureScheme{scheme},
	}, nil
}

// ClientTLSConfig returns a TLS 1.3-only client configuration that
// verifies the server against roots and authenticates with the device's
// certificate and SBM-held key (ClientCertificate, read at the first
// handshake that asks for it).
func ClientTLSConfig(svc sbm.Services, roots *x509.CertPool, serverName string) *tls.Config {
	var cert *tls.Certificate
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		RootCAs:    roots,
		ServerName: serverName,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if cert == nil {
				c, err := ClientCertificate(svc)
				if err != nil {
					return nil, err
				}
				cert = c
			}
			return cert, nil
		},
	}
}
