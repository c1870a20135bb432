package dashboard

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"html"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

var screenshot = flag.String("screenshot", "", "TestScreenshot writes a PNG of the page with realistic data to this `file` (relative to the module root)")

// chromium finds headless Chromium (Debian's chromium). Without it the
// test skips, unless the CI environment variable is set: then it fails.
func chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium not installed (apt-get install chromium); CI is set, so the browser tests cannot skip")
	}
	t.Skip("chromium not installed (apt-get install chromium): browser tests skip")
	return ""
}

// browser starts headless Chromium trusting only the server certificate
// whose public key hashes to spki (no other certificate error is
// ignored), in a width×height window, and returns its context. Each
// chromedp.NewContext(ctx, chromedp.WithNewBrowserContext()) of it is a
// fresh profile (its own cookies). The browser's page errors are collected:
// see errs.
func browser(t testing.TB, spki string, width, height int) (context.Context, *pageErrors) {
	t.Helper()
	path := chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Flag("ignore-certificate-errors-spki-list", spki),
		chromedp.WindowSize(width, height),
		chromedp.Flag("force-device-scale-factor", "1"),
		chromedp.Flag("lang", "en-GB"),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium's sandbox refuses to run as root
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	return bctx, &pageErrors{}
}

// pageErrors collects JavaScript exceptions and console errors (a CSP
// violation among them), except failed loads, which the 401 tests cause.
type pageErrors struct {
	mu   sync.Mutex
	list []string
}

func (p *pageErrors) add(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.list = append(p.list, s)
}

func (p *pageErrors) check(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.list {
		t.Errorf("page error: %s", e)
	}
}

