package client_test

import (
	"context"
	"flag"
	"strconv"
	"testing"

	"github.com/sbm-project/sbm/wire"
	"github.com/sbm-project/sbm/wire/client"
	"github.com/sbm-project/sbm/wire/internal/wiretest"
)

var transferSize = flag.Int("transfer-size", 1<<20, "package size for BenchmarkTransfer")

// BenchmarkTransfer sends a package over the virtual MCU's UART paced at
// the line rate (10 bits per byte, both directions) and reports the
// payload rate as a fraction of the line rate. At 115200 baud a 1 MiB
// package takes about 90 s per iteration:
//
//	go test ./wire/client -run '^$' -bench Transfer -benchtime 1x -transfer-size 1048576
func BenchmarkTransfer(b *testing.B) {
	for _, baud := range []int{115200, 1_000_000} {
		b.Run(strconv.Itoa(baud), func(b *testing.B) {
			tg := wiretest.NewTarget()
			dev := startDevice(b, tg, wire.Config{})
			dev.d.UART().SetBaud(baud)
			c := client.New(dev.d.UART().Pipe())
			defer c.Close()
			ctx := context.Background()
			if _, err := c.Hello(ctx); err != nil {
				b.Fatal(err)
			}
			pkg := randomPackage(*transferSize, 1)
			b.SetBytes(int64(len(pkg)))
			b.ResetTimer()
			var total float64
			for i := 0; i < b.N; i++ {
				st, err := c.Send(ctx, pkg, client.SendOptions{})
				if err != nil {
					b.Fatal(err)
				}
				total += st.Duration.Seconds()
			}
			rate := float64(len(pkg)) * float64(b.N) / total
			b.ReportMetric(rate/(float64(baud)/10), "line-fraction")
			b.ReportMetric(rate, "payload-B/s")
		})
	}
}
