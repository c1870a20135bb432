package sbm

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/vmcu"
)

// BenchmarkBootVerify measures verified boot of a 1 MiB application on the
// default board against raw crypto/sha256 over the same bytes in the same
// run. verify-vs-raw is raw time / the SBM's hash-and-compare time (goal
// ≥ 0.95); boot-vs-raw is the same for a whole boot (storage load, PUF key
// recovery, key derivation, verification, launch).
func BenchmarkBootVerify(b *testing.B) {
	v, rel := bootedMiB(b, 42)
	f := v.d.Flash(hal.PrivSBM)
	r, _ := f.Geometry().Region(hal.RegionPrimary)
	var tRaw, tVerify, tBoot time.Duration
	timed := func(fn func()) time.Duration { t := time.Now(); fn(); return time.Since(t) }
	want := sha256.Sum256(rel.data)
	b.SetBytes(1 << 20)
	i := 0
	for b.Loop() {
		raw := func() { sha256.Sum256(rel.data) }
		verify := func() {
			sum, err := hashFlash(f, r.Start, uint32(len(rel.data)))
			if err != nil || sum != want {
				b.Fatal("verification failed")
			}
		}
		// Alternate the order so neither side always runs on a warm cache.
		if i%2 == 0 {
			tRaw += timed(raw)
			tVerify += timed(verify)
		} else {
			tVerify += timed(verify)
			tRaw += timed(raw)
		}
		tBoot += timed(func() { v.boot(false, false) })
		if v.launched == nil {
			b.Fatal("application not launched")
		}
		i++
	}
	n := float64(b.N)
	b.ReportMetric(float64(tRaw.Nanoseconds())/n, "ns/raw")
	b.ReportMetric(float64(tVerify.Nanoseconds())/n, "ns/verify")
	b.ReportMetric(float64(tBoot.Nanoseconds())/n, "ns/boot")
	b.ReportMetric(float64(tRaw)/float64(tVerify), "verify-vs-raw")
	b.ReportMetric(float64(tRaw)/float64(tBoot), "boot-vs-raw")
}

// BenchmarkStorageLoad measures what authenticating secure storage costs
// at boot: loading both banks with the MAC check (PUF key recovery, HKDF,
// HMAC-SHA-256 and the class-key pad) against the integrity check alone
// (SHA-256, what the SBM did before records were MACed), in the same run,
// and relates the difference to a whole boot of a 1 MiB application.
// mac-vs-integrity is the MAC load's time / the integrity load's;
// mac-share-of-boot is (MAC load − integrity load) / boot.
func BenchmarkStorageLoad(b *testing.B) {
	v, _ := bootedMiB(b, 43)
	f := v.d.Flash(hal.PrivSBM)
	var tMAC, tInt, tBoot time.Duration
	timed := func(fn func()) time.Duration { t := time.Now(); fn(); return time.Since(t) }
	load := func(p hal.PUF) func() {
		return func() {
			var s storage
			var st state
			s.open(f, p)
			s.load(&st)
			if !st.app.present {
				b.Fatal("no record loaded")
			}
		}
	}
	for b.Loop() {
		tMAC += timed(load(v.d.PUF()))
		tInt += timed(load(nil))
		tBoot += timed(func() { v.boot(false, false) })
	}
	n := float64(b.N)
	b.ReportMetric(float64(tMAC.Nanoseconds())/n, "ns/load-mac")
	b.ReportMetric(float64(tInt.Nanoseconds())/n, "ns/load-integrity")
	b.ReportMetric(float64(tBoot.Nanoseconds())/n, "ns/boot")
	b.ReportMetric(float64(tMAC)/float64(tInt), "mac-vs-integrity")
	b.ReportMetric(float64(tMAC-tInt)/float64(tBoot), "mac-share-of-boot")
}

// bootedMiB returns a provisioned device of the default board (chip seed)
// running a verified 1 MiB application, and that release.
func bootedMiB(b *testing.B, seed uint64) (*dev, *release) {
	b.Helper()
	bd, err := vmcu.LookupBoard("default")
	if err != nil {
		b.Fatal(err)
	}
	v := &dev{t: b, d: vmcu.NewMemory(bd, seed), c: ctxA}
	v.installSBM()
	v.provision(false)
	rel := newRelease(b, ctxA, appData(1<<20, 7), "1.0.0", 1)
	if err := v.install(rel.forDevice(v)); err != nil {
		b.Fatal(err)
	}
	v.expectBoot(rel)
	return v, rel
}
