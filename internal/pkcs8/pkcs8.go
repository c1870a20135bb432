// Package pkcs8 encrypts and decrypts PKCS#8 private keys with a passphrase,
// using PBES2 (RFC 8018) with PBKDF2-HMAC-SHA256 and AES-256-CBC: the
// "ENCRYPTED PRIVATE KEY" PEM format that OpenSSL reads and writes.
package pkcs8

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/asn1"
	"errors"
	"fmt"
)

// DefaultIterations is the PBKDF2 iteration count used by Encrypt
// (OWASP's 2023 recommendation for PBKDF2-HMAC-SHA256).
const DefaultIterations = 600_000

// maxIterations bounds the work an attacker-supplied file can make us do.
const maxIterations = 10_000_000

// ErrWrongPassphrase is returned when decryption fails, which with CBC
// padding means a wrong passphrase or a corrupted file.
var ErrWrongPassphrase = errors.New("wrong passphrase or corrupted key")

var (
	oidPBES2          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2         = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidHMACWithSHA256 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	oidAES256CBC      = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
)

type algorithmIdentifier struct {
	Algorithm  asn1.ObjectIdentifier
	Parameters asn1.RawValue `asn1:"optional"`
}

type encryptedPrivateKeyInfo struct {
	Algorithm     algorithmIdentifier
	EncryptedData []byte
}

type pbes2Params struct {
	KeyDerivationFunc algorithmIdentifier
	EncryptionScheme  algorithmIdentifier
}

type pbkdf2Params struct {
	Salt           []byte
	IterationCount int
	KeyLength      int                 `asn1:"optional"`
	PRF            algorithmIdentifier `asn1:"optional"`
}

// Encrypt encrypts a DER PKCS#8 PrivateKeyInfo with passphrase and returns
// the DER EncryptedPrivateKeyInfo. iterations ≤ 0 means DefaultIterations.
func Encrypt(der, passphrase []byte, iterations int) ([]byte, error) {
	if len(passphrase) == 0 {
		return nil, errors.New("empty passphrase")
	}
	if iterations <= 0 {
		iterations = DefaultIterations
	}
	salt := make([]byte, 16)
	iv := make([]byte, aes.BlockSize)
	rand.Read(salt)
	rand.Read(iv)
	key, err := pbkdf2.Key(sha256.New, string(passphrase), salt, iterations, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	pad := aes.BlockSize - len(der)%aes.BlockSize
	buf := append(bytes.Clone(der), bytes.Repeat([]byte{byte(pad)}, pad)...)
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(buf, buf)

	null := asn1.RawValue{Tag: asn1.TagNull}
	kdf, err := asn1.Marshal(pbkdf2Params{Salt: salt, IterationCount: iterations, KeyLength: 32,
		PRF: algorithmIdentifier{Algorithm: oidHMACWithSHA256, Parameters: null}})
	if err != nil {
		return nil, err
	}
	ivDER, err := asn1.Marshal(iv)
	if err != nil {
		return nil, err
	}
	params, err := asn1.Marshal(pbes2Params{
		KeyDerivationFunc: algorithmIdentifier{Algorithm: oidPBKDF2, Parameters: asn1.RawValue{FullBytes: kdf}},
		EncryptionScheme:  algorithmIdentifier{Algorithm: oidAES256CBC, Parameters: asn1.RawValue{FullBytes: ivDER}},
	})
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(encryptedPrivateKeyInfo{
		Algorithm:     algorithmIdentifier{Algorithm: oidPBES2, Parameters: asn1.RawValue{FullBytes: params}},
		EncryptedData: buf,
	})
}

// Decrypt decrypts a DER EncryptedPrivateKeyInfo produced by Encrypt or by
// OpenSSL with PBES2, PBKDF2-HMAC-SHA256 and AES-256-CBC, and returns the
// DER PrivateKeyInfo.
func Decrypt(der, passphrase []byte) ([]byte, error) {
	var info encryptedPrivateKeyInfo
	if rest, err := asn1.Unmarshal(der, &info); err != nil || len(rest) != 0 {
		return nil, errors.New("malformed encrypted private key")
	}
	if !info.Algorithm.Algorithm.Equal(oidPBES2) {
		return nil, fmt.Errorf("unsupported key encryption %v (want PBES2)", info.Algorithm.Algorithm)
	}
	var params pbes2Params
	if _, err := asn1.Unmarshal(info.Algorithm.Parameters.FullBytes, &params); err != nil {
		return nil, errors.New("malformed PBES2 parameters")
	}
	if !params.KeyDerivationFunc.Algorithm.Equal(oidPBKDF2) {
		return nil, fmt.Errorf("unsupported key derivation %v (want PBKDF2)", params.KeyDerivationFunc.Algorithm)
	}
	var kdf pbkdf2Params
	if _, err := asn1.Unmarshal(params.KeyDerivationFunc.Parameters.FullBytes, &kdf); err != nil {
		return nil, errors.New("malformed PBKDF2 parameters")
	}
	if !kdf.PRF.Algorithm.Equal(oidHMACWithSHA256) {
		return nil, fmt.Errorf("unsupported PBKDF2 PRF %v (want HMAC-SHA256)", kdf.PRF.Algorithm)
	}
	if kdf.IterationCount < 1 || kdf.IterationCount > maxIterations {
		return nil, fmt.Errorf("PBKDF2 iteration count %d out of range", kdf.IterationCount)
	}
	if kdf.KeyLength != 0 && kdf.KeyLength != 32 {
		return nil, fmt.Errorf("PBKDF2 key length %d, want 32", kdf.KeyLength)
	}
	if !params.EncryptionScheme.Algorithm.Equal(oidAES256CBC) {
		return nil, fmt.Errorf("unsupported cipher %v (want AES-256-CBC)", params.EncryptionScheme.Algorithm)
	}
	var iv []byte
	if _, err := asn1.Unmarshal(params.EncryptionScheme.Parameters.FullBytes, &iv); err != nil || len(iv) != aes.BlockSize {
		return nil, errors.New("malformed AES-CBC IV")
	}
	ct := info.EncryptedData
	if len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return nil, errors.New("malformed encrypted data length")
	}
	key, err := pbkdf2.Key(sha256.New, string(passphrase), kdf.Salt, kdf.IterationCount, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	pt := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(pt, ct)
	pad := int(pt[len(pt)-1])
	if pad == 0 || pad > aes.BlockSize {
		return nil, ErrWrongPassphrase
	}
	for _, b := range pt[len(pt)-pad:] {
		if int(b) != pad {
			return nil, ErrWrongPassphrase
		}
	}
	pt = pt[:len(pt)-pad]
	// A wrong passphrase passes the padding check with probability about
	// 1/256; the caller's PKCS#8 parse catches those, but check the outer
	// SEQUENCE here so the error stays precise.
	var raw asn1.RawValue
	if rest, err := asn1.Unmarshal(pt, &raw); err != nil || len(rest) != 0 || raw.Tag != asn1.TagSequence {
		return nil, ErrWrongPassphrase
	}
	return pt, nil
}
