package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sbm-project/sbm/server/dashboard"
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
	return newClient(base, tc), nil
}

func newClient(base string, tc *tls.Config) *Client {
	tr := &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true, TLSHandshakeTimeout: 10 * time.Second}
	return &Client{base: strings.TrimRight(base, "/"), hc: &http.Client{Transport: tr, Timeout: time.Minute}}
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
	if w, ok := out.(io.Writer); ok && resp.StatusCode/100 == 2 {
		if _, err := io.Copy(w, resp.Body); err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		return nil
	}
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

// PublishRelease publishes a package (the service verifies it against its
// context); force publishes one whose security counter is below the newest.
func (cl *Client) PublishRelease(ctx context.Context, pkg []byte, force bool) (*ReleaseStatus, error) {
	path := "/v1/releases"
	if force {
		path += "?force=1"
	}
	var st ReleaseStatus
	if err := cl.do(ctx, http.MethodPost, path, "application/octet-stream", pkg, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// Releases lists the published releases.
func (cl *Client) Releases(ctx context.Context) ([]ReleaseStatus, error) {
	var list ReleaseList
	if err := cl.do(ctx, http.MethodGet, "/v1/releases", "", nil, &list); err != nil {
		return nil, err
	}
	return list.Releases, nil
}

// ExportLog writes the service's whole audit log, in the export format
// (auditlog.Export), to w.
func (cl *Client) ExportLog(ctx context.Context, w io.Writer) error {
	return cl.do(ctx, http.MethodGet, "/v1/log", "", nil, w)
}

// Checkpoint returns the log's size and latest signed checkpoint.
func (cl *Client) Checkpoint(ctx context.Context) (*LogStatus, error) {
	var st LogStatus
	if err := cl.do(ctx, http.MethodGet, "/v1/log/checkpoint", "", nil, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// Device returns a certified device's record.
func (cl *Client) Device(ctx context.Context, id string) (*DeviceStatus, error) {
	var st DeviceStatus
	if err := cl.do(ctx, http.MethodGet, "/v1/devices/"+url.PathEscape(id), "", nil, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// NewStationClient returns a client of the station API authenticating
// with a station credential, which also names the CA it trusts: the
// service must present a server certificate of the credential's issuing
// CA with the server role.
func NewStationClient(base string, cred *trust.ServiceCredential) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("server URL %q: want https://HOST:PORT", base)
	}
	if len(cred.Chain) == 0 {
		return nil, errors.New("station credential without its CA certificate")
	}
	pool := x509.NewCertPool()
	pool.AddCert(cred.Chain[0])
	tc := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		RootCAs:      pool,
		Certificates: []tls.Certificate{cred.TLSCertificate()},
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || trust.ServiceRoleOf(cs.PeerCertificates[0]) != trust.RoleServer {
				return errors.New("the peer's certificate is not the service's (no server role)")
			}
			return nil
		},
	}
	return newClient(base, tc), nil
}

// Anchors returns the trust anchors a station writes into devices.
func (cl *Client) Anchors(ctx context.Context) (*trust.Anchors, error) {
	var a trust.Anchors
	if err := cl.do(ctx, http.MethodGet, "/v1/station/anchors", "", nil, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// Certify forwards a device's CSR under an order.
func (cl *Client) Certify(ctx context.Context, req *CertifyRequest) (*CertifyResponse, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	var resp CertifyResponse
	if err := cl.do(ctx, http.MethodPost, "/v1/station/certify", "application/json", body, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// Spoil reports a unit the station reserved and lost.
func (cl *Client) Spoil(ctx context.Context, orderID, deviceID string) error {
	body, err := json.Marshal(SpoilRequest{Order: orderID, DeviceID: deviceID})
	if err != nil {
		return err
	}
	return cl.do(ctx, http.MethodPost, "/v1/station/spoil", "application/json", body, nil)
}

// DashboardLogin asks for a single-use login link to the dashboard.
func (cl *Client) DashboardLogin(ctx context.Context) (*dashboard.LoginLink, error) {
	var l dashboard.LoginLink
	if err := cl.do(ctx, http.MethodPost, "/v1/dashboard/login", "", nil, &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// ReportAudit tells the service the result of an offline audit, for the
// dashboard.
func (cl *Client) ReportAudit(ctx context.Context, res *dashboard.AuditResult) error {
	body, err := json.Marshal(res)
	if err != nil {
		return err
	}
	return cl.do(ctx, http.MethodPost, "/v1/log/audits", "application/json", body, nil)
}
