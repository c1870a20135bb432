package image

import (
	"bytes"
	"crypto/ecdh"
	"crypto/sha256"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/sbm-project/sbm/internal/firmware"
	"github.com/sbm-project/sbm/internal/secpkg"
	"github.com/sbm-project/sbm/trust"
	"github.com/sbm-project/sbm/upk"
	"pgregory.net/rapid"
)

// fixture is a context, a device and a package with a device UPK.
type fixture struct {
	ctx     *trust.Context
	dev     *ecdh.PrivateKey
	devID   []byte
	plain   []byte
	pkg     *Package
	upk     []byte
	created *Created
}

func newFixture(t testing.TB, suite trust.Suite, size int) *fixture {
	t.Helper()
	c, err := trust.Init(filepath.Join(t.TempDir(), "ctx"), &trust.InitOptions{Suite: suite})
	if err != nil {
		t.Fatal(err)
	}
	dev, _ := suite.GenerateKeyAgreementKey()
	f := &fixture{ctx: c, dev: dev, devID: []byte("device-0001"), plain: make([]byte, size)}
	for i := range f.plain {
		f.plain[i] = byte(i * 7)
	}
	f.created, err = Create(c, &firmware.Image{Data: f.plain, Format: firmware.FormatBinary}, &CreateOptions{Version: "1.0.0", SecurityCounter: 1})
	if err != nil {
		t.Fatal(err)
	}
	f.pkg = f.created.Package
	f.upk, err = upk.Issue(c, f.pkg.Manifest, &f.created.CEK, upk.Recipient{Kind: upk.Device, Key: dev.PublicKey(), DeviceID: f.devID}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// verify runs the device-side verification of an encoded package and a UPK.
func (f *fixture) verify(pkg, u []byte) ([]byte, error) {
	p, err := Parse(pkg)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	_, err = Verify(f.ctx, p, &VerifyOptions{Key: f.dev, DeviceID: f.devID, UPK: u, Plaintext: &out})
	return out.Bytes(), err
}

// TestBitFlips flips every bit of a small package and of its UPK, one at a
// time: each must be rejected.
func TestBitFlips(t *testing.T) {
	for _, suite := range []trust.Suite{trust.SuiteP256, trust.SuiteEd25519} {
		t.Run(string(suite), func(t *testing.T) {
			f := newFixture(t, suite, 300)
			enc, err := f.pkg.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if got, err := f.verify(enc, f.upk); err != nil || !bytes.Equal(got, f.plain) {
				t.Fatalf("unmodified package: %v", err)
			}
			flips := 0
			for _, target := range []struct {
				name string
				b    []byte
			}{{"package", enc}, {"upk", f.upk}} {
				for i := range len(target.b) * 8 {
					target.b[i/8] ^= 1 << (i % 8)
					_, err := f.verify(enc, f.upk)
					target.b[i/8] ^= 1 << (i % 8)
					if err == nil {
						t.Fatalf("%s: flipping bit %d (byte %d) was accepted", target.name, i, i/8)
					}
					flips++
				}
			}
			t.Logf("%d single-bit flips, all rejected", flips)
		})
	}
}

// TestHostDeviceRoundTrip is a property test: packages built by the host
// encoder (fxamacker/cbor, go-cose) for random payloads and parameters are
// accepted by the device-side decoder, which recovers the exact plaintext
// and manifest fields.
func TestHostDeviceRoundTrip(t *testing.T) {
	ctxs := map[trust.Suite]*trust.Context{}
	for _, s := range []trust.Suite{trust.SuiteP256, trust.SuiteEd25519} {
		c, err := trust.Init(filepath.Join(t.TempDir(), string(s)), &trust.InitOptions{Suite: s})
		if err != nil {
			t.Fatal(err)
		}
		ctxs[s] = c
	}
	rapid.Check(t, func(rt *rapid.T) {
		suite := rapid.SampledFrom([]trust.Suite{trust.SuiteP256, trust.SuiteEd25519}).Draw(rt, "suite")
		c := ctxs[suite]
		chunk := 1 << rapid.IntRange(8, 16).Draw(rt, "chunkLog2")
		plain := rapid.SliceOfN(rapid.Byte(), 1, 3*chunk+1).Draw(rt, "plain")
		counter := rapid.Uint32().Draw(rt, "counter")
		version := rapid.SampledFrom([]string{"0.0.1", "1.2.3", "10.20.30-beta.1+exp.sha.5114f85"}).Draw(rt, "version")
		slot := rapid.SampledFrom([]string{"primary", "staging", "s"}).Draw(rt, "slot")
		la := rapid.Uint32().Draw(rt, "loadAddress")
		hasLA := rapid.Bool().Draw(rt, "hasLoadAddress")
		classUPK := rapid.Bool().Draw(rt, "classUPK")
		img := &firmware.Image{Data: plain, Format: firmware.FormatBinary, LoadAddress: la, HasLoadAddress: hasLA}
		res, err := Create(c, img, &CreateOptions{Version: version, SecurityCounter: counter, Slot: slot, ChunkSize: chunk, ClassUPK: classUPK})
		if err != nil {
			rt.Fatal(err)
		}
		enc, err := res.Package.MarshalBinary()
		if err != nil {
			rt.Fatal(err)
		}
		p, err := Parse(enc)
		if err != nil {
			rt.Fatal(err)
		}
		var key trust.KeyAgreer
		var u []byte
		if classUPK {
			key, _ = c.ClassKey()
		} else {
			key, _ = suite.GenerateKeyAgreementKey()
			u, err = upk.Issue(c, res.Package.Manifest, &res.CEK, upk.Recipient{Kind: upk.Device, Key: key.PublicKey(), DeviceID: []byte{1, 2, 3}}, nil)
			if err != nil {
				rt.Fatal(err)
			}
		}
		var out bytes.Buffer
		v, err := Verify(c, p, &VerifyOptions{Key: key, UPK: u, DeviceID: []byte{1, 2, 3}, Plaintext: &out})
		if err != nil {
			rt.Fatal(err)
		}
		m := v.Manifest
		if !bytes.Equal(out.Bytes(), plain) {
			rt.Fatal("plaintext differs")
		}
		if m.Version != version || m.SecurityCounter != counter || m.Slot != slot || m.ChunkSize != uint32(chunk) ||
			m.PayloadSize != uint32(len(plain)) || m.PayloadDigest != sha256.Sum256(plain) || m.HasLoadAddress != hasLA ||
			(hasLA && m.LoadAddress != la) || m.VendorID != c.VendorID() || m.ClassID != c.ClassID() || m.Digest != res.ManifestDigest {
			rt.Fatalf("manifest fields differ: %+v", m)
		}
		// The escrow record always recovers the CEK.
		ek, _ := c.EscrowKey()
		if _, err := Verify(c, p, &VerifyOptions{Key: ek, UPK: res.Escrow, Escrow: true}); err != nil {
			rt.Fatalf("escrow UPK: %v", err)
		}
	})
}

// TestEscrowNeverForDevices checks the device-side rule that a kind-3
// (escrow) UPK is refused by a device, even one holding the escrow key.
func TestEscrowNeverForDevices(t *testing.T) {
	f := newFixture(t, trust.SuiteP256, 100)
	a, _ := Anchors(f.ctx)
	u, err := secpkg.VerifyUPK(a, f.created.Escrow)
	if err != nil {
		t.Fatal(err)
	}
	if err := u.CheckDevice(f.devID); !errors.Is(err, secpkg.ErrNotRecipient) {
		t.Fatalf("CheckDevice(escrow UPK) = %v, want ErrNotRecipient", err)
	}
}

// TestTooLarge checks the slot-size limit.
func TestTooLarge(t *testing.T) {
	f := newFixture(t, trust.SuiteEd25519, 10)
	_, err := Create(f.ctx, &firmware.Image{Data: make([]byte, 10000)}, &CreateOptions{Version: "1.0.0", MaxPackageSize: 8192})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
}

func TestCreateRejectsBadOptions(t *testing.T) {
	f := newFixture(t, trust.SuiteEd25519, 10)
	img := &firmware.Image{Data: []byte("x")}
	for _, o := range []CreateOptions{
		{Version: ""}, {Version: "1.2"}, {Version: "01.2.3"}, {Version: "1.2.3-"}, {Version: "1.2.3+a_b"},
		{Version: "1.0.0", ChunkSize: 100}, {Version: "1.0.0", ChunkSize: 5000}, {Version: "1.0.0", ChunkSize: 1 << 17},
		{Version: "1.0.0", Slot: "a-very-long-slot-name"},
	} {
		if _, err := Create(f.ctx, img, &o); err == nil {
			t.Errorf("Create(%+v) accepted", o)
		}
	}
	if _, err := Create(f.ctx, &firmware.Image{}, &CreateOptions{Version: "1.0.0"}); err == nil {
		t.Error("empty payload accepted")
	}
}

// BenchmarkVerify1MiB measures verify+decrypt of a 1 MiB package against
// the raw primitives on the same bytes in the same run: AES-256-GCM open of
// every 4 KiB chunk plus SHA-256 of the plaintext. x-raw is the ratio
// (goal ≤ 1.3).
func BenchmarkVerify1MiB(b *testing.B) {
	f := newFixture(b, trust.SuiteP256, 1<<20)
	enc, _ := f.pkg.MarshalBinary()
	p, err := Parse(enc)
	if err != nil {
		b.Fatal(err)
	}
	raw := rawOpener(b, &f.created.CEK, f.pkg.Manifest, p.Payload)
	var tRaw, tOurs time.Duration
	b.SetBytes(1 << 20)
	// The anchors are built once, as a device holds them from provisioning.
	ver, err := NewVerifier(f.ctx)
	if err != nil {
		b.Fatal(err)
	}
	ours := func() {
		if _, err := ver.Verify(p, &VerifyOptions{Key: f.dev, UPK: f.upk}); err != nil {
			b.Fatal(err)
		}
	}
	timed := func(fn func()) time.Duration { t := time.Now(); fn(); return time.Since(t) }
	i := 0
	for b.Loop() {
		// Alternate the order so neither side always runs on a warm cache.
		if i%2 == 0 {
			tRaw += timed(raw)
			tOurs += timed(ours)
		} else {
			tOurs += timed(ours)
			tRaw += timed(raw)
		}
		i++
	}
	b.ReportMetric(float64(tOurs.Nanoseconds())/float64(b.N), "ns/verify")
	b.ReportMetric(float64(tRaw.Nanoseconds())/float64(b.N), "ns/raw")
	b.ReportMetric(float64(tOurs)/float64(tRaw), "x-raw")
}

// TestTrustKeyCert checks that only valid key certificates of the right
// role become trusted, and that trusting is by exact bytes.
func TestTrustKeyCert(t *testing.T) {
	a1 := newFixture(t, trust.SuiteP256, 10)
	a2 := newFixture(t, trust.SuiteP256, 10)
	anchors, err := Anchors(a1.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := anchors.TrustKeyCert(a2.ctx.ImageSigningKeyCert(), secpkg.RoleImageSigning); !errors.Is(err, secpkg.ErrKeyCert) {
		t.Errorf("another context's key certificate: err = %v, want ErrKeyCert", err)
	}
	if err := anchors.TrustKeyCert(a1.ctx.ImageSigningKeyCert(), secpkg.RoleUpdateAuthority); !errors.Is(err, secpkg.ErrWrongRole) {
		t.Errorf("wrong role: err = %v, want ErrWrongRole", err)
	}
	// A package signed by context 2 still fails against trusted anchors of 1.
	enc, _ := a2.pkg.MarshalBinary()
	p, _ := Parse(enc)
	if _, err := secpkg.VerifyManifest(anchors, p.Manifest); !errors.Is(err, secpkg.ErrKeyCert) {
		t.Errorf("foreign manifest: err = %v", err)
	}
}
