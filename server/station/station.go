// Package station is a provisioning station's side of the OEM service: a
// programmer.Authority that gets the trust anchors and each device's
// certificate (and first-programming UPK) from the service, under one
// production order, authenticated by the station's credential.
package station

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sbm-project/sbm/programmer"
	"github.com/sbm-project/sbm/server"
	"github.com/sbm-project/sbm/server/order"
	"github.com/sbm-project/sbm/trust"
)

// Authority provisions devices through the service under one order.
type Authority struct {
	cl      *server.Client
	orderID string
	last    *server.CertifyResponse
}

// New returns the authority of the service behind cl (a station client,
// server.NewStationClient) for the order with the given ID.
func New(cl *server.Client, orderID string) *Authority {
	return &Authority{cl: cl, orderID: orderID}
}

// Last returns the service's answer for the last device certified: its
// certificate, UPK, log index and checkpoint (the station's witness).
func (a *Authority) Last() *server.CertifyResponse { return a.last }

// OrderID returns the order the station provisions under.
func (a *Authority) OrderID() string { return a.orderID }

// Anchors implements programmer.Authority.
func (a *Authority) Anchors(ctx context.Context) (*trust.Anchors, error) {
	return a.cl.Anchors(ctx)
}

// CheckNew implements programmer.Authority. It accepts every device: only
// the service, seeing the CSR, can tell a station's retry of a device it
// certified from a clone.
func (a *Authority) CheckNew(context.Context, []byte) error { return nil }

// Certify implements programmer.Authority: it forwards the CSR, with the
// board and the SBM measurement the station took.
func (a *Authority) Certify(ctx context.Context, req *trust.DeviceRequest, der []byte, meta trust.DeviceRecord) (*programmer.Certified, error) {
	resp, err := a.cl.Certify(ctx, &server.CertifyRequest{Order: a.orderID, CSR: der, Board: meta.Board, SBMMeasurement: meta.SBMMeasurement})
	if err != nil {
		return nil, err
	}
	if resp.DeviceID != hex.EncodeToString(req.ID) {
		return nil, fmt.Errorf("the service certified device %s, not %x", resp.DeviceID, req.ID)
	}
	cert, err := x509.ParseCertificate(resp.Certificate)
	if err != nil {
		return nil, fmt.Errorf("the service's certificate: %w", err)
	}
	a.last = resp
	return &programmer.Certified{Certificate: cert, UPK: resp.UPK}, nil
}

// Installed implements programmer.Authority. The station keeps no record:
// the service recorded and logged the device when it certified it.
func (a *Authority) Installed(context.Context, *x509.Certificate, trust.DeviceRecord) (*trust.DeviceRecord, error) {
	return nil, nil
}

// Client opens the station credential in dir (station.crt, station.key,
// as "sbm production station" writes them) and returns a station client
// of the service at url.
func Client(dir, url string) (*server.Client, error) {
	cred, err := trust.LoadServiceCredential(dir, "station", nil)
	if err != nil {
		return nil, fmt.Errorf("station %s: %w", dir, err)
	}
	if trust.ServiceRoleOf(cred.Certificate) != trust.RoleStation {
		return nil, fmt.Errorf("station %s: %s is not a station certificate", dir, filepath.Join(dir, "station.crt"))
	}
	return server.NewStationClient(url, cred)
}

// OrderRef returns the order ID that ref names: an order file or the hex
// ID itself.
func OrderRef(ref string) (string, error) {
	if signed, err := os.ReadFile(ref); err == nil {
		o, err := order.Parse(signed)
		if err != nil {
			return "", fmt.Errorf("order %s: %w", ref, err)
		}
		return o.IDString(), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	id := strings.ToLower(ref)
	if b, err := hex.DecodeString(id); err != nil || len(b) != 16 {
		return "", fmt.Errorf("order %s: neither an order file nor an order ID (32 hex digits)", ref)
	}
	return id, nil
}

var _ programmer.Authority = (*Authority)(nil)
