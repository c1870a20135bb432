package fleetsim

import (
	"bytes"
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sbm-project/sbm/image"
	"github.com/sbm-project/sbm/internal/firmware"
	"github.com/sbm-project/sbm/server"
	"github.com/sbm-project/sbm/server/store/sqlite"
	"github.com/sbm-project/sbm/trust"
)

// service runs the OEM service on 127.0.0.1 over a new SQLite store, with
// a release published and a rollout of it started, and returns its URL
// and an operator client.
func service(t *testing.T, percent float64, maxFailures string) (*trust.Context, string, *server.Client, string) {
	t.Helper()
	ctx := context.Background()
	c, err := trust.Init(filepath.Join(t.TempDir(), "ctx"), nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv, err := server.New(server.Config{Context: c, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	tc, err := srv.TLSConfig([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln, tc) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	url := "https://" + ln.Addr().String()
	cred, err := c.OperatorCredential()
	if err != nil {
		t.Fatal(err)
	}
	op, err := server.NewClient(c, url, cred)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(op.Close)
	cr, err := image.Create(c, &firmware.Image{Data: bytes.Repeat([]byte("app "), 5000), Format: firmware.FormatBinary},
		&image.CreateOptions{Version: "2.0.0", SecurityCounter: 2, ClassUPK: true})
	if err != nil {
		t.Fatal(err)
	}
	pkg, err := cr.Package.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := op.PublishRelease(ctx, pkg, false); err != nil {
		t.Fatal(err)
	}
	ro, err := op.StartRollout(ctx, &server.RolloutRequest{Release: "2.0.0", Percent: percent, MaxFailures: maxFailures})
	if err != nil {
		t.Fatal(err)
	}
	return c, url, op, ro.ID
}

// TestSimulate: simulated devices are certified, offered the release,
// verify their own UPK and report; the service's counts match theirs.
func TestSimulate(t *testing.T) {
	c, url, op, id := service(t, 100, "")
	sum, err := Run(context.Background(), Config{Context: c, Server: url, Devices: 12, Duration: 3 * time.Second, Interval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", sum)
	if sum.Errors != 0 || sum.Updated != 12 || sum.Failed != 0 || sum.Polls < 12 || sum.P99 == 0 || sum.P50 > sum.P99 {
		t.Fatalf("summary %+v", sum)
	}
	st, err := op.Rollout(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if st.Targeted != 12 || st.Downloaded != 12 || st.Updated != 12 || st.Failed != 0 || st.State != "running" {
		t.Fatalf("rollout %+v", st)
	}
	fleet, err := op.Fleet(context.Background())
	if err != nil || len(fleet) != 12 {
		t.Fatalf("fleet of %d, %v", len(fleet), err)
	}
	for _, d := range fleet {
		if d.Version != "2.0.0" || d.LastSeen.IsZero() {
			t.Fatalf("device %+v", d)
		}
	}
}

// TestSimulateFailures: devices that all fail halt the rollout at its
// threshold; the others are offered nothing more.
func TestSimulateFailures(t *testing.T) {
	c, url, op, id := service(t, 100, "2")
	sum, err := Run(context.Background(), Config{Context: c, Server: url, Devices: 10, Duration: 2 * time.Second, Interval: 100 * time.Millisecond, FailPercent: 100})
	if err != nil {
		t.Fatal(err)
	}
	st, err := op.Rollout(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != "halted" || st.Failed < 3 || st.Updated != 0 || sum.Updated != 0 || sum.Failed != st.Failed {
		t.Fatalf("rollout %+v, summary %+v", st, sum)
	}
}

func TestConfigRefused(t *testing.T) {
	c, err := trust.Init(filepath.Join(t.TempDir(), "ctx"), nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{Server: "https://192.0.2.1:8443", Devices: 1, Duration: time.Second}, "on this host only"},
		{Config{Server: "https://example.com:8443", Devices: 1, Duration: time.Second}, "on this host only"},
		{Config{Server: "http://127.0.0.1:1", Devices: 1, Duration: time.Second}, "want https"},
		{Config{Server: "https://127.0.0.1:1", Devices: MaxDevices + 1, Duration: time.Second}, "devices"},
		{Config{Server: "https://127.0.0.1:1", Devices: 1, Duration: time.Hour}, "duration"},
		{Config{Server: "https://127.0.0.1:1", Devices: 1, Duration: time.Second, FailPercent: 101}, "fail percent"},
	}
	for _, tt := range tests {
		tt.cfg.Context = c
		_, err := Run(context.Background(), tt.cfg)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want %q", tt.cfg, err, tt.want)
		}
	}
	if _, err := Run(context.Background(), Config{Context: c, Server: "https://10.0.0.1:1", Devices: 1, Duration: time.Second}); !errors.Is(err, ErrNotLoopback) {
		t.Fatalf("not loopback: %v", err)
	}
}

func TestHistogram(t *testing.T) {
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Millisecond)
	}
	for _, q := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.99, 990 * time.Millisecond}} {
		got := h.quantile(q.q)
		if got < q.want || float64(got) > float64(q.want)*1.06 {
			t.Errorf("quantile %v = %v, want within 5 %% above %v", q.q, got, q.want)
		}
	}
}
