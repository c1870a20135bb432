package image

import (
	"bytes"
	"crypto/ecdh"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sbm-project/sbm/internal/aeskw"
	"github.com/sbm-project/sbm/internal/cose"
	"github.com/sbm-project/sbm/internal/firmware"
	"github.com/sbm-project/sbm/internal/hostcose"
	"github.com/sbm-project/sbm/internal/secpkg"
	"github.com/sbm-project/sbm/trust"
	"github.com/sbm-project/sbm/upk"
	"github.com/sbm-project/sbm/wire"
)

var update = flag.Bool("update", false, "rewrite the test vectors in testdata/vectors")

// vectorsDir holds the deterministic test vectors of docs/spec/package.md §10.
const vectorsDir = "../testdata/vectors"

// vectorTime is the fixed clock of the vectors.
var vectorTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// vectorDeviceID is the device ID of the vectors' device.
var vectorDeviceID = []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}

// Vector describes one file of the vectors (vectors.json).
type Vector struct {
	Name  string `json:"name"`
	Suite string `json:"suite"`
	// Context is the context directory (relative to testdata/vectors):
	// its context.toml and root.crt are the trust inputs (spec §12).
	Context string `json:"context"`
	Package string `json:"package"`
	// UPK is a separate UPK file, if any; otherwise the verifier uses the
	// first UPK in the package that is for its key (spec §8).
	UPK string `json:"upk,omitempty"`
	// RecipientKey is the recipient's key-agreement private key (PKCS#8).
	RecipientKey string `json:"recipient_key,omitempty"`
	// RecipientDeviceID is the recipient device's ID (hex), for device UPKs.
	RecipientDeviceID string `json:"recipient_device_id,omitempty"`
	// Time is the verification time.
	Time time.Time `json:"time"`
	// Code is the outcome of the verification of spec §9 as a protocol
	// error code (protocol.md §5): 0 for a valid vector; Expect is the
	// code's name.
	Code   int    `json:"code"`
	Expect string `json:"expect"`
	// Note explains the vector, where its name does not.
	Note string `json:"note,omitempty"`
	// ManifestDigest is the manifest digest (spec §5.2, hex).
	ManifestDigest string `json:"manifest_digest"`
	// CEK and PlaintextSHA256 are given for the valid vectors (hex).
	CEK             string `json:"cek,omitempty"`
	PlaintextSHA256 string `json:"plaintext_sha256,omitempty"`
	// Intermediate gives the key derivation of the UPK step by step
	// (spec §7.2), for one device vector of each suite.
	Intermediate *Intermediate `json:"intermediate,omitempty"`
}

// Intermediate holds the values of the UPK key derivation (spec §7.2), hex.
type Intermediate struct {
	// EphemeralPublicKey is the raw ephemeral key of the wrapped key.
	EphemeralPublicKey string `json:"ephemeral_public_key"`
	// RecipientKeyID is the UPK's recipient key-id.
	RecipientKeyID string `json:"recipient_key_id"`
	// SharedSecret is Z = ECDH(recipient private key, ephemeral key).
	SharedSecret string `json:"shared_secret"`
	// KDFContext is CBOR(KDF_Context), the HKDF info.
	KDFContext string `json:"kdf_context"`
	// KEK is HKDF-SHA-256(salt = empty, IKM = Z, info = KDFContext, 32).
	KEK string `json:"kek"`
	// WrappedCEK is the recipient ciphertext, AES-KW(KEK, CEK).
	WrappedCEK string `json:"wrapped_cek"`
}

// vectorPlaintext is the payload of the vectors: 10000 pseudo-random bytes
// (three 4096-byte chunks, the last one short).
func vectorPlaintext() []byte {
	r := rand.NewChaCha8([32]byte{'p', 'l', 'a', 'i', 'n'})
	b := make([]byte, 10000)
	r.Read(b)
	return b
}

// seeded returns a deterministic random source for one vector.
func seeded(name string) *rand.ChaCha8 {
	return rand.NewChaCha8(sha256.Sum256([]byte("sbm test vector " + name)))
}

