package apphost

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// fetch is one open HTTP download.
type fetch struct {
	body   io.ReadCloser
	cancel context.CancelFunc
	n      int64 // bytes delivered so far
}

// allowedURL parses raw and checks it: scheme http with a host in the
// allowed hosts, or scheme https to the origin of Options.ServiceURL; no
// user info.
func (h *host) allowedURL(raw string) (*url.URL, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.User != nil || u.Opaque != "" {
		return nil, false
	}
	host := strings.ToLower(u.Hostname())
	switch u.Scheme {
	case "http":
		return u, host != "" && slices.Contains(h.opts.AllowedHosts, host)
	case "https":
		addr, ok := serviceAddr(h.opts.ServiceURL)
		return u, ok && h.opts.ServiceRoots != nil && host != "" && origin(u) == addr
	}
	return nil, false
}

// origin returns the host:port an https URL dials (port 443 by default),
// the host in lower case.
func origin(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "443"
	}
	return net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// serviceAddr returns the origin of the configured service URL.
func serviceAddr(raw string) (string, bool) {
	if raw == "" {
		return "", false
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.User != nil || u.Hostname() == "" {
		return "", false
	}
	return origin(u), true
}

func (c *call) fetchOpen() int32 {
	raw, ok := c.view(c.u32(0), c.u32(1))
	if !ok {
		return -CodeBadPointer
	}
	if len(raw) == 0 || len(raw) > MaxURLSize {
		return -CodeBadArgument
	}
	return c.open(http.MethodGet, string(raw), nil, "")
}

// fetchPost serves fetch_post(url, url_len, body, body_len, type,
// type_len): a POST of the body with that content type, answered through
// a fetch handle like fetch_open.
func (c *call) fetchPost() int32 {
	raw, ok1 := c.view(c.u32(0), c.u32(1))
	body, ok2 := c.view(c.u32(2), c.u32(3))
	ctype, ok3 := c.view(c.u32(4), c.u32(5))
	if !ok1 || !ok2 || !ok3 {
		return -CodeBadPointer
	}
	if len(raw) == 0 || len(raw) > MaxURLSize || len(body) > MaxPostSize || !validContentType(ctype) {
		return -CodeBadArgument
	}
	// The request gets a copy: the module's memory may change after the
	// call, and net/http reads the body on its own goroutine.
	return c.open(http.MethodPost, string(raw), append([]byte(nil), body...), string(ctype))
}

// validContentType reports whether b is 1 to MaxContentTypeSize printable
// ASCII bytes (no control characters: nothing can be smuggled into the
// request headers).
func validContentType(b []byte) bool {
	if len(b) == 0 || len(b) > MaxContentTypeSize {
		return false
	}
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// open starts a request to raw and returns its handle: status 200 (any
// 2xx for a POST) with the response headers in.
func (c *call) open(method, raw string, body []byte, ctype string) int32 {
	h := c.h
	u, ok := h.allowedURL(raw)
	if !ok {
		return -CodeDenied
	}
	slot := -1
	for i, f := range h.fetches {
		if f == nil {
			slot = i
			break
		}
	}
	if slot < 0 {
		return -CodeBadHandle
	}
	ctx, cancel := context.WithTimeout(h.ctx, h.opts.FetchTimeout)
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		cancel()
		return -CodeBadArgument
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", ctype)
	}
	client := h.opts.HTTPClient
	if u.Scheme == "https" {
		var closeConn func()
		if client, closeConn, err = h.serviceClient(ctx, u); err != nil {
			cancel()
			h.logf("fetch %s: %v", u, err)
			return -CodeNetwork
		}
		// The connection serves this fetch only: cancelling its context
		// (fetch_close, errors below) closes it.
		cancel = chain(cancel, closeConn)
	}
	resp, err := client.Do(req)
	if err != nil {
		cancel()
		h.logf("fetch %s: %v", u, err)
		return -CodeNetwork
	}
	if resp.StatusCode != http.StatusOK && (method != http.MethodPost || resp.StatusCode/100 != 2) {
		resp.Body.Close()
		cancel()
		h.logf("fetch %s: status %s", u, resp.Status)
		return -CodeHTTPStatus
	}
	if resp.ContentLength > h.opts.MaxFetchSize {
		resp.Body.Close()
		cancel()
		return -int32(codeTooLarge)
	}
	h.fetches[slot] = &fetch{body: resp.Body, cancel: cancel}
	return int32(slot)
}

// handle returns the open fetch named by argument i.
func (c *call) handle(i int) (*fetch, int, bool) {
	n := c.u32(i)
	if n >= MaxFetches || c.h.fetches[n] == nil {
		return nil, 0, false
	}
	return c.h.fetches[n], int(n), true
}

func (c *call) fetchRead() int32 {
	f, _, ok := c.handle(0)
	out, okb := c.view(c.u32(1), c.u32(2))
	if !okb {
		return -CodeBadPointer
	}
	if !ok {
		return -CodeBadHandle
	}
	if len(out) == 0 {
		return 0
	}
	if len(out) > maxFetchRead {
		out = out[:maxFetchRead]
	}
	if room := c.h.opts.MaxFetchSize - f.n; int64(len(out)) > room {
		// Read one byte past the limit to tell an exact fit from an
		// oversized body.
		out = out[:room+1]
	}
	// Read into a host buffer, so the application's memory is written
	// only with what was received.
	if cap(c.h.buf) < len(out) {
		c.h.buf = make([]byte, len(out))
	}
	buf := c.h.buf[:len(out)]
	var n int
	var err error
	for n == 0 && err == nil {
		n, err = f.body.Read(buf)
	}
	if f.n+int64(n) > c.h.opts.MaxFetchSize {
		return -int32(codeTooLarge)
	}
	if n > 0 {
		copy(out, buf[:n])
		f.n += int64(n)
		return int32(n)
	}
	if errors.Is(err, io.EOF) {
		return 0
	}
	c.h.logf("fetch read: %v", err)
	return -CodeNetwork
}

func (c *call) fetchClose() int32 {
	_, i, ok := c.handle(0)
	if !ok {
		return -CodeBadHandle
	}
	c.h.closeFetch(i)
	return 0
}

func (h *host) closeFetch(i int) {
	if f := h.fetches[i]; f != nil {
		f.body.Close()
		f.cancel()
		h.fetches[i] = nil
	}
}

// closeFetches closes every open fetch.
func (h *host) closeFetches() {
	for i := range h.fetches {
		h.closeFetch(i)
	}
}

// serviceClient dials the configured service for one https fetch and
// returns a client bound to that connection. The TLS handshake — and with
// it the SBM's tls_sign for the client CertificateVerify — runs here, on
// the goroutine of the fetch_open call, so the services are never called
// from another goroutine (net/http would otherwise dial in its own). The
// connection serves this one request (no keep-alive); the TLS session
// cache lets the next fetch resume the session without a new signature.
func (h *host) serviceClient(ctx context.Context, u *url.URL) (*http.Client, func(), error) {
	if h.svc == nil {
		return nil, nil, errors.New("no runtime services: no device certificate")
	}
	if h.tlsConfig == nil {
		h.tlsConfig = ClientTLSConfig(h.svc, h.opts.ServiceRoots, "")
		h.tlsConfig.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	}
	cfg := h.tlsConfig.Clone()
	cfg.ServerName = u.Hostname()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", origin(u))
	if err != nil {
		return nil, nil, err
	}
	conn := tls.Client(raw, cfg)
	if err := conn.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, nil, err
	}
	conns := make(chan net.Conn, 1)
	conns <- conn
	t := &http.Transport{
		Proxy:             nil,
		DisableKeepAlives: true,
		DialTLSContext: func(context.Context, string, string) (net.Conn, error) {
			select {
			case c := <-conns:
				return c, nil
			default:
				return nil, errors.New("service connection already used")
			}
		},
	}
	client := &http.Client{Transport: t, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	return client, func() { conn.Close() }, nil
}

// chain returns a function that calls f then g.
func chain(f context.CancelFunc, g func()) context.CancelFunc {
	return func() { f(); g() }
}
