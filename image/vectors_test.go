package image

import (
	"bytes"
	"crypto/ecdh"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sbm-project/sbm/internal/firmware"
	"github.com/sbm-project/sbm/internal/hostcose"
	"github.com/sbm-project/sbm/trust"
	"github.com/sbm-project/sbm/upk"
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
	// Context is the context directory (relative to testdata/vectors).
	Context string `json:"context"`
	Package string `json:"package"`
	// UPK is a separate UPK file, if any; otherwise the first UPK in the
	// package is used.
	UPK string `json:"upk,omitempty"`
	// RecipientKey is the recipient's key-agreement private key (PKCS#8).
	RecipientKey string `json:"recipient_key,omitempty"`
	// RecipientDeviceID is the recipient device's ID (hex), for device UPKs.
	RecipientDeviceID string `json:"recipient_device_id,omitempty"`
	// Time is the verification time.
	Time time.Time `json:"time"`
	// Expect is "ok" or the failure the verifier must report.
	Expect string `json:"expect"`
	// CEK and PlaintextSHA256 are given for the valid vectors (hex).
	CEK             string `json:"cek,omitempty"`
	PlaintextSHA256 string `json:"plaintext_sha256,omitempty"`
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
func buildVectors(t *testing.T) (map[string][]byte, []Vector) {
	files := map[string][]byte{}
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
		create := func(name string, classUPK bool) *Created {
			res, err := Create(c, &firmware.Image{Data: plain, Format: firmware.FormatBinary}, &CreateOptions{
				Version: "1.2.3", SecurityCounter: 7, ClassUPK: classUPK, Now: now, Rand: seeded(s + name),
				UPKOptions: upk.Options{NotAfter: vectorTime.Add(365 * 24 * time.Hour)},
			})
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		marshal := func(p *Package) []byte {
			b, err := p.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		issue := func(name string, res *Created, key *ecdh.PublicKey, notAfter time.Time) []byte {
			u, err := upk.Issue(c, res.Package.Manifest, &res.CEK, upk.Recipient{Kind: upk.Device, Key: key, DeviceID: vectorDeviceID},
				&upk.Options{Now: now, Rand: seeded(s + name), NotAfter: notAfter})
			if err != nil {
				t.Fatal(err)
			}
			return u
		}
		add := func(v Vector, name string, data map[string][]byte) {
			v.Name = s + "-" + name
			for f, b := range data {
				files[f] = b
			}
			vecs = append(vecs, v)
		}
		year := vectorTime.Add(365 * 24 * time.Hour)

		// A package with a device UPK.
		dp := create("device", false)
		dpFile, dupkFile := s+"-device.pkg", s+"-device.upk"
		dupk := issue("device-upk", dp, dev.PublicKey(), year)
		v := base
		v.Package, v.UPK, v.RecipientKey, v.RecipientDeviceID = dpFile, dupkFile, devRel, hex.EncodeToString(vectorDeviceID)
		v.Expect, v.CEK, v.PlaintextSHA256 = "ok", hex.EncodeToString(dp.CEK[:]), hex.EncodeToString(psum[:])
		add(v, "device", map[string][]byte{dpFile: marshal(dp.Package), dupkFile: dupk})

		// A package carrying a class UPK.
		cp := create("class", true)
		v = base
		v.Package, v.RecipientKey = s+"-class.pkg", ctxRel+"/keys/class-ka.key"
		v.Expect, v.CEK, v.PlaintextSHA256 = "ok", hex.EncodeToString(cp.CEK[:]), hex.EncodeToString(psum[:])
		add(v, "class", map[string][]byte{v.Package: marshal(cp.Package)})

		neg := func(name, expect string, pkg *Package, upkFile string, upkBytes []byte, key string) {
			v := base
			v.Package, v.UPK, v.RecipientKey, v.Expect = s+"-"+name+".pkg", upkFile, key, expect
			if key == devRel || key == otherRel {
				v.RecipientDeviceID = hex.EncodeToString(vectorDeviceID)
			}
			data := map[string][]byte{v.Package: marshal(pkg)}
			if upkBytes != nil {
				data[upkFile] = upkBytes
			}
			add(v, name, data)
		}
		// Bad manifest signature: last byte of the signature flipped.
		bad := *dp.Package
		bad.Manifest = bytes.Clone(dp.Package.Manifest)
		bad.Manifest[len(bad.Manifest)-1] ^= 0x01
		neg("bad-signature", "manifest signature", &bad, dupkFile, nil, devRel)
		// Truncated: the last chunk is missing.
		tr := *dp.Package
		tr.Payload = dp.Package.Payload[:2*(4096+16)]
		neg("truncated", "payload length", &tr, dupkFile, nil, devRel)
		// Reordered: chunks 0 and 1 swapped.
		ro := *dp.Package
		ro.Payload = bytes.Clone(dp.Package.Payload)
		n := 4096 + 16
		copy(ro.Payload[:n], dp.Package.Payload[n:2*n])
		copy(ro.Payload[n:2*n], dp.Package.Payload[:n])
		neg("reordered", "chunk 0", &ro, dupkFile, nil, devRel)
		// Wrong recipient: a UPK for another device's key.
		neg("wrong-recipient", "recipient", dp.Package, s+"-wrong-recipient.upk", issue("wrong-recipient-upk", dp, other.PublicKey(), year), devRel)
		// Expired: a UPK valid for one hour on the vector date.
		neg("expired", "expired", dp.Package, s+"-expired.upk", issue("expired-upk", dp, dev.PublicKey(), vectorTime.Add(time.Hour)), devRel)
	}
	return files, vecs
}

// TestVectors regenerates the test vectors and compares them byte for byte
// with testdata/vectors; -update rewrites them.
func TestVectors(t *testing.T) {
	files, vecs := buildVectors(t)
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
			switch {
			case v.Expect == "ok" && err != nil:
				t.Fatalf("valid vector rejected: %v", err)
			case v.Expect != "ok" && err == nil:
				t.Fatalf("invalid vector accepted, want failure mentioning %q", v.Expect)
			case v.Expect != "ok" && !containsFold(err.Error(), v.Expect):
				t.Fatalf("error %q does not mention %q", err, v.Expect)
			}
		})
	}
}

func containsFold(s, sub string) bool {
	return bytes.Contains(bytes.ToLower([]byte(s)), bytes.ToLower([]byte(sub)))
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
