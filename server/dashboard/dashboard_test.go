package dashboard

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// fixture is a dashboard behind a TLS server, with a settable clock.
type fixture struct {
	d    *Dashboard
	ts   *httptest.Server
	spki string
	clk  *clock
	src  *source
}

func newFixture(t testing.TB, opts Options) *fixture {
	t.Helper()
	f := &fixture{clk: newClock()}
	f.src = &source{v: sampleView(f.clk.Now())}
	opts.Now = f.clk.Now
	f.d = New(f.src, opts)
	mux := http.NewServeMux()
	mux.Handle(f.d.Prefix()+"/", f.d)
	mux.Handle(f.d.Prefix(), f.d)
	f.ts, f.spki = newTLSServer(t, mux)
	return f
}

// client returns a client of the fixture's server with its own cookie jar,
// not following redirects, sending Sec-Fetch-Site as a browser does for a
// typed URL.
func (f *fixture) client(t testing.TB) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	base := f.ts.Client().Transport
	return &http.Client{
		Jar:           jar,
		Transport:     headerTransport{base},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

type headerTransport struct{ rt http.RoundTripper }

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Header.Get("Sec-Fetch-Site") == "" {
		r = r.Clone(r.Context())
		r.Header.Set("Sec-Fetch-Site", "none")
	}
	return h.rt.RoundTrip(r)
}

func get(t testing.TB, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// login opens a new login link with c and checks it lands on the page.
func (f *fixture) login(t testing.TB, c *http.Client) *http.Cookie {
	t.Helper()
	l, err := f.d.NewLoginToken()
	if err != nil {
		t.Fatal(err)
	}
	resp, _ := get(t, c, f.ts.URL+l.Path)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != f.d.Prefix()+"/" {
		t.Fatalf("login: %s, Location %q", resp.Status, resp.Header.Get("Location"))
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == CookieName {
			return ck
		}
	}
	t.Fatal("login set no session cookie")
	return nil
}

func TestLoginFlow(t *testing.T) {
	f := newFixture(t, Options{BaseURL: "https://sbm.example:8444/"})
	c := f.client(t)

	// Without a session: the page says how to get a link, the JSON and
	// the assets are refused.
	resp, body := get(t, c, f.ts.URL+"/dashboard/")
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, DefaultLoginCommand) {
		t.Fatalf("page without session: %s\n%s", resp.Status, body)
	}
	for _, p := range []string{"/dashboard/api/view", "/dashboard/assets/app.js", "/dashboard/assets/style.css"} {
		resp, body := get(t, c, f.ts.URL+p)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `"error"`) {
			t.Errorf("%s without session: %s %s", p, resp.Status, body)
		}
	}
	resp, _ = get(t, c, f.ts.URL+"/dashboard")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/dashboard/" {
		t.Errorf("/dashboard: %s %q", resp.Status, resp.Header.Get("Location"))
	}

	l, err := f.d.NewLoginToken()
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Token) != 43 || l.URL != "https://sbm.example:8444"+l.Path || !strings.HasPrefix(l.Path, "/dashboard/login?token=") {
		t.Fatalf("link %+v", l)
	}
	if want := f.clk.Now().Add(DefaultTokenTTL); !l.Expires.Equal(want) {
		t.Errorf("expires %v, want %v", l.Expires, want)
	}
	resp, _ = get(t, c, f.ts.URL+l.Path)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/dashboard/" {
		t.Fatalf("login: %s %q", resp.Status, resp.Header.Get("Location"))
	}
	var ck *http.Cookie
	for _, x := range resp.Cookies() {
		if x.Name == CookieName {
			ck = x
		}
	}
	if ck == nil || !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" || ck.Domain != "" ||
		ck.MaxAge != int(DefaultSessionTTL/time.Second) || len(ck.Value) != 43 {
		t.Fatalf("cookie %+v", ck)
	}

	// With the session: the page, its assets and the view.
	resp, body = get(t, c, f.ts.URL+"/dashboard/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `src="/dashboard/assets/app.js"`) {
		t.Fatalf("page: %s\n%s", resp.Status, body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
		t.Errorf("CSP %q", csp)
	}
	for _, h := range []string{"Cache-Control", "X-Content-Type-Options", "Referrer-Policy", "X-Frame-Options"} {
		if resp.Header.Get(h) == "" {
			t.Errorf("no %s header", h)
		}
	}
	for _, p := range []string{"/dashboard/assets/app.js", "/dashboard/assets/style.css"} {
		if resp, _ := get(t, c, f.ts.URL+p); resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %s", p, resp.Status)
		}
	}
	for _, p := range []string{"/dashboard/assets/index.html", "/dashboard/assets/signin.html", "/dashboard/assets/"} {
		if resp, _ := get(t, c, f.ts.URL+p); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %s, want 404", p, resp.Status)
		}
	}
	resp, body = get(t, c, f.ts.URL+"/dashboard/api/view")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("view: %s %s", resp.Status, body)
	}
	var v View
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Rollouts) != 4 || v.Rollouts[0].State != RolloutHalted || v.Generated.IsZero() || v.Orders[0].Lines[1].Name != "shenzhen-2" {
		t.Errorf("view %+v", v)
	}

	// The token works once.
	c2 := f.client(t)
	resp, body = get(t, c2, f.ts.URL+l.Path)
	if resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 || !strings.Contains(body, "used already") {
		t.Fatalf("second use: %s %v", resp.Status, resp.Cookies())
	}

	// A session ends after its TTL; a token after its own.
	l2, err := f.d.NewLoginToken()
	if err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(DefaultTokenTTL)
	if resp, _ := get(t, c2, f.ts.URL+l2.Path); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("expired token: %s", resp.Status)
	}
	f.clk.Advance(DefaultSessionTTL - DefaultTokenTTL - time.Second)
	if resp, _ := get(t, c, f.ts.URL+"/dashboard/api/view"); resp.StatusCode != http.StatusOK {
		t.Errorf("session before its end: %s", resp.Status)
	}
	f.clk.Advance(time.Second)
	if resp, _ := get(t, c, f.ts.URL+"/dashboard/api/view"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("session after its end: %s", resp.Status)
	}
}

