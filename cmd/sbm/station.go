package main

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

// stationAuthority is a provisioning station's view of the OEM service:
// anchors and certificates come from the service, under one order.
type stationAuthority struct {
	cl      *server.Client
	orderID string
	// resp is the service's last answer (certificate, UPK, checkpoint).
	resp *server.CertifyResponse
}

func (a *stationAuthority) Anchors(ctx context.Context) (*trust.Anchors, error) {
	return a.cl.Anchors(ctx)
}

// CheckNew accepts every device: only the service, seeing the CSR, can
// tell a station's retry of a device it certified from a clone.
func (a *stationAuthority) CheckNew(context.Context, []byte) error { return nil }

func (a *stationAuthority) Certify(ctx context.Context, req *trust.DeviceRequest, der []byte) (*programmer.Certified, error) {
	resp, err := a.cl.Certify(ctx, &server.CertifyRequest{Order: a.orderID, CSR: der})
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
	a.resp = resp
	return &programmer.Certified{Certificate: cert, UPK: resp.UPK}, nil
}

// Installed keeps no record at the station: the service recorded and
// logged the device when it certified it.
func (a *stationAuthority) Installed(context.Context, *x509.Certificate, trust.DeviceRecord) (*trust.DeviceRecord, error) {
	return nil, nil
}

// stationClient opens the station credential in dir (station.crt,
// station.key) and returns a client of the service at url.
func stationClient(dir, url string) (*server.Client, error) {
	cred, err := trust.LoadServiceCredential(dir, "station", nil)
	if err != nil {
		return nil, fmt.Errorf("station %s: %w", dir, err)
	}
	if trust.ServiceRoleOf(cred.Certificate) != trust.RoleStation {
		return nil, fmt.Errorf("station %s: %s is not a station certificate", dir, filepath.Join(dir, "station.crt"))
	}
	return server.NewStationClient(url, cred)
}

// orderRef returns the order ID that ref names: an order file or a hex ID.
func orderRef(ref string) (string, error) {
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
		return "", fmt.Errorf("--order %s: neither an order file nor an order ID (32 hex digits)", ref)
	}
	return id, nil
}
