// Package dashboard is the operator web page of the OEM service: the
// fleet, the releases, the rollouts with their progress as a chart, the
// production orders and the audit log's status, on one page that
// refreshes itself from a JSON view every few seconds. Everything it
// serves is embedded (plain HTML, CSS and JavaScript, inline SVG; no
// external resource).
//
// Browsers handle client certificates badly, so the dashboard does not use
// the service's mutual TLS: an operator, authenticated by mTLS on a
// management route, asks for a one-time login link (NewLoginToken, or
// LoginLinkHandler behind that route), and opening it in a browser turns
// it into a session cookie. Every other dashboard route requires that
// session. The dashboard is read-only: it answers GET (and HEAD) only.
// See docs/dashboard.md.
//
// Routes, under Options.Prefix (default /dashboard):
//
//	GET {prefix}/              the page                         session; else 401 and how to get a link
//	GET {prefix}/api/view      the View, JSON                   session; else 401 {"error": …}
//	GET {prefix}/assets/{file} the page's script and style      session; else 401
//	GET {prefix}/login?token=T redeems a login token, sets the session cookie, 303 to {prefix}/
//
// Sessions and tokens live in the Dashboard's memory: they do not survive
// a restart (the operator asks for a new link) and are not shared between
// instances of the service (behind a load balancer, route the dashboard to
// one instance or make it sticky by cookie).
package dashboard

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

//go:embed assets
var assets embed.FS

// CookieName is the session cookie's name. The __Host- prefix makes the
// browser accept it only with Secure, Path=/ and no Domain: no other host,
// subdomain or plain-HTTP page can set or overwrite it.
const CookieName = "__Host-sbm-dashboard"

// Defaults of Options.
const (
	DefaultPrefix      = "/dashboard"
	DefaultTokenTTL    = 2 * time.Minute
	DefaultSessionTTL  = 8 * time.Hour
	DefaultRefresh     = 5 * time.Second
	DefaultMaxDevices  = 200
	DefaultMaxSessions = 1000
	DefaultMaxTokens   = 100
	// DefaultLoginCommand is the command the sign-in page tells a
	// browser without a session to run.
	DefaultLoginCommand = "sbm server dashboard --server URL --context DIR"
)

// viewTimeout bounds one call of Source.View.
const viewTimeout = 10 * time.Second

// Options configures a Dashboard. The zero value is usable.
type Options struct {
	// Prefix is the path the dashboard is mounted at, without a trailing
	// slash (default DefaultPrefix).
	Prefix string
	// BaseURL, if set (e.g. "https://sbm.example:8444"), is prefixed to
	// the path of login links (LoginLink.URL).
	BaseURL string
	// TokenTTL is how long a login token can be redeemed (default
	// DefaultTokenTTL).
	TokenTTL time.Duration
	// SessionTTL is how long a session lasts from login, the cookie's
	// Max-Age (default DefaultSessionTTL). It is not extended by use.
	SessionTTL time.Duration
	// Refresh is how often the page fetches the view (default
	// DefaultRefresh).
	Refresh time.Duration
	// MaxDevices caps the devices sent to the page (default
	// DefaultMaxDevices).
	MaxDevices int
	// MaxSessions caps the open sessions; a login beyond it closes the
	// oldest (default DefaultMaxSessions).
	MaxSessions int
	// MaxTokens caps the outstanding login tokens; NewLoginToken fails
	// beyond it (default DefaultMaxTokens).
	MaxTokens int
	// LoginCommand is the command shown to a browser without a session
	// (default DefaultLoginCommand).
	LoginCommand string
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Dashboard serves the operator page. It is an http.Handler for the paths
// under Options.Prefix; it is safe for concurrent use.
type Dashboard struct {
	src  Source
	opts Options
	log  *slog.Logger
	now  func() time.Time
	auth *auth
	mux  *http.ServeMux
	page *template.Template
	help *template.Template
	// helpCSS is the sign-in page's inline style, and helpCSP its
	// Content-Security-Policy, allowing that style by hash.
	helpCSS string
	helpCSP string
}

// pageCSP allows the page its own script, style and JSON view and
// nothing else: no inline script, no other origin, no framing.
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// New returns a dashboard showing what src gives.
func New(src Source, opts Options) *Dashboard {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	opts.Prefix = "/" + strings.Trim(opts.Prefix, "/")
	opts.BaseURL = strings.TrimRight(opts.BaseURL, "/")
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = DefaultTokenTTL
	}
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = DefaultSessionTTL
	}
	if opts.Refresh <= 0 {
		opts.Refresh = DefaultRefresh
	}
	if opts.MaxDevices <= 0 {
		opts.MaxDevices = DefaultMaxDevices
	}
	if opts.MaxSessions <= 0 {
		opts.MaxSessions = DefaultMaxSessions
	}
	if opts.MaxTokens <= 0 {
		opts.MaxTokens = DefaultMaxTokens
	}
	if opts.LoginCommand == "" {
		opts.LoginCommand = DefaultLoginCommand
	}
	d := &Dashboard{src: src, opts: opts, log: opts.Logger, now: opts.Now, auth: newAuth()}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.now == nil {
		d.now = time.Now
	}
	d.page = template.Must(template.ParseFS(assets, "assets/index.html"))
	d.help = template.Must(template.ParseFS(assets, "assets/signin.html"))
	css, err := fs.ReadFile(assets, "assets/signin.css")
	if err != nil {
		panic(err) // embedded: cannot happen
	}
	d.helpCSS = string(css)
	sum := sha256.Sum256(css)
	d.helpCSP = "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; " +
		"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

	p := opts.Prefix
	d.mux = http.NewServeMux()
	d.mux.HandleFunc("GET "+p, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, p+"/", http.StatusSeeOther)
	})
	d.mux.Handle("GET "+p+"/{$}", d.requireSession(false, http.HandlerFunc(d.handlePage)))
	d.mux.Handle("GET "+p+"/api/view", d.requireSession(true, http.HandlerFunc(d.handleView)))
	static := http.StripPrefix(p+"/", http.FileServerFS(assets))
	d.mux.Handle("GET "+p+"/assets/{file}", d.requireSession(true, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.PathValue("file") {
		case "app.js", "style.css":
			static.ServeHTTP(w, r)
		default:
			http.NotFound(w, r)
		}
	})))
	d.mux.HandleFunc("GET "+p+"/login", d.handleLogin)
	return d
}

