package sbm

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"io"

	"github.com/sbm-project/sbm/internal/secpkg"
)

// commonName returns the subject common name of a device: "SBM device
// <id hex>".
func commonName(id []byte) string { return "SBM device " + hex.EncodeToString(id) }

// buildCSR returns a PKCS#10 certification request (RFC 2986), DER, for
// the identity key k, with subject CN commonName(id) and no attributes,
// signed with ecdsa-with-SHA256 (P-256) or Ed25519. rng supplies the ECDSA
// signature randomness.
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
	info := derTLV(nil, derSequence,
		derSmallInt(nil, 0), name, spki,
		[]byte{derContext0, 0}) // attributes [0] IMPLICIT SET OF: empty

	var sig []byte
	var err error
	if k.suite == secpkg.SuiteEd25519 {
		sig = ed25519.Sign(k.ed25519, info)
	} else {
		h := sha256.Sum256(info)
		sig, err = ecdsa.SignASN1(rng, k.ecdsa, h[:])
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
	return k.ecdsa
}
