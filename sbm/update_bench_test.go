package sbm

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/internal/secpkg"
	"github.com/sbm-project/sbm/vmcu"
)

// BenchmarkUpdate measures the boot that applies a requested update (the
// SBM authenticates the whole staged package, then installs it and commits)
// for 256 KiB and 1 MiB applications, against the raw cost of the same
// work done once in the same run: AES-256-GCM open of every chunk, SHA-256
// of the plaintext, erase + program of the primary slot. It also reports
// the flash work per update relative to the image size: bytes programmed /
// image bytes, sectors erased / image sectors (the staging writes by the
// application are reported separately as staging-*).
func BenchmarkUpdate(b *testing.B) {
	for _, size := range []int{256 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("size=%dKiB", size>>10), func(b *testing.B) {
			bd, err := vmcu.LookupBoard("default")
			if err != nil {
				b.Fatal(err)
			}
			v := &dev{t: b, d: vmcu.NewMemory(bd, 7), c: ctxA}
			v.installSBM()
			v.provision(false)
			rel := newRelease(b, ctxA, appData(size, 1), "1.0.0", 1)
			if err := v.install(rel.forDevice(v)); err != nil {
				b.Fatal(err)
			}
			f := v.d.Flash(hal.PrivSBM)
			g := f.Geometry()
			primary, _ := g.Region(hal.RegionPrimary)
			sector := g.Sectors[0].Size
			var tOurs, tRaw time.Duration
			var prog, erases, stProg, stErases uint64
			n := 0
			for b.Loop() {
				n++
				next := newRelease(b, ctxA, appData(size, byte(n+1)), fmt.Sprintf("1.0.%d", n), uint32(n+1))
				pkg := next.forDevice(v)
				// The application stages the package and requests the update.
				c0 := v.d.Counters()
				v.app = func(a *AppInfo) {
					s := a.Services
					if err := s.StagingErase(); err != nil {
						b.Fatal(err)
					}
					for off := 0; off < len(pkg); off += 4096 {
						if err := s.StagingWrite(uint32(off), pkg[off:min(off+4096, len(pkg))]); err != nil {
							b.Fatal(err)
						}
					}
					s.RequestUpdate()
					b.Fatal("RequestUpdate returned")
				}
				v.boot(true, false)
				v.app = nil
				c1 := v.d.Counters()
				// The boot that applies the update.
				t0 := time.Now()
				v.boot(true, false)
				tOurs += time.Since(t0)
				c2 := v.d.Counters()
				if v.launched == nil || v.launched.Digest != sha256.Sum256(next.data) {
					b.Fatalf("update not applied\n%s", v.log.String())
				}
				stProg += c1.BytesProgrammed - c0.BytesProgrammed
				stErases += c1.Erases - c0.Erases
				prog += c2.BytesProgrammed - c1.BytesProgrammed
				erases += c2.Erases - c1.Erases
				// The raw work, on a copy of the device.
				tRaw += rawUpdate(b, v.d.Clone(), next, primary.Start, sector)
			}
			sectors := float64((size + int(sector) - 1) / int(sector))
			nn := float64(n)
			b.ReportMetric(float64(tOurs.Nanoseconds())/nn, "ns/update")
			b.ReportMetric(float64(tRaw.Nanoseconds())/nn, "ns/raw")
			b.ReportMetric(float64(tOurs)/float64(tRaw), "x-raw")
			b.ReportMetric(float64(prog)/nn/float64(size), "programmed/image")
			b.ReportMetric(float64(erases)/nn/sectors, "erased/image-sectors")
			b.ReportMetric(float64(stProg)/nn/float64(size), "staging-programmed/image")
			b.ReportMetric(float64(stErases)/nn/sectors, "staging-erased/image-sectors")
		})
	}
}

// rawUpdate does the irreducible work of an update once on d and returns
// its duration: decrypt and authenticate every chunk, hash the plaintext,
// erase the primary sectors and program the image.
func rawUpdate(b *testing.B, d *vmcu.Device, rel *release, start, sector uint32) time.Duration {
	f := d.Flash(hal.PrivSBM)
	m, err := secpkg.DecodeManifest(rel.created.Package.Manifest)
	if err != nil {
		b.Fatal(err)
	}
	block, _ := aes.NewCipher(rel.created.CEK[:])
	gcm, _ := cipher.NewGCM(block)
	payload := rel.created.Package.Payload
	chunk := int(m.ChunkSize) + 16
	nonce := make([]byte, 12)
	copy(nonce, m.NoncePrefix[:])
	buf := make([]byte, 0, 4096)
	t0 := time.Now()
	h := sha256.New()
	nChunks := (len(payload) + chunk - 1) / chunk
	for i := range nChunks {
		binary.BigEndian.PutUint32(nonce[7:], uint32(i))
		nonce[11] = 0
		end := (i + 1) * chunk
		if i == nChunks-1 {
			nonce[11] = 1
			end = len(payload)
		}
		pt, err := gcm.Open(buf[:0], nonce, payload[i*chunk:end], nil)
		if err != nil {
			b.Fatal(err)
		}
		h.Write(pt)
	}
	h.Sum(nil)
	for a := uint32(0); a < uint32(len(rel.data)); a += sector {
		if err := f.Erase(start + a); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Program(start, pad(rel.data, 8)); err != nil {
		b.Fatal(err)
	}
	return time.Since(t0)
}

func pad(p []byte, n int) []byte {
	for len(p)%n != 0 {
		p = append(p, 0xff)
	}
	return p
}