// Prefix returns the path the dashboard is mounted at, e.g. "/dashboard".
// Mount the Dashboard at Prefix()+"/" and Prefix().
func (d *Dashboard) Prefix() string { return d.opts.Prefix }

// ServeHTTP serves the dashboard's routes. Every answer carries headers
// that keep it out of caches, frames and other origins.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Content-Security-Policy", pageCSP)
	d.mux.ServeHTTP(w, r)
}

// LoginLink is a one-time login link: the answer of LoginLinkHandler.
type LoginLink struct {
	// Token is the single-use login token (256 random bits, base64url).
	Token string `json:"token"`
	// Path is the link's path and query: {prefix}/login?token=….
	Path string `json:"path"`
	// URL is Options.BaseURL + Path, if BaseURL is set.
	URL string `json:"url,omitempty"`
	// Expires is when the token stops working if unused.
	Expires time.Time `json:"expires"`
}

// NewLoginToken issues a login token valid once, for Options.TokenTTL.
// Call it only for an authenticated operator: whoever opens the link gets
// a session.
func (d *Dashboard) NewLoginToken() (LoginLink, error) {
	now := d.now()
	tok, err := d.auth.newToken(now, d.opts.TokenTTL, d.opts.MaxTokens)
	if err != nil {
		return LoginLink{}, err
	}
	l := LoginLink{Token: tok, Path: d.opts.Prefix + "/login?token=" + url.QueryEscape(tok), Expires: now.Add(d.opts.TokenTTL)}
	if d.opts.BaseURL != "" {
		l.URL = d.opts.BaseURL + l.Path
	}
	return l, nil
}

// LoginLinkHandler answers a request with a new LoginLink as JSON (201).
// Mount it on a management route of the mTLS API that requires the
// operator role, e.g. POST /v1/dashboard/login; it does no
// authentication itself.
func (d *Dashboard) LoginLinkHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l, err := d.NewLoginToken()
		if err != nil {
			code := http.StatusInternalServerError
			if errors.Is(err, errTooManyTokens) {
				code = http.StatusTooManyRequests
			}
			d.log.WarnContext(r.Context(), "dashboard login link refused", "err", err)
			writeJSON(w, code, apiError{Error: err.Error()})
			return
		}
		attrs := []any{"expires", l.Expires}
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			attrs = append(attrs, "peer", r.TLS.PeerCertificates[0].Subject.CommonName)
		}
		d.log.InfoContext(r.Context(), "dashboard login link issued", attrs...)
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusCreated, l)
	})
}

// TLSConfig returns the TLS configuration of a listener for browsers,
// derived from the service's API configuration: the same certificates and
// TLS 1.3, but no client certificate asked for (the API's listener
// requires one, which a browser cannot present). Serve the Dashboard, and
// only the Dashboard, on that listener.
func TLSConfig(api *tls.Config) *tls.Config {
	c := api.Clone()
	c.MinVersion = tls.VersionTLS13
	c.ClientAuth = tls.NoClientCert
	c.ClientCAs = nil
	c.VerifyPeerCertificate = nil
	c.VerifyConnection = nil
	if c.NextProtos == nil {
		c.NextProtos = []string{"h2", "http/1.1"}
	}
	return c
}

