package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sbm-project/sbm/trust"
)

// ErrRefused wraps the service's answer to a request it refused; the
// message is the service's.
var ErrRefused = errors.New("the service refused the request")

// Client is a client of the service's management API, authenticated by a
// service credential (normally the context's operator credential). It
// accepts only a server whose certificate the context's device CA issued
// for the server role.
type Client struct {
	base string
	hc   *http.Client
}

// NewClient returns a client of the service at base (https://HOST:PORT)
// authenticating with cred, trusting the service certificates of c.
func NewClient(c *trust.Context, base string, cred *trust.ServiceCredential) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("server URL %q: want https://HOST:PORT", base)
	}
	tc := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		RootCAs:      c.ServiceCAPool(),
		Certificates: []tls.Certificate{cred.TLSCertificate()},
		VerifyConnection: func(cs tls.ConnectionState) error {
			return c.VerifyServiceCertificate(cs.PeerCertificates, trust.RoleServer, time.Now())
		},
	}
	tr := &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true, TLSHandshakeTimeout: 10 * time.Second}
	return &Client{base: strings.TrimRight(base, "/"), hc: &http.Client{Transport: tr, Timeout: time.Minute}}, nil
}

// Close closes the client's idle connections.
func (cl *Client) Close() { cl.hc.CloseIdleConnections() }

func (cl *Client) do(ctx context.Context, method, path, contentType string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, cl.base+path, rd)
	if err != nil {
		return err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := cl.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e Error
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return fmt.Errorf("%w (%d): %s", ErrRefused, resp.StatusCode, e.Error)
		}
		return fmt.Errorf("%w: %s", ErrRefused, resp.Status)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: bad answer: %w", method, path, err)
		}
	}
	return nil
}

// Health asks /healthz.
func (cl *Client) Health(ctx context.Context) error {
	var h Health
	return cl.do(ctx, http.MethodGet, "/healthz", "", nil, &h)
}

// LoadOrder activates a signed order on the service.
func (cl *Client) LoadOrder(ctx context.Context, signed []byte) (*OrderStatus, error) {
	var st OrderStatus
	if err := cl.do(ctx, http.MethodPost, "/v1/orders", "application/cose", signed, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// Orders lists every order with its counts.
func (cl *Client) Orders(ctx context.Context) ([]OrderStatus, error) {
	var list OrderList
	if err := cl.do(ctx, http.MethodGet, "/v1/orders", "", nil, &list); err != nil {
		return nil, err
	}
	return list.Orders, nil
}

// Order returns one order's status.
func (cl *Client) Order(ctx context.Context, id string) (*OrderStatus, error) {
	var st OrderStatus
	if err := cl.do(ctx, http.MethodGet, "/v1/orders/"+url.PathEscape(id), "", nil, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// RevokeOrder revokes an order: the service reserves no more devices
// under it.
func (cl *Client) RevokeOrder(ctx context.Context, id string) (*OrderStatus, error) {
	var st OrderStatus
	if err := cl.do(ctx, http.MethodPost, "/v1/orders/"+url.PathEscape(id)+"/revoke", "", nil, &st); err != nil {
		return nil, err
	}
	return &st, nil
}
