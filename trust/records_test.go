package trust

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// issueTestDevice certifies a fresh identity key for device id.
func issueTestDevice(t *testing.T, c *Context, id []byte) *x509.Certificate {
	t.Helper()
	idKey, err := c.Suite().GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	ka, err := c.Suite().GenerateKeyAgreementKey()
	if err != nil {
		t.Fatal(err)
	}
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, idKey)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := c.IssueDeviceCertificate(csr, id, ka.PublicKey(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// TestSaveDeviceNeverOverwrites: a second certificate for an ID that has a
// production record (a clone) is refused with ErrDeviceExists, and the
// genuine device's record is unchanged.
func TestSaveDeviceNeverOverwrites(t *testing.T) {
	c, err := Init(filepath.Join(t.TempDir(), "ctx"), nil)
	if err != nil {
		t.Fatal(err)
	}
	id := []byte{0xab, 0xcd}
	if err := c.CheckNewDevice(id); err != nil {
		t.Fatalf("CheckNewDevice before any record: %v", err)
	}
	genuine := issueTestDevice(t, c, id)
	if _, err := c.SaveDevice(genuine, DeviceRecord{Board: "small", Locked: true, Provisioned: time.Now()}); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(c.devicePath("abcd"))
	if err != nil {
		t.Fatal(err)
	}
	clone := issueTestDevice(t, c, id)
	tests := []struct {
		name string
		err  func() error
	}{
		{"SaveDevice clone", func() error {
			_, err := c.SaveDevice(clone, DeviceRecord{Board: "small", Provisioned: time.Now()})
			return err
		}},
		{"SaveDevice genuine again", func() error {
			_, err := c.SaveDevice(genuine, DeviceRecord{Board: "small", Provisioned: time.Now()})
			return err
		}},
		{"CheckNewDevice", func() error { return c.CheckNewDevice(id) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.err()
			if !errors.Is(err, ErrDeviceExists) {
				t.Fatalf("err = %v, want ErrDeviceExists", err)
			}
			const want = "device abcd: a device with this ID was already certified (possible clone)"
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		})
	}
	after, err := os.ReadFile(c.devicePath("abcd"))
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != string(before) {
		t.Fatal("the genuine device's production record changed")
	}
	_, ident, err := c.LoadDevice("abcd")
	if err != nil {
		t.Fatal(err)
	}
	if !ident.Certificate.Equal(genuine) {
		t.Fatal("the production record no longer holds the genuine certificate")
	}
}

// TestSaveDeviceRace: of concurrent SaveDevice calls for one device ID,
// exactly one succeeds; the others get ErrDeviceExists and the record holds
// the winner's certificate.
func TestSaveDeviceRace(t *testing.T) {
	c, err := Init(filepath.Join(t.TempDir(), "ctx"), nil)
	if err != nil {
		t.Fatal(err)
	}
	id := []byte{0x01, 0x02, 0x03}
	for round := range 20 {
		id[2] = byte(round)
		certs := []*x509.Certificate{issueTestDevice(t, c, id), issueTestDevice(t, c, id)}
		errs := make([]error, len(certs))
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, cert := range certs {
			wg.Go(func() {
				<-start
				_, errs[i] = c.SaveDevice(cert, DeviceRecord{Provisioned: time.Now()})
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil:
				if winner >= 0 {
					t.Fatalf("round %d: both SaveDevice calls succeeded", round)
				}
				winner = i
			case !errors.Is(err, ErrDeviceExists):
				t.Fatalf("round %d: loser's error = %v, want ErrDeviceExists", round, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no SaveDevice call succeeded: %v", round, errs)
		}
		_, ident, err := c.LoadDevice(hex.EncodeToString(id))
		if err != nil {
			t.Fatal(err)
		}
		if !ident.Certificate.Equal(certs[winner]) {
			t.Fatalf("round %d: the record holds the loser's certificate", round)
		}
	}
}