// tab opens a tab in a fresh browser profile, reporting its errors to errs.
func tab(t testing.TB, bctx context.Context, errs *pageErrors) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(bctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Listen(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			errs.add(fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber, msg))
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level == cdplog.EntryLevelError && ev.Entry.Source != cdplog.EntrySourceNetwork {
				errs.add(fmt.Sprintf("%s: %s", ev.Entry.Source, ev.Entry.Text))
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	return ctx
}

// open navigates to u and returns the status of the final response.
func open(t testing.TB, ctx context.Context, u string) int64 {
	t.Helper()
	resp, err := chromedp.RunResponse(ctx, chromedp.Navigate(u))
	if err != nil {
		t.Fatalf("navigate %s: %v", u, err)
	}
	return resp.Status
}

func eval[T any](t testing.TB, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return v
}

// waitFor polls the JavaScript predicate js until it is true.
func waitFor(t testing.TB, ctx context.Context, what, js string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s (%s): %v", what, js, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// rows returns the text of the cells of a table's body rows.
func rows(t testing.TB, ctx context.Context, table string) [][]string {
	t.Helper()
	return eval[[][]string](t, ctx, `[...document.querySelectorAll('#`+table+` tbody tr')].map(tr => [...tr.cells].map(c => c.textContent.trim()))`)
}

func TestBrowser(t *testing.T) {
	f := newFixture(t, Options{Refresh: 300 * time.Millisecond})
	bctx, errs := browser(t, f.spki, 1280, 800)

	// Without a session: the page answers 401 and says how to get a link;
	// so does the JSON view.
	anon := tab(t, bctx, errs)
	if st := open(t, anon, f.ts.URL+"/dashboard/"); st != http.StatusUnauthorized {
		t.Errorf("page without a session: %d", st)
	}
	if cmd := eval[string](t, anon, `document.getElementById('command').textContent`); cmd != DefaultLoginCommand {
		t.Errorf("sign-in page shows %q", cmd)
	}
	if st := open(t, anon, f.ts.URL+"/dashboard/api/view"); st != http.StatusUnauthorized {
		t.Errorf("view without a session: %d", st)
	}
	if body := eval[string](t, anon, `document.body.textContent`); !strings.Contains(body, "no dashboard session") {
		t.Errorf("view without a session: %q", body)
	}

	// Log in with a link.
	op := tab(t, bctx, errs)
	link, err := f.d.NewLoginToken()
	if err != nil {
		t.Fatal(err)
	}
	if st := open(t, op, f.ts.URL+link.Path); st != http.StatusOK {
		t.Fatalf("login link: %d", st)
	}
	if loc := eval[string](t, op, `location.pathname + location.search`); loc != "/dashboard/" {
		t.Errorf("after login at %q", loc)
	}
	waitFor(t, op, "the first render", `document.body.dataset.renders >= 1`)

	// The session cookie: HttpOnly, Secure, SameSite=Strict, expiring.
	cookies, err := chromedp.Call(op, network.GetCookies, network.GetCookiesParams{URLs: []string{f.ts.URL}})
	if err != nil {
		t.Fatal(err)
	}
	if len(cookies.Cookies) != 1 {
		t.Fatalf("%d cookies", len(cookies.Cookies))
	}
	c := cookies.Cookies[0]
	exp := time.Unix(int64(c.Expires), 0)
	if c.Name != CookieName || !c.HTTPOnly || !c.Secure || c.SameSite != network.CookieSameSiteStrict || c.Path != "/" ||
		exp.Before(time.Now().Add(DefaultSessionTTL-time.Minute)) || exp.After(time.Now().Add(DefaultSessionTTL+time.Minute)) {
		t.Errorf("cookie %+v (expires %v)", c, exp)
	}
	if js := eval[string](t, op, `document.cookie`); js != "" {
		t.Errorf("script sees cookie %q", js)
	}

	// The tables.
	orders := rows(t, op, "orders")
	want := [][]string{
		{"4f1c9a7e…9687", "active", "20,000", "12,480", "61", "7,459"},
		{"line shenzhen-1", "", "12,000", "8,120", "44", "3,836"},
		{"line shenzhen-2", "", "8,000", "4,360", "17", "3,623"},
		{"0b7e5d3c…4c5b", "active", "500", "0", "0", "500"},
		{"c3d2e1f0…e9f8", "revoked", "1,000", "212", "3", "785"},
	}
	if len(orders) != len(want) {
		t.Fatalf("orders table: %q", orders)
	}
	for i, w := range want {
		if got := orders[i][:6]; strings.Join(got, "|") != strings.Join(w, "|") {
			t.Errorf("orders row %d: %q, want %q", i, got, w)
		}
	}
	if nd := orders[0][6]; nd != f.src.v.Orders[0].NotAfter.UTC().Format("2006-01-02") {
		t.Errorf("not after %q", nd)
	}
	rel := rows(t, op, "releases")
	if len(rel) != 4 || rel[1][0] != "2.4.0" || rel[1][1] != "7" || rel[1][2] != "60303ae22b998861…" || rel[1][4] != "2,790" || rel[0][4] != "–" {
		t.Errorf("releases table: %q", rel)
	}
	if title := eval[string](t, op, `document.querySelector('#releases tbody tr td:nth-child(3) span').title`); title != f.src.v.Releases[0].ManifestDigest {
		t.Errorf("digest title %q", title)
	}
	dev := rows(t, op, "devices")
	if len(dev) != 16 || dev[0][1] != "2.3.1" || !strings.HasPrefix(dev[0][3], "failure") || dev[4][3] != "success" || dev[5][3] != "none" {
		t.Errorf("devices table: %q", dev)
	}
	if n := eval[int](t, op, `document.querySelectorAll('#devices tbody tr.bad').length`); n != 3 {
		t.Errorf("%d device rows marked failed, want 3", n)
	}
	ro := rows(t, op, "rollouts")
	if len(ro) != 4 || ro[0][0] != "r-0007" || ro[0][2] != "halted" || ro[0][7] != "38 / max 38" || ro[1][3] != "25%" || ro[1][6] != "2,790" {
		t.Errorf("rollouts table: %q", ro)
	}
	if audit := eval[string](t, op, `document.getElementById('audit').textContent`); !strings.Contains(audit, "25,319 entries") || !strings.Contains(audit, "passed") {
		t.Errorf("audit: %q", audit)
	}

	// Failures at a glance: the halted rollout's row and chart bar are
	// marked, and the summary tiles are red.
	for _, sel := range []string{`#rollouts tr[data-rollout="r-0007"]`, `#chart-body g[data-rollout="r-0007"]`} {
		if !eval[bool](t, op, `document.querySelector('`+sel+`').classList.contains('bad')`) {
			t.Errorf("%s not marked bad", sel)
		}
	}
	for id, want := range map[string]string{"r-0006": "warn", "r-0005": "", "r-0004": ""} {
		got := eval[string](t, op, `(c => c.contains('bad') ? 'bad' : c.contains('warn') ? 'warn' : '')(document.querySelector('#rollouts tr[data-rollout="`+id+`"]').classList)`)
		if got != want {
			t.Errorf("rollout %s marked %q, want %q", id, got, want)
		}
	}
	if col := eval[string](t, op, `getComputedStyle(document.querySelector('#rollouts tr[data-rollout="r-0007"] .badge')).backgroundColor`); col != "rgb(198, 40, 40)" {
		t.Errorf("halted badge colour %s", col)
	}
	for tile, v := range map[string]string{"failing": "37", "halted": "1", "failed-installs": "42"} {
		got := eval[string](t, op, `document.querySelector('#tile-`+tile+` .tile-value').textContent`)
		bad := eval[bool](t, op, `document.getElementById('tile-`+tile+`').classList.contains('bad')`)
		if got != v || !bad {
			t.Errorf("tile %s: %q, bad %v", tile, got, bad)
		}
	}
	if !eval[bool](t, op, `document.getElementById('tile-audit').classList.contains('good')`) {
		t.Error("audit tile not good")
	}

	// The chart: each bar's targeted band is the rollout's percent of the
	// track, and the updated segment its share of the band.
	checkBars := func() {
		t.Helper()
		for _, r := range f.src.View0().Rollouts {
			g := `document.querySelector('#chart-body g[data-rollout="` + r.ID + `"]')`
			w := eval[[]float64](t, op, `[...['.track', '.target', '.seg.updated', '.seg.failed']].map(s => `+g+`.querySelector(s).getBoundingClientRect().width)`)
			if attr := eval[string](t, op, g+`.querySelector('.target').getAttribute('width')`); attr != fmt.Sprint(r.Percent)+"%" {
				t.Errorf("%s: target width %q, want %v%%", r.ID, attr, r.Percent)
			}
			if got, want := w[1]/w[0], r.Percent/100; math.Abs(got-want) > 1.5/w[0] {
				t.Errorf("%s: targeted band %.1f of %.1f px = %.3f, want %.3f", r.ID, w[1], w[0], got, want)
			}
			if got, want := w[2]/w[0], r.Percent/100*float64(r.Updated)/float64(r.Targeted); math.Abs(got-want) > 1.5/w[0] {
				t.Errorf("%s: updated segment %.3f of the track, want %.3f", r.ID, got, want)
			}
			if got, want := w[3]/w[0], r.Percent/100*float64(r.Failed)/float64(r.Targeted); math.Abs(got-want) > 1.5/w[0] {
				t.Errorf("%s: failed segment %.3f of the track, want %.3f", r.ID, got, want)
			}
		}
	}
	checkBars()
	if desc := eval[string](t, op, `document.getElementById('chart-desc').textContent`); !strings.Contains(desc, "r-0007 (2.4.1, halted): 10% of the fleet targeted, 361 of 1,248 updated, 38 failed") {
		t.Errorf("chart description %q", desc)
	}

	// Accessible markup: every table has column headers and a caption, the
	// chart is an image with a label.
	if n := eval[int](t, op, `[...document.querySelectorAll('table')].filter(t => !t.caption || t.tHead.querySelectorAll('th[scope=col]').length < 4).length`); n != 0 {
		t.Errorf("%d tables without caption or column headers", n)
	}
	if !eval[bool](t, op, `(s => s.getAttribute('role') === 'img' && !!s.getAttribute('aria-labelledby'))(document.querySelector('#chart-body svg'))`) {
		t.Error("chart is not a labelled image")
	}

	// No horizontal scrolling on a laptop screen, nor on a smaller one.
	for _, w := range []int64{1280, 1024} {
		if err := chromedp.Do(op, chromedp.EmulateViewport(w, 768)); err != nil {
			t.Fatal(err)
		}
		if sw := eval[int64](t, op, `document.documentElement.scrollWidth`); sw > w {
			t.Errorf("at %d px wide the page is %d px wide", w, sw)
		}
	}

	// It refreshes itself: a rollout raised to 50 % shows within a
	// refresh.
	// A failed audit turns its tile red and names the problem.
	const problem = "auditlog: entry deleted: entry 5: entry 5 missing"
	f.src.update(func(v *View) {
		v.Rollouts[1].Percent, v.Rollouts[1].Targeted, v.Rollouts[1].Updated = 50, 6240, 5000
		v.Audit.LastAudit = &AuditResult{Time: f.clk.Now(), Size: 25319, Problem: problem}
	})
	waitFor(t, op, "the refreshed chart", `document.querySelector('#chart-body g[data-rollout="r-0006"] .target').getAttribute('width') === '50%'`)
	checkBars()
	waitFor(t, op, "the failed audit", `document.getElementById('tile-audit').classList.contains('bad')`)
	if got := eval[string](t, op, `document.querySelector('#audit .problem').textContent`); got != problem {
		t.Errorf("audit problem %q", got)
	}

	// The link works once: in another browser profile it is refused.
	other := tab(t, bctx, errs)
	if st := open(t, other, f.ts.URL+link.Path); st != http.StatusUnauthorized {
		t.Errorf("second use of the link: %d", st)
	}
	if reason := eval[string](t, other, `document.getElementById('reason').textContent`); !strings.Contains(reason, "used already") {
		t.Errorf("second use: %q", reason)
	}
	if cookies, _ := chromedp.Call(other, network.GetCookies, network.GetCookiesParams{URLs: []string{f.ts.URL}}); len(cookies.Cookies) != 0 {
		t.Errorf("second use set %d cookies", len(cookies.Cookies))
	}

	// A link followed from another site does not sign in by itself: the
	// page asks, and the button (from the dashboard's origin) does.
	clicked, err := f.d.NewLoginToken()
	if err != nil {
		t.Fatal(err)
	}
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>chat</title><a id="go" href="%s">your link</a>`, html.EscapeString(f.ts.URL+clicked.Path))
	}))
	defer elsewhere.Close()
	site := tab(t, bctx, errs)
	open(t, site, elsewhere.URL)
	if err := chromedp.Do(site, chromedp.Click(chromedp.ID("go")), chromedp.WaitVisible(chromedp.ID("confirm"))); err != nil {
		t.Fatal(err)
	}
	if cookies, _ := chromedp.Call(site, network.GetCookies, network.GetCookiesParams{URLs: []string{f.ts.URL}}); len(cookies.Cookies) != 0 {
		t.Errorf("a link from another site set %d cookies before the confirmation", len(cookies.Cookies))
	}
	if err := chromedp.Do(site, chromedp.Click(chromedp.ID("confirm"))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, site, "the page after the confirmation", `location.pathname === '/dashboard/' && document.body.dataset.renders >= 1`)

	// A link expires.
	late, err := f.d.NewLoginToken()
	if err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(DefaultTokenTTL + time.Second)
	if st := open(t, other, f.ts.URL+late.Path); st != http.StatusUnauthorized {
		t.Errorf("expired link: %d", st)
	}

	// So does the session: the open page notices at its next refresh,
	// says how to get a new link and stops polling; a reload is refused.
	f.clk.Advance(DefaultSessionTTL)
	waitFor(t, op, "the signed-out notice", `document.body.dataset.signedOut === 'true'`)
	if alert := eval[string](t, op, `document.getElementById('alert').textContent`); !strings.Contains(alert, DefaultLoginCommand) {
		t.Errorf("signed-out alert %q", alert)
	}
	if st := open(t, op, f.ts.URL+"/dashboard/"); st != http.StatusUnauthorized {
		t.Errorf("page after the session ended: %d", st)
	}
	errs.check(t)
}

// View0 returns the source's current view.
func (s *source) View0() *View {
	v, _ := s.View(context.Background())
	return v
}

// TestScreenshot writes a PNG of the dashboard with realistic data to the
// file of -screenshot, e.g.
//
//	go test ./server/dashboard -run TestScreenshot -screenshot docs/dashboard.png
func TestScreenshot(t *testing.T) {
	if *screenshot == "" {
		t.Skip("no -screenshot file")
	}
	out := *screenshot
	if !filepath.IsAbs(out) {
		root, err := moduleRoot()
		if err != nil {
			t.Fatal(err)
		}
		out = filepath.Join(root, out)
	}
	f := newFixture(t, Options{})
	bctx, errs := browser(t, f.spki, 1280, 900)
	ctx := tab(t, bctx, errs)
	link, err := f.d.NewLoginToken()
	if err != nil {
		t.Fatal(err)
	}
	if st := open(t, ctx, f.ts.URL+link.Path); st != http.StatusOK {
		t.Fatalf("login: %d", st)
	}
	waitFor(t, ctx, "the first render", `document.body.dataset.renders >= 1`)
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}
	errs.check(t)
	t.Logf("wrote %s (%d bytes)", out, len(png))
}

// moduleRoot finds the directory of go.mod above the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}