// vectorContext opens (creating with -update if missing) a fixed context.
func vectorContext(t *testing.T, suite trust.Suite, files map[string][]byte) *trust.Context {
	t.Helper()
	dir := filepath.Join(vectorsDir, "context-"+string(suite))
	if _, err := os.Stat(dir); os.IsNotExist(err) && *update {
		vendor, _ := trust.ParseUUID("5b4d3c2a-1f0e-4d9c-8b7a-695847362514")
		class, _ := trust.ParseUUID("0c1d2e3f-4a5b-4c6d-9e8f-a0b1c2d3e4f5")
		if _, err := trust.Init(dir, &trust.InitOptions{Suite: suite, VendorID: &vendor, ClassID: &class, Organization: "SBM test vectors", Now: func() time.Time { return vectorTime }}); err != nil {
			t.Fatal(err)
		}
	}
	c, err := trust.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The key certificates are signed deterministically too: sign them
	// again and compare (with -update, rewrite them and reopen).
	kcs := vectorKeyCerts(t, c)
	if *update {
		changed := false
		for name, b := range kcs {
			if old, _ := os.ReadFile(filepath.Join(vectorsDir, name)); !bytes.Equal(old, b) {
				if err := os.WriteFile(filepath.Join(vectorsDir, name), b, 0o644); err != nil {
					t.Fatal(err)
				}
				changed = true
			}
		}
		if changed {
			if c, err = trust.Open(dir, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, b := range kcs {
		files[name] = b
	}
	return c
}

// vectorKeyCerts signs the key certificates of context c (spec §4) again
// with its root key and returns them by file name.
func vectorKeyCerts(t *testing.T, c *trust.Context) map[string][]byte {
	t.Helper()
	root, err := c.Signer(trust.RootKey)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, kc := range []struct {
		file string
		role trust.KeyRole
		n    uint
	}{{"image-signing.keycert", trust.ImageSigningKey, 1}, {"update-authority.keycert", trust.UpdateAuthorityKey, 2}} {
		signer, err := c.Signer(kc.role)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := hostcose.RawPublicKey(signer.Public())
		if err != nil {
			t.Fatal(err)
		}
		alg, err := hostcose.Algorithm(signer.Public())
		if err != nil {
			t.Fatal(err)
		}
		vendor := c.VendorID()
		payload, err := hostcose.Marshal(struct {
			Role     uint   `cbor:"1,keyasint"`
			Alg      int64  `cbor:"2,keyasint"`
			Key      []byte `cbor:"3,keyasint"`
			VendorID []byte `cbor:"4,keyasint"`
			Issued   uint64 `cbor:"5,keyasint"`
		}{kc.n, int64(alg), raw, vendor[:], uint64(vectorTime.Unix())})
		if err != nil {
			t.Fatal(err)
		}
		b, err := hostcose.Sign1(root, hostcose.ContentTypeKeyCert, payload, nil)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(c.Dir())+"/"+kc.file] = b
	}
	return out
}

// vectorKAKey loads (creating with -update if missing) a fixed
// key-agreement key.
func vectorKAKey(t *testing.T, suite trust.Suite, name string) (*ecdh.PrivateKey, string) {
	t.Helper()
	rel := filepath.Join("keys", name+"-"+string(suite)+".pem")
	p := filepath.Join(vectorsDir, rel)
	if _, err := os.Stat(p); os.IsNotExist(err) && *update {
		k, err := suite.GenerateKeyAgreementKey()
		if err != nil {
			t.Fatal(err)
		}
		pemBytes, _ := trust.MarshalPrivateKey(k, nil)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, pemBytes, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	k, err := trust.LoadKeyAgreementKey(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	return k, rel
}

// buildVectors regenerates every vector file in memory.
func buildVectors(t *testing.T, files map[string][]byte) []Vector {
	var vecs []Vector
	plain := vectorPlaintext()
	psum := sha256.Sum256(plain)
	now := func() time.Time { return vectorTime }
	for _, suite := range []trust.Suite{trust.SuiteP256, trust.SuiteEd25519} {
		c := vectorContext(t, suite, files)
		dev, devRel := vectorKAKey(t, suite, "device")
		other, otherRel := vectorKAKey(t, suite, "other-device")
		s := string(suite)
		ctxRel := "context-" + s
		base := Vector{Suite: s, Context: ctxRel, Time: vectorTime.Add(24 * time.Hour)}
		year := vectorTime.Add(365 * 24 * time.Hour)
		createChunks := func(name string, classUPK bool, chunk int) *Created {
			res, err := Create(c, &firmware.Image{Data: plain, Format: firmware.FormatBinary}, &CreateOptions{
				Version: "1.2.3", SecurityCounter: 7, ClassUPK: classUPK, ChunkSize: chunk, Now: now, Rand: seeded(s + name),
				UPKOptions: upk.Options{NotAfter: year},
			})
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		create := func(name string, classUPK bool) *Created { return createChunks(name, classUPK, 0) }
		marshal := func(p *Package) []byte {
			b, err := p.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		issueFor := func(name string, manifest []byte, cek *[32]byte, r upk.Recipient, o upk.Options) []byte {
			o.Now, o.Rand = now, seeded(s+name)
			u, err := upk.Issue(c, manifest, cek, r, &o)
			if err != nil {
				t.Fatal(err)
			}
			return u
		}
		devRcp := func(key *ecdh.PublicKey) upk.Recipient {
			return upk.Recipient{Kind: upk.Device, Key: key, DeviceID: vectorDeviceID}
		}
		issue := func(name string, res *Created, key *ecdh.PublicKey, notAfter time.Time) []byte {
			return issueFor(name, res.Package.Manifest, &res.CEK, devRcp(key), upk.Options{NotAfter: notAfter})
		}
		// resign re-signs a manifest or UPK with the context's key after
		// replacing the bytes old by new in its payload.
		resign := func(msg []byte, ct string, role trust.KeyRole, keyCert, old, new []byte) []byte {
			m, err := hostcose.Parse(msg, ct)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Count(m.Payload, old) != 1 {
				t.Fatalf("resign: %x is not in the payload once", old)
			}
			signer, err := c.Signer(role)
			if err != nil {
				t.Fatal(err)
			}
			b, err := hostcose.Sign1(signer, ct, bytes.Replace(m.Payload, old, new, 1), keyCert)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		add := func(v Vector, name string, code wire.Code, pkg *Package, data map[string][]byte) {
			v.Name = s + "-" + name
			v.Code, v.Expect = int(code), code.String()
			md := sha256.Sum256(pkg.Manifest)
			v.ManifestDigest = hex.EncodeToString(md[:])
			files[v.Package] = marshal(pkg)
			for f, b := range data {
				files[f] = b
			}
			vecs = append(vecs, v)
		}
		ok := func(v Vector, cek *[32]byte) Vector {
			v.CEK, v.PlaintextSHA256 = hex.EncodeToString(cek[:]), hex.EncodeToString(psum[:])
			return v
		}

		// A package with a device UPK.
		dp := create("device", false)
		dpFile, dupkFile := s+"-device.pkg", s+"-device.upk"
		dupk := issue("device-upk", dp, dev.PublicKey(), year)
		v := ok(base, &dp.CEK)
		v.Package, v.UPK, v.RecipientKey, v.RecipientDeviceID = dpFile, dupkFile, devRel, hex.EncodeToString(vectorDeviceID)
		v.Intermediate = intermediate(t, dupk, dev)
		add(v, "device", wire.CodeOK, dp.Package, map[string][]byte{dupkFile: dupk})

		// A package carrying a class UPK.
		cp := create("class", true)
		v = ok(base, &cp.CEK)
		v.Package, v.RecipientKey = s+"-class.pkg", ctxRel+"/keys/class-ka.key"
		add(v, "class", wire.CodeOK, cp.Package, nil)

		// Non-default chunk sizes: 1024 (ten chunks, the last short) and
		// 65536 (one chunk).
		for _, chunk := range []int{1024, 65536} {
			name := fmt.Sprintf("chunk-%d", chunk)
			res := createChunks(name, false, chunk)
			v = ok(base, &res.CEK)
			v.Package, v.UPK, v.RecipientKey, v.RecipientDeviceID = s+"-"+name+".pkg", s+"-"+name+".upk", devRel, hex.EncodeToString(vectorDeviceID)
			add(v, name, wire.CodeOK, res.Package, map[string][]byte{v.UPK: issue(name+"-upk", res, dev.PublicKey(), year)})
		}

		// Several UPKs in the package: the class's, another device's and
		// this device's; the verifier uses the first one for its key.
		several := *dp.Package
		several.UPKs = [][]byte{
			issueFor("several-class-upk", dp.Package.Manifest, &dp.CEK, upk.ClassRecipient(c), upk.Options{NotAfter: year}),
			issue("several-other-upk", dp, other.PublicKey(), year),
			issue("several-device-upk", dp, dev.PublicKey(), year),
		}
		v = ok(base, &dp.CEK)
		v.Package, v.RecipientKey, v.RecipientDeviceID = s+"-several-upks.pkg", devRel, hex.EncodeToString(vectorDeviceID)
		v.Note = "valid for the §9 verification; a device installing over the connection protocol refuses it with 7, as it takes exactly one UPK record (protocol.md §4.4)"
		add(v, "several-upks", wire.CodeOK, &several, nil)

		neg := func(name string, code wire.Code, pkg *Package, upkFile string, upkBytes []byte, key string) *Vector {
			v := base
			v.Package, v.UPK, v.RecipientKey = s+"-"+name+".pkg", upkFile, key
			if key == devRel || key == otherRel {
				v.RecipientDeviceID = hex.EncodeToString(vectorDeviceID)
			}
			var data map[string][]byte
			if upkBytes != nil {
				data = map[string][]byte{upkFile: upkBytes}
			}
			add(v, name, code, pkg, data)
			return &vecs[len(vecs)-1]
		}
		// Bad manifest signature: last byte of the signature flipped.
		bad := *dp.Package
		bad.Manifest = bytes.Clone(dp.Package.Manifest)
		bad.Manifest[len(bad.Manifest)-1] ^= 0x01
		neg("bad-signature", wire.CodeSignature, &bad, dupkFile, nil, devRel)
		// Truncated: the last chunk is missing.
		tr := *dp.Package
		tr.Payload = dp.Package.Payload[:2*(4096+16)]
		neg("truncated", wire.CodeFormat, &tr, dupkFile, nil, devRel)
		// Reordered: chunks 0 and 1 swapped.
		ro := *dp.Package
		ro.Payload = bytes.Clone(dp.Package.Payload)
		n := 4096 + 16
		copy(ro.Payload[:n], dp.Package.Payload[n:2*n])
		copy(ro.Payload[n:2*n], dp.Package.Payload[:n])
		neg("reordered", wire.CodeDecrypt, &ro, dupkFile, nil, devRel)
		// Wrong recipient: a UPK for another device's key.
		neg("wrong-recipient", wire.CodeNotRecipient, dp.Package, s+"-wrong-recipient.upk", issue("wrong-recipient-upk", dp, other.PublicKey(), year), devRel)
		// Expired: a UPK valid for one hour on the vector date.
		neg("expired", wire.CodeExpired, dp.Package, s+"-expired.upk", issue("expired-upk", dp, dev.PublicKey(), vectorTime.Add(time.Hour)), devRel)
		// Not yet valid: a UPK valid from two days after the vector date.
		neg("not-yet-valid", wire.CodeExpired, dp.Package, s+"-not-yet-valid.upk",
			issueFor("not-yet-valid-upk", dp.Package.Manifest, &dp.CEK, devRcp(dev.PublicKey()), upk.Options{NotBefore: vectorTime.Add(48 * time.Hour), NotAfter: year}), devRel)
		// Bound to another manifest: a UPK for the class package's manifest.
		neg("other-manifest", wire.CodeManifestBinding, dp.Package, s+"-other-manifest.upk", issue("other-manifest-upk", cp, dev.PublicKey(), year), devRel)
		// Vendor mismatch: a manifest re-signed by the image-signing key with
		// another vendor ID, and a UPK bound to it.
		vendor := c.VendorID()
		otherVendor := bytes.Repeat([]byte{0x5a}, 16)
		vm := *dp.Package
		vm.Manifest = resign(dp.Package.Manifest, hostcose.ContentTypeManifest, trust.ImageSigningKey, c.ImageSigningKeyCert(), vendor[:], otherVendor)
		neg("vendor-mismatch", wire.CodeVendorClass, &vm, s+"-vendor-mismatch.upk",
			issueFor("vendor-mismatch-upk", vm.Manifest, &dp.CEK, devRcp(dev.PublicKey()), upk.Options{NotAfter: year}), devRel).Note =
			"the manifest's vendor-id is not the context's, though its signature is valid"
		// Class mismatch: a device UPK re-signed by the update authority with
		// another class ID.
		class := c.ClassID()
		neg("class-mismatch", wire.CodeVendorClass, dp.Package, s+"-class-mismatch.upk",
			resign(dupk, hostcose.ContentTypeUPK, trust.UpdateAuthorityKey, c.UpdateAuthorityKeyCert(), class[:], bytes.Repeat([]byte{0xc1}, 16)), devRel).Note =
			"the UPK's class-id is not the context's, though its signature is valid"
		// Escrow UPKs are never for a device (spec §7.1): the context's own
		// escrow UPK with the escrow key, and a kind-3 UPK whose key-id is
		// the device's.
		neg("escrow", wire.CodeNotRecipient, dp.Package, s+"-escrow.upk", dp.Escrow, ctxRel+"/keys/escrow.key").Note =
			"recipient kind 3 with the context's escrow key: only the OEM's escrow check (sbm image verify --escrow) accepts it"
		neg("escrow-device-key", wire.CodeNotRecipient, dp.Package, s+"-escrow-device-key.upk",
			issueFor("escrow-device-key-upk", dp.Package.Manifest, &dp.CEK, upk.Recipient{Kind: upk.Escrow, Key: dev.PublicKey()}, upk.Options{NotAfter: year}), devRel).Note =
			"recipient kind 3 whose key-id is the device's key: the unwrap would succeed, the kind is refused"
		if suite == trust.SuiteP256 {
			// High-S (spec §2): the manifest's and the UPK's valid
			// signatures replaced by their high-S twins.
			hs := *dp.Package
			hs.Manifest = highS(t, dp.Package.Manifest)
			neg("high-s-manifest", wire.CodeSignature, &hs, dupkFile, nil, devRel).Note =
				"the device vector with the manifest's s replaced by n - s: a valid ECDSA signature, but not low-S"
			neg("high-s-upk", wire.CodeSignature, dp.Package, s+"-high-s-upk.upk", highS(t, dupk), devRel).Note =
				"the device vector's UPK with s replaced by n - s: a valid ECDSA signature, but not low-S"
		}
		// A garbage UPK record next to a valid one (spec §8).
		garbage := *dp.Package
		garbage.UPKs = [][]byte{dupk, []byte("this record is not a UPK")}
		neg("garbage-upk", wire.CodeFormat, &garbage, "", nil, devRel).Note =
			"the first UPK record is valid and opens the package; the second is not a COSE_Sign1, so the package is invalid"
	}
	return vecs
}

// highS returns the ES256 COSE_Sign1 msg with its signature r ‖ s
// replaced by r ‖ n − s.
func highS(t *testing.T, msg []byte) []byte {
	t.Helper()
	m, err := cose.DecodeSign1(msg)
	if err != nil {
		t.Fatal(err)
	}
	sig := bytes.Clone(m.Signature)
	n := elliptic.P256().Params().N
	new(big.Int).Sub(n, new(big.Int).SetBytes(sig[32:])).FillBytes(sig[32:])
	return cose.AppendSign1(nil, m.Protected, m.Unprotected, m.Payload, sig)
}

// intermediate computes the key derivation of a UPK for key (spec §7.2)
// from the spec's formulas, independently of the upk and secpkg packages,
// and checks that it unwraps the UPK's wrapped key.
func intermediate(t *testing.T, u []byte, key *ecdh.PrivateKey) *Intermediate {
	t.Helper()
	m, err := hostcose.Parse(u, hostcose.ContentTypeUPK)
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Recipient struct {
			KeyID []byte `cbor:"2,keyasint"`
		} `cbor:"6,keyasint"`
		Wrapped struct {
			_           struct{} `cbor:",toarray"`
			Protected   []byte
			Unprotected map[int64]map[int64]any
			Ciphertext  []byte
		} `cbor:"9,keyasint"`
	}
	if err := hostcose.Unmarshal(m.Payload, &p); err != nil {
		t.Fatal(err)
	}
	ck := p.Wrapped.Unprotected[-1]
	raw, _ := ck[-2].([]byte)
	if y, ok := ck[-3].([]byte); ok {
		raw = append(append([]byte{4}, raw...), y...)
	}
	eph, err := key.Curve().NewPublicKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	z, err := key.ECDH(eph)
	if err != nil {
		t.Fatal(err)
	}
	// 84 24 83 F6 F6 F6 83 58 20 ‖ K ‖ F6 F6 83 19 0100 44 A101381E 4A "SBM UPK v1"
	info, _ := hex.DecodeString("842483f6f6f6835820" + hex.EncodeToString(p.Recipient.KeyID) +
		"f6f6" + "83190100" + "44a101381e" + "4a" + hex.EncodeToString([]byte("SBM UPK v1")))
	kek, err := hkdf.Key(sha256.New, z, nil, string(info), 32)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := aeskw.Unwrap(kek, p.Wrapped.Ciphertext); err != nil {
		t.Fatalf("the KEK of spec §7.2 does not unwrap the vector's CEK: %v", err)
	}
	return &Intermediate{
		EphemeralPublicKey: hex.EncodeToString(raw),
		RecipientKeyID:     hex.EncodeToString(p.Recipient.KeyID),
		SharedSecret:       hex.EncodeToString(z),
		KDFContext:         hex.EncodeToString(info),
		KEK:                hex.EncodeToString(kek),
		WrappedCEK:         hex.EncodeToString(p.Wrapped.Ciphertext),
	}
}

// TestVectors regenerates the test vectors and compares them byte for byte
// with testdata/vectors; -update rewrites them. Each vector is then
// verified and the verifier's error mapped to its protocol code
// (docs/sbm.md, "Error mapping"), which must be the vector's.
func TestVectors(t *testing.T) {
	files := map[string][]byte{}
	vecs := buildVectors(t, files)
	js, err := json.MarshalIndent(vecs, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	files["vectors.json"] = append(js, '\n')
	for name, want := range files {
		p := filepath.Join(vectorsDir, name)
		if *update {
			if err := os.WriteFile(p, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("%v (run go test ./image -run TestVectors -update)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: regenerated vector differs from testdata (a format change? then -update)", name)
		}
	}
	for _, v := range vecs {
		t.Run(v.Name, func(t *testing.T) {
			err := verifyVector(t, v)
			if err != nil {
				t.Logf("rejected: %v", err)
			}
			if got := vectorCode(err); int(got) != v.Code {
				t.Fatalf("code %d (%v), want %d (%s); error: %v", got, got, v.Code, v.Expect, err)
			}
			if v.CEK != "" {
				if err := checkCEK(t, v); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// vectorCode maps a verification error to its protocol code, as the SBM
// does (docs/sbm.md, "Error mapping"; sbm's codeOf).
func vectorCode(err error) wire.Code {
	var ce *secpkg.ChunkError
	switch {
	case err == nil:
		return wire.CodeOK
	case errors.Is(err, secpkg.ErrVendor), errors.Is(err, secpkg.ErrClass):
		return wire.CodeVendorClass
	case errors.Is(err, secpkg.ErrSignature), errors.Is(err, secpkg.ErrKeyCert),
		errors.Is(err, secpkg.ErrWrongRole), errors.Is(err, secpkg.ErrAlgorithm),
		errors.Is(err, secpkg.ErrContentType):
		return wire.CodeSignature
	case errors.Is(err, secpkg.ErrNotRecipient), errors.Is(err, secpkg.ErrUnwrap):
		return wire.CodeNotRecipient
	case errors.Is(err, secpkg.ErrManifestMismatch):
		return wire.CodeManifestBinding
	case errors.Is(err, secpkg.ErrExpired), errors.Is(err, secpkg.ErrNotYetValid):
		return wire.CodeExpired
	case errors.Is(err, secpkg.ErrDigest):
		return wire.CodeDigest
	case errors.Is(err, secpkg.ErrChunk), errors.As(err, &ce):
		return wire.CodeDecrypt
	}
	return wire.CodeFormat
}

// checkCEK checks a valid vector's CEK: it must open the payload's first
// chunk.
func checkCEK(t *testing.T, v Vector) error {
	data, err := os.ReadFile(filepath.Join(vectorsDir, v.Package))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(data)
	if err != nil {
		return err
	}
	m, err := secpkg.DecodeManifest(p.Manifest)
	if err != nil {
		return err
	}
	var cek [32]byte
	if b, err := hex.DecodeString(v.CEK); err != nil || copy(cek[:], b) != 32 {
		return fmt.Errorf("bad cek %q", v.CEK)
	}
	if hex.EncodeToString(m.Digest[:]) != v.ManifestDigest {
		return fmt.Errorf("manifest digest %x, vectors.json says %s", m.Digest, v.ManifestDigest)
	}
	var plain bytes.Buffer
	if err := decrypt(&cek, m, &sliceChunks{p.Payload}, int64(len(p.Payload)), &plain); err != nil {
		return fmt.Errorf("the vector's cek: %w", err)
	}
	if sum := sha256.Sum256(plain.Bytes()); hex.EncodeToString(sum[:]) != v.PlaintextSHA256 {
		return fmt.Errorf("plaintext digest %x, vectors.json says %s", sum, v.PlaintextSHA256)
	}
	return nil
}

// verifyVector checks one vector with the device-side verifier.
func verifyVector(t *testing.T, v Vector) error {
	t.Helper()
	c, err := trust.Open(filepath.Join(vectorsDir, v.Context), nil)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(vectorsDir, v.Package))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(data)
	if err != nil {
		return err
	}
	opts := &VerifyOptions{Now: v.Time}
	if v.UPK != "" {
		if opts.UPK, err = os.ReadFile(filepath.Join(vectorsDir, v.UPK)); err != nil {
			t.Fatal(err)
		}
	}
	if v.RecipientKey != "" {
		if opts.Key, err = trust.LoadKeyAgreementKey(filepath.Join(vectorsDir, v.RecipientKey), nil); err != nil {
			t.Fatal(err)
		}
	}
	if opts.DeviceID, err = hex.DecodeString(v.RecipientDeviceID); err != nil {
		t.Fatal(err)
	}
	if len(opts.DeviceID) == 0 {
		opts.DeviceID = nil
	}
	var plain bytes.Buffer
	opts.Plaintext = &plain
	if _, err := Verify(c, p, opts); err != nil {
		return err
	}
	if sum := sha256.Sum256(plain.Bytes()); hex.EncodeToString(sum[:]) != v.PlaintextSHA256 {
		return fmt.Errorf("plaintext digest %x, vectors.json says %s", sum, v.PlaintextSHA256)
	}
	return nil
}