func TestForgedSessions(t *testing.T) {
	f := newFixture(t, Options{})
	c := f.client(t)
	good := f.login(t, c)
	u, _ := url.Parse(f.ts.URL)
	for _, v := range []string{"", "x", good.Value[:42], good.Value + "A", strings.Repeat("A", 43), good.Value[:42] + "B", "%%%"} {
		c := f.client(t)
		c.Jar.SetCookies(u, []*http.Cookie{{Name: CookieName, Value: v}})
		if resp, _ := get(t, c, f.ts.URL+"/dashboard/api/view"); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("cookie %q: %s", v, resp.Status)
		}
	}
	// The token itself is no session.
	l, _ := f.d.NewLoginToken()
	c2 := f.client(t)
	c2.Jar.SetCookies(u, []*http.Cookie{{Name: CookieName, Value: l.Token}})
	if resp, _ := get(t, c2, f.ts.URL+"/dashboard/"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("token as a cookie: %s", resp.Status)
	}
	for _, tok := range []string{"", "short", strings.Repeat("A", 43), l.Token[:42]} {
		if resp, _ := get(t, f.client(t), f.ts.URL+"/dashboard/login?token="+url.QueryEscape(tok)); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("token %q: %s", tok, resp.Status)
		}
	}
	// The real token still works: the forgeries did not consume it.
	if resp, _ := get(t, f.client(t), f.ts.URL+l.Path); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("token after forgeries: %s", resp.Status)
	}
}

// A link opened from another site, or fetched by a mail scanner, does not
// consume the token: the page asks to confirm, and the confirmation (from
// this origin) does.
func TestLoginFromAnotherSite(t *testing.T) {
	f := newFixture(t, Options{})
	l, _ := f.d.NewLoginToken()
	for _, site := range []string{"cross-site", "same-site", ""} {
		c := f.client(t)
		req, _ := http.NewRequest("GET", f.ts.URL+l.Path, nil)
		if site != "" {
			req.Header.Set("Sec-Fetch-Site", site)
		} else {
			c.Transport = f.ts.Client().Transport // no Sec-Fetch-Site at all
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || len(resp.Cookies()) != 0 || !strings.Contains(string(b), `id="confirm"`) {
			t.Fatalf("Sec-Fetch-Site %q: %s %v\n%s", site, resp.Status, resp.Cookies(), b)
		}
	}
	c := f.client(t)
	req, _ := http.NewRequest("GET", f.ts.URL+l.Path, nil)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 {
		t.Fatalf("confirmed: %s", resp.Status)
	}
}

func TestReadOnly(t *testing.T) {
	f := newFixture(t, Options{})
	c := f.client(t)
	f.login(t, c)
	for _, p := range []string{"/dashboard/", "/dashboard/api/view", "/dashboard/login"} {
		for _, m := range []string{"POST", "PUT", "DELETE", "PATCH"} {
			req, _ := http.NewRequest(m, f.ts.URL+p, strings.NewReader("{}"))
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("%s %s: %s", m, p, resp.Status)
			}
		}
	}
}