// apiError is the JSON body of a refused request.
type apiError struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// Reasons shown on the sign-in page.
const (
	reasonNoSession = "You are not signed in, or your session has ended."
	reasonBadToken  = "This sign-in link is not valid: it has been used already, has expired, or was mistyped."
	reasonConfirm   = "You opened a sign-in link from another site."
)

// signin is the data of the sign-in page.
type signin struct {
	Reason  string
	Command string
	TTL     string
	// Confirm, if set, asks the browser to confirm the login with a
	// button that submits the token from this origin.
	Confirm bool
	Action  string
	Token   string
	Session string
	CSS     template.CSS
}

// writeSignin serves the sign-in page with status code.
func (d *Dashboard) writeSignin(w http.ResponseWriter, code int, s signin) {
	s.Command = d.opts.LoginCommand
	s.TTL = human(d.opts.TokenTTL)
	s.Action = d.opts.Prefix + "/login"
	s.Session = human(d.opts.SessionTTL)
	s.CSS = template.CSS(d.helpCSS)
	w.Header().Set("Content-Security-Policy", d.helpCSP)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	if err := d.help.Execute(w, s); err != nil {
		d.log.Error("dashboard sign-in page", "err", err)
	}
}

// requireSession serves h only with a valid session cookie; otherwise the
// sign-in page (page routes) or a JSON error (api), with 401.
func (d *Dashboard) requireSession(api bool, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie(CookieName); err == nil && d.auth.session(c.Value, d.now()) {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", `Cookie realm="sbm dashboard"`)
		if api {
			writeJSON(w, http.StatusUnauthorized, apiError{Error: "no dashboard session: get a sign-in link with " + d.opts.LoginCommand})
			return
		}
		d.writeSignin(w, http.StatusUnauthorized, signin{Reason: reasonNoSession})
	})
}

// handleLogin redeems a login token. The token is consumed only by a
// navigation the user made (typed or pasted: Sec-Fetch-Site "none") or
// one from this origin; anything else, a link on another site, a mail
// scanner fetching links, is shown a button that submits the token from
// this origin. So a link-prefetching scanner cannot burn the token, and
// another site cannot sign the browser in with a token of its choosing
// (login CSRF) without the user pressing the button on this page, which
// cannot be framed.
func (d *Dashboard) handleLogin(w http.ResponseWriter, r *http.Request) {
	tok := r.URL.Query().Get("token")
	switch r.Header.Get("Sec-Fetch-Site") {
	case "none", "same-origin":
	default:
		if _, ok := hashSecret(tok); ok {
			d.writeSignin(w, http.StatusOK, signin{Reason: reasonConfirm, Confirm: true, Token: tok})
			return
		}
	}
	now := d.now()
	if !d.auth.redeem(tok, now) {
		d.log.WarnContext(r.Context(), "dashboard login refused", "remote", r.RemoteAddr)
		d.writeSignin(w, http.StatusUnauthorized, signin{Reason: reasonBadToken})
		return
	}
	id, expires, err := d.auth.newSession(now, d.opts.SessionTTL, d.opts.MaxSessions)
	if err != nil {
		d.log.ErrorContext(r.Context(), "dashboard session", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: id, Path: "/", Expires: expires, MaxAge: int(d.opts.SessionTTL / time.Second),
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode,
	})
	d.log.InfoContext(r.Context(), "dashboard session opened", "remote", r.RemoteAddr, "expires", expires)
	http.Redirect(w, r, d.opts.Prefix+"/", http.StatusSeeOther)
}

// page is the data of the page's template.
type page struct {
	Prefix    string
	RefreshMS int64
	Command   string
}

func (d *Dashboard) handlePage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	err := d.page.Execute(w, page{Prefix: d.opts.Prefix, RefreshMS: d.opts.Refresh.Milliseconds(), Command: d.opts.LoginCommand})
	if err != nil {
		d.log.ErrorContext(r.Context(), "dashboard page", "err", err)
	}
}

func (d *Dashboard) handleView(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), viewTimeout)
	defer cancel()
	v, err := d.src.View(ctx)
	if err == nil && v == nil {
		err = errors.New("no view")
	}
	if err != nil {
		d.log.ErrorContext(r.Context(), "dashboard view", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "view unavailable"})
		return
	}
	out := *v
	if out.Generated.IsZero() {
		out.Generated = d.now()
	}
	if len(out.Devices) > d.opts.MaxDevices {
		out.Devices = out.Devices[:d.opts.MaxDevices]
	}
	writeJSON(w, http.StatusOK, &out)
}

// human writes a duration as people say it: "2 minutes", "8 hours".
func human(d time.Duration) string {
	unit, n := "second", int64(d/time.Second)
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		unit, n = "hour", int64(d/time.Hour)
	case d >= time.Minute && d%time.Minute == 0:
		unit, n = "minute", int64(d/time.Minute)
	}
	if n == 1 {
		return "1 " + unit
	}
	return strconv.FormatInt(n, 10) + " " + unit + "s"
}
