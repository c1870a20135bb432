package sbm

import (
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"io"

	"github.com/sbm-project/sbm/internal/secpkg"
)

// commonName returns the subject common name of a device: "SBM device
// <id hex>".
func commonName(id []byte) string { return "SBM device " + hex.EncodeToString(id) }

// The device's subject-alternative-name URIs, as the device CA writes them
// into device certificates (docs/spec/package.md §11):
//
//	urn:sbm:device:<device ID, lowercase hex>
//	urn:sbm:ka:<p256|x25519>:<raw key-agreement public key, base64url without padding>
const (
	uriDevicePrefix = "urn:sbm:device:"
	uriKAPrefix     = "urn:sbm:ka:"
)

// deviceURIs returns the device-ID and key-agreement URIs of the device id
// with keys k.
func deviceURIs(k *deviceKeys, id []byte) (dev, ka []byte) {
	dev = hex.AppendEncode(append(make([]byte, 0, len(uriDevicePrefix)+2*len(id)), uriDevicePrefix...), id)
	pub := k.ka.PublicKey().Bytes()
	curve := "p256:"
	if k.suite == secpkg.SuiteEd25519 {
		curve = "x25519:"
	}
	ka = make([]byte, 0, len(uriKAPrefix)+len(curve)+(len(pub)*8+5)/6)
	ka = appendBase64URL(append(append(ka, uriKAPrefix...), curve...), pub)
	return dev, ka
}

// appendBase64URL appends the base64url encoding of src without padding
// (RFC 4648 §5, base64.RawURLEncoding) to dst. encoding/base64 builds a
// 256-byte decoding table at start-up and is 600 bytes of the firmware;
// the SBM only encodes this one URI.
func appendBase64URL(dst, src []byte) []byte {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for len(src) > 0 {
		var v uint32
		n := min(len(src), 3)
		for i := 0; i < 3; i++ {
			v <<= 8
			if i < n {
				v |= uint32(src[i])
			}
		}
		for i := 0; i <= n; i++ { // n bytes are n+1 characters
			dst = append(dst, alphabet[v>>(18-6*i)&63])
		}
		src = src[n:]
	}
	return dst
}

// buildCSR returns a PKCS#10 certification request (RFC 2986), DER, for
// the identity key k, with subject CN commonName(id), signed with
// ecdsa-with-SHA256 (P-256) or Ed25519. rng supplies the ECDSA signature
// randomness.
//
// Its one attribute is a PKCS#9 extensionRequest for the subjectAltName the
// device certificate will carry: the device-ID and key-agreement URIs
// (deviceURIs). The identity key's signature thereby binds the
// key-agreement key to the device, so that the device CA can refuse a
// key-agreement key substituted on the provisioning link.
func buildCSR(k *deviceKeys, id []byte, rng io.Reader) ([]byte, error) {
	var buf [256]byte
	// Name ::= SEQUENCE OF SET OF AttributeTypeAndValue
	atv := derTLV(buf[:0], derSequence,
		derTLV(nil, derOID, oidCommonName),
		derTLV(nil, derUTF8String, []byte(commonName(id))))
	name := derTLV(nil, derSequence, derTLV(nil, derSet, atv))

	var alg, sigAlg []byte
	if k.suite == secpkg.SuiteEd25519 {
		alg = derTLV(nil, derSequence, derTLV(nil, derOID, oidEd25519))
		sigAlg = alg
	} else {
		alg = derTLV(nil, derSequence, derTLV(nil, derOID, oidECPublicKey), derTLV(nil, derOID, oidP256))
		sigAlg = derTLV(nil, derSequence, derTLV(nil, derOID, oidECDSAWithSHA))
	}
	spki := derTLV(nil, derSequence, alg, derBits(nil, k.identity))

	// attributes [0] IMPLICIT SET OF Attribute, with one Attribute:
	// extensionRequest, whose value is Extensions ::= SEQUENCE OF Extension
	// holding one non-critical subjectAltName extension: GeneralNames with
	// two uniformResourceIdentifier names.
	dev, ka := deviceURIs(k, id)
	san := derTLV(nil, derSequence, derTLV(nil, derURI, dev), derTLV(nil, derURI, ka))
	ext := derTLV(nil, derSequence, derTLV(nil, derOID, oidSubjectAlt), derTLV(nil, derOctetString, san))
	attr := derTLV(nil, derSequence,
		derTLV(nil, derOID, oidExtensionRequest),
		derTLV(nil, derSet, derTLV(nil, derSequence, ext)))
	info := derTLV(nil, derSequence,
		derSmallInt(nil, 0), name, spki,
		derTLV(nil, derContext0, attr))

	var sig []byte
	var err error
	if k.suite == secpkg.SuiteEd25519 {
		sig = ed25519.Sign(k.ed25519, info)
	} else {
		h := sha256.Sum256(info)
		sig, err = k.p256.SignASN1(rng, h[:])
		if err != nil {
			return nil, err
		}
	}
	return derTLV(nil, derSequence, info, sigAlg, derBits(nil, sig)), nil
}

// signer returns the identity key as a crypto.Signer.
func (k *deviceKeys) signer() crypto.Signer {
	if k.suite == secpkg.SuiteEd25519 {
		return k.ed25519
	}
	return k.p256.Signer()
}
