package sdk

import (
	"io"
	"runtime"
)

// Open starts an HTTP GET of url through the host: http URLs to the hosts
// the device allows (by default the local machine), or https URLs of the
// configured service, which the runtime reaches with mutual TLS as the
// device (the SBM-held key signs the handshake). The body is read from
// the returned reader; close it when done (at most 4 fetches are open at
// once).
func Open(url string) (io.ReadCloser, error) {
	b := []byte(url)
	r := sbmFetchOpen(ptr(b), uint32(len(b)))
	runtime.KeepAlive(b)
	if err := check("fetch_open", r); err != nil {
		return nil, err
	}
	return &body{h: uint32(r)}, nil
}

// Post sends an HTTP POST of data (at most 64 KiB) with the given content
// type to url (the URLs Open allows) and returns the response body; any
// 2xx status is success. For example Post(serviceURL+"/reports",
// "application/cose", report) with a report from Report.
func Post(url, contentType string, data []byte) (io.ReadCloser, error) {
	u, ct := []byte(url), []byte(contentType)
	r := sbmFetchPost(ptr(u), uint32(len(u)), ptr(data), uint32(len(data)), ptr(ct), uint32(len(ct)))
	runtime.KeepAlive(u)
	runtime.KeepAlive(data)
	runtime.KeepAlive(ct)
	if err := check("fetch_post", r); err != nil {
		return nil, err
	}
	return &body{h: uint32(r)}, nil
}

type body struct {
	h      uint32
	closed bool
}

func (b *body) Read(p []byte) (int, error) {
	if b.closed {
		return 0, &Error{Op: "fetch_read", Code: CodeBadHandle}
	}
	if len(p) == 0 {
		return 0, nil
	}
	r := sbmFetchRead(b.h, ptr(p), uint32(min(len(p), 1<<20)))
	runtime.KeepAlive(p)
	if err := check("fetch_read", r); err != nil {
		return 0, err
	}
	if r == 0 {
		return 0, io.EOF
	}
	return int(r), nil
}

func (b *body) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	return check("fetch_close", sbmFetchClose(b.h))
}

// Fetch downloads url into w (for example Staging.Writer()) and returns
// the number of bytes written.
func Fetch(url string, w io.Writer) (int64, error) {
	rc, err := Open(url)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	return io.CopyBuffer(w, rc, make([]byte, 32<<10))
}
