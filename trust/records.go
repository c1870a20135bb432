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

// ErrDeviceExists is returned by SaveDevice (and by provisioning, which
// checks first) for a device ID that already has a production record: a
// certificate was issued for that ID, so a second chip claiming it is a
// clone or a re-used ID. A production record is never replaced.
var ErrDeviceExists = errors.New("a device with this ID was already certified (possible clone)")

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
	// SBMMeasurement is the SHA-256 of the device's SBM region as
	// installed at provisioning (hex; what its attestation tokens report
	// as the SBM measurement). Empty in records of older toolchains.
	SBMMeasurement string `json:"sbm_measurement,omitempty"`
}

// SaveDevice adds the production record of the device certified by cert,
// which must be one this context issued. The record's ID and Certificate
// come from cert; its Board, Locked, SBMMeasurement and Provisioned (in
// UTC, to the second) from meta.
//
// A production record is never replaced: if the device ID already has one,
// SaveDevice returns an error wrapping ErrDeviceExists. The record file is
// created exclusively, so of concurrent calls for one ID exactly one
// succeeds.
func (c *Context) SaveDevice(cert *x509.Certificate, meta DeviceRecord) (*DeviceRecord, error) {
	id, err := c.VerifyDeviceCertificate(cert)
	if err != nil {
		return nil, err
	}
	rec := &DeviceRecord{
		ID:             hex.EncodeToString(id.ID),
		Certificate:    string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})),
		Board:          meta.Board,
		Provisioned:    meta.Provisioned.UTC().Truncate(time.Second),
		Locked:         meta.Locked,
		SBMMeasurement: meta.SBMMeasurement,
	}
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := c.CheckNewDevice(id.ID); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(c.dir, devicesDir), 0o755); err != nil {
		return nil, err
	}
	path := c.devicePath(rec.ID)
	if err := atomicfile.Create(path, append(b, '\n'), 0o644); err != nil {
		// The exclusive create is the final arbiter: a record that
		// appeared since the check above (a concurrent provisioning of
		// the same ID) makes it fail.
		if _, serr := os.Lstat(path); serr == nil {
			return nil, deviceExists(rec.ID)
		}
		return nil, err
	}
	return rec, nil
}

// CheckNewDevice returns an error wrapping ErrDeviceExists if device id
// already has a production record, and nil if it has none. Provisioning
// calls it before certifying a device, so that a clone of a certified
// device is refused before it gets a certificate; SaveDevice's exclusive
// create still decides between concurrent provisionings.
func (c *Context) CheckNewDevice(id []byte) error {
	idHex := hex.EncodeToString(id)
	if len(id) == 0 {
		return errors.New("empty device ID")
	}
	_, err := os.Lstat(c.devicePath(idHex))
	switch {
	case err == nil:
		return deviceExists(idHex)
	case errors.Is(err, os.ErrNotExist):
		return nil
	default:
		return fmt.Errorf("production record %s: %w", idHex, err)
	}
}

func deviceExists(idHex string) error {
	return fmt.Errorf("device %s: %w; its production record is kept", idHex, ErrDeviceExists)
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
