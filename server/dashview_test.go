package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"

	"github.com/sbm-project/sbm/server/dashboard"
)

// TestDashboardOverTheService: the dashboard listener of a real service
// shows its real orders and log, only after a login link that an operator
// asked for over mutual TLS; it serves nothing of the API.
func TestDashboardOverTheService(t *testing.T) {
	c := newContext(t)
	f := start(t, c, engines[0].open(t))
	ctx := context.Background()
	st := newStation(t, c, "line-a")
	id := stationOrder(t, f, 4, st)
	if _, err := f.station(t, st).Certify(ctx, &CertifyRequest{Order: id, CSR: newTestDevice(t, c, 1).csr(t)}); err != nil {
		t.Fatal(err)
	}

	tc, err := f.srv.TLSConfig([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.srv.ServeDashboard(sctx, ln, tc) }()
	t.Cleanup(func() { cancel(); <-done })
	base := "https://" + ln.Addr().String()

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: c.ServiceCAPool()}}}
	defer browser.CloseIdleConnections()
	get := func(path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		req.Header.Set("Sec-Fetch-Site", "none") // a link typed or pasted
		resp, err := browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/dashboard/api/view"); code != http.StatusUnauthorized {
		t.Fatalf("view without a session: %d", code)
	}
	if code, _ := get("/v1/orders"); code != http.StatusNotFound {
		t.Fatalf("the API on the dashboard listener: %d", code)
	}
	// A station may not ask for a login link.
	if _, err := f.station(t, st).DashboardLogin(ctx); err == nil || !strings.Contains(err.Error(), "(403)") {
		t.Fatalf("station login link: %v", err)
	}
	link, err := f.operator(t).DashboardLogin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := get(link.Path); code != http.StatusOK {
		t.Fatalf("login: %d", code)
	}
	code, body := get("/dashboard/api/view")
	if code != http.StatusOK {
		t.Fatalf("view: %d %s", code, body)
	}
	var v dashboard.View
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Orders) != 1 || v.Orders[0].ID != id || v.Orders[0].Used != 1 || v.Orders[0].Remaining != 3 {
		t.Fatalf("orders in the view: %+v", v.Orders)
	}
	if v.Fleet.Total != 1 || v.Fleet.Failing != 0 || len(v.Rollouts) != 0 {
		t.Fatalf("fleet in the view: %+v, rollouts %+v", v.Fleet, v.Rollouts)
	}
	if v.Audit.LogSize != 2 || v.Audit.LatestCheckpoint.IsZero() || v.Audit.LastAudit != nil {
		t.Fatalf("audit in the view: %+v", v.Audit)
	}
	// An audit reported by the operator shows.
	if err := f.operator(t).ReportAudit(ctx, &dashboard.AuditResult{Size: 2, OK: true}); err != nil {
		t.Fatal(err)
	}
	_, body = get("/dashboard/api/view")
	v = dashboard.View{}
	json.Unmarshal([]byte(body), &v)
	if v.Audit.LastAudit == nil || !v.Audit.LastAudit.OK || v.Audit.LastAudit.Size != 2 {
		t.Fatalf("reported audit: %+v", v.Audit.LastAudit)
	}
	// The link worked once.
	jar2, _ := cookiejar.New(nil)
	browser.Jar = jar2
	if code, _ := get(link.Path); code == http.StatusOK {
		if code, _ := get("/dashboard/api/view"); code == http.StatusOK {
			t.Fatal("a used login link opened a second session")
		}
	}
}