func TestLimits(t *testing.T) {
	f := newFixture(t, Options{MaxTokens: 3, MaxSessions: 2, MaxDevices: 5})
	var links []LoginLink
	for range 3 {
		l, err := f.d.NewLoginToken()
		if err != nil {
			t.Fatal(err)
		}
		links = append(links, l)
	}
	if _, err := f.d.NewLoginToken(); !errors.Is(err, errTooManyTokens) {
		t.Fatalf("4th token: %v", err)
	}
	rec := httptest.NewRecorder()
	f.d.LoginLinkHandler().ServeHTTP(rec, httptest.NewRequest("POST", "/v1/dashboard/login", nil))
	if rec.Code != http.StatusTooManyRequests {
		t.Errorf("handler with too many tokens: %d", rec.Code)
	}
	f.clk.Advance(DefaultTokenTTL) // expired tokens make room
	if _, err := f.d.NewLoginToken(); err != nil {
		t.Fatal(err)
	}

	// Three sessions with MaxSessions 2: the oldest is closed.
	var clients []*http.Client
	for i := range 3 {
		c := f.client(t)
		f.login(t, c)
		clients = append(clients, c)
		f.clk.Advance(time.Second * time.Duration(i+1))
	}
	want := []int{401, 200, 200}
	for i, c := range clients {
		resp, body := get(t, c, f.ts.URL+"/dashboard/api/view")
		if resp.StatusCode != want[i] {
			t.Errorf("session %d: %s", i, resp.Status)
		}
		if resp.StatusCode == 200 {
			var v View
			json.Unmarshal([]byte(body), &v)
			if len(v.Devices) != 5 {
				t.Errorf("%d devices sent, want MaxDevices 5", len(v.Devices))
			}
		}
	}
	if tok, ses := f.d.auth.counts(); tok > 1 || ses != 2 {
		t.Errorf("%d tokens, %d sessions kept", tok, ses)
	}
}

func TestLoginLinkHandler(t *testing.T) {
	f := newFixture(t, Options{BaseURL: "https://h:1"})
	rec := httptest.NewRecorder()
	f.d.LoginLinkHandler().ServeHTTP(rec, httptest.NewRequest("POST", "/v1/dashboard/login", nil))
	var l LoginLink
	if err := json.Unmarshal(rec.Body.Bytes(), &l); err != nil || rec.Code != http.StatusCreated || l.URL != "https://h:1"+l.Path {
		t.Fatalf("%d %s %v", rec.Code, rec.Body, err)
	}
	if resp, _ := get(t, f.client(t), f.ts.URL+l.Path); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("its link: %s", resp.Status)
	}
}

func TestSourceError(t *testing.T) {
	f := newFixture(t, Options{})
	c := f.client(t)
	f.login(t, c)
	f.src.mu.Lock()
	f.src.err = errors.New("database is down: secret detail")
	f.src.mu.Unlock()
	resp, body := get(t, c, f.ts.URL+"/dashboard/api/view")
	if resp.StatusCode != http.StatusServiceUnavailable || strings.Contains(body, "secret") {
		t.Errorf("%s %s", resp.Status, body)
	}
}

func TestTLSConfig(t *testing.T) {
	api := &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	c := TLSConfig(api)
	if c.ClientAuth != tls.NoClientCert || c.MinVersion != tls.VersionTLS13 || api.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Errorf("%v %v", c.ClientAuth, c.MinVersion)
	}
}

func TestPrefix(t *testing.T) {
	f := newFixture(t, Options{Prefix: "ops/board/"})
	if f.d.Prefix() != "/ops/board" {
		t.Fatalf("prefix %q", f.d.Prefix())
	}
	l, _ := f.d.NewLoginToken()
	if !strings.HasPrefix(l.Path, "/ops/board/login?token=") {
		t.Fatalf("path %q", l.Path)
	}
	c := f.client(t)
	resp, _ := get(t, c, f.ts.URL+l.Path)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ops/board/" {
		t.Fatalf("login: %s %q", resp.Status, resp.Header.Get("Location"))
	}
	resp, body := get(t, c, f.ts.URL+"/ops/board/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `data-view="/ops/board/api/view"`) {
		t.Errorf("page: %s\n%s", resp.Status, body)
	}
}
