package apphost

import (
	"context"
	"errors"
	"io"
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

// allowedURL parses raw and checks it against the allowed hosts: scheme
// http, no user info, host in the list.
func (h *host) allowedURL(raw string) (*url.URL, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.User != nil || u.Opaque != "" {
		return nil, false
	}
	host := strings.ToLower(u.Hostname())
	return u, host != "" && slices.Contains(h.opts.AllowedHosts, host)
}

func (c *call) fetchOpen() int32 {
	raw, ok := c.view(c.u32(0), c.u32(1))
	if !ok {
		return -CodeBadPointer
	}
	if len(raw) == 0 || len(raw) > MaxURLSize {
		return -CodeBadArgument
	}
	h := c.h
	u, ok := h.allowedURL(string(raw))
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
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		cancel()
		return -CodeBadArgument
	}
	resp, err := h.opts.HTTPClient.Do(req)
	if err != nil {
		cancel()
		h.logf("fetch %s: %v", u, err)
		return -CodeNetwork
	}
	if resp.StatusCode != http.StatusOK {
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
