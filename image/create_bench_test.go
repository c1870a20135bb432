package image

import (
	"bytes"
	"testing"
	"time"

	"github.com/sbm-project/sbm/internal/firmware"
	"github.com/sbm-project/sbm/trust"
)

// discardAt is an io.WriterAt that keeps nothing.
type discardAt struct{}

func (discardAt) WriteAt(p []byte, _ int64) (int, error) { return len(p), nil }

// BenchmarkCreate64MiB measures the streaming CreateTo of a 64 MiB payload
// (the host tools' limit; the output discarded, so the figure is the
// CPU work, not the disk) against the raw primitives on the same bytes in
// the same run: AES-256-GCM seal of every 4 KiB chunk, SHA-256 of the
// payload and one signature. x-raw is the ratio (goal ≤ 1.3). CreateTo also
// signs a placeholder manifest and issues the escrow UPK (and with
// -class a class UPK and its placeholder): a few signatures and key
// agreements, under a millisecond.
func BenchmarkCreate64MiB(b *testing.B) {
	for _, suite := range []trust.Suite{trust.SuiteP256, trust.SuiteEd25519} {
		b.Run(string(suite), func(b *testing.B) {
			f := newFixture(b, suite, 10)
			data := make([]byte, MaxPayloadSize)
			for i := range data {
				data[i] = byte(i * 7)
			}
			signer, err := f.ctx.Signer(trust.ImageSigningKey)
			if err != nil {
				b.Fatal(err)
			}
			raw := rawSealer(b, signer, suite == trust.SuiteEd25519, data, DefaultChunkSize)
			ours := func() {
				src := &Source{R: bytes.NewReader(data), Size: int64(len(data)), Format: firmware.FormatBinary}
				if _, err := CreateTo(f.ctx, src, discardAt{}, &CreateOptions{Version: "1.0.0"}); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(len(data)))
			timed := func(fn func()) time.Duration { t := time.Now(); fn(); return time.Since(t) }
			var tRaw, tOurs time.Duration
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
			b.ReportMetric(float64(tOurs.Nanoseconds())/float64(b.N), "ns/create")
			b.ReportMetric(float64(tRaw.Nanoseconds())/float64(b.N), "ns/raw")
			b.ReportMetric(float64(tOurs)/float64(tRaw), "x-raw")
		})
	}
}
