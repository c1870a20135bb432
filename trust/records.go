package trust

import (
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/sbm-project/sbm/internal/atomicfile"
)

// ErrUnknownDevice is returned by LoadDevice for a device that is not in the
// production records.
var ErrUnknownDevice = errors.New("device not in the production records")

const devicesDir = "devices"

// DeviceRecord is a production record: the public data of a provisioned
// device. It holds no secrets.
type DeviceRecord struct {
	// ID is the device ID in lowercase hex.
	ID string `json:"id"`
	// Certificate is the device certificate, PEM.
	Certificate string `json:"certificate"`
	// Board names the device's board (for information).
	Board string `json:"board,omitempty"`
	// Provisioned is when the device was provisioned.
	Provisioned time.Time `json:"provisioned"`
	// Locked reports whether the lock bits were blown at provisioning.
	Locked bool `json:"locked"`
}

// SaveDevice adds or replaces a device's production record. The
// certificate must be one this context issued.
func (c *Context) SaveDevice(cert *x509.Certificate, board string, locked bool, now time.Time) (*DeviceRecord, error) {
	id, err := c.VerifyDeviceCertificate(cert)
	if err != nil {
		return nil, err
	}
	rec := &DeviceRecord{
		ID:          hex.EncodeToString(id.ID),
		Certificate: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})),
		Board:       board,
		Provisioned: now.UTC().Truncate(time.Second),
		Locked:      locked,
	}
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(c.dir, devicesDir), 0o755); err != nil {
		return nil, err
	}
	return rec, atomicfile.WriteFile(c.devicePath(rec.ID), append(b, '\n'), 0o644)
}

// LoadDevice returns the production record of a device by ID (hex) and the
// identity its certificate names, verified against this context.
func (c *Context) LoadDevice(idHex string) (*DeviceRecord, *DeviceIdentity, error) {
	idHex = strings.ToLower(idHex)
	if _, err := hex.DecodeString(idHex); err != nil || idHex == "" {
		return nil, nil, fmt.Errorf("device ID %q is not hexadecimal", idHex)
	}
	b, err := os.ReadFile(c.devicePath(idHex))
	if os.IsNotExist(err) {
		return nil, nil, fmt.Errorf("%w: %s", ErrUnknownDevice, idHex)
	} else if err != nil {
		return nil, nil, err
	}
	var rec DeviceRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, nil, fmt.Errorf("production record %s: %w", idHex, err)
	}
	certs, err := ParseCertificatesPEM([]byte(rec.Certificate))
	if err != nil {
		return nil, nil, fmt.Errorf("production record %s: %w", idHex, err)
	}
	ident, err := c.VerifyDeviceCertificate(certs[0])
	if err != nil {
		return nil, nil, fmt.Errorf("production record %s: %w", idHex, err)
	}
	if hex.EncodeToString(ident.ID) != idHex {
		return nil, nil, fmt.Errorf("production record %s holds the certificate of device %x", idHex, ident.ID)
	}
	return &rec, ident, nil
}

// Devices lists the IDs (hex) of the devices in the production records.
func (c *Context) Devices() ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(c.dir, devicesDir))
	if os.IsNotExist(err) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range ents {
		if id, ok := strings.CutSuffix(e.Name(), ".json"); ok {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids, nil
}

func (c *Context) devicePath(idHex string) string {
	return filepath.Join(c.dir, devicesDir, idHex+".json")
}
