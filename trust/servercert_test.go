package trust

import (
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestServiceCertificates(t *testing.T) {
	for _, suite := range []Suite{SuiteP256, SuiteEd25519} {
		t.Run(string(suite), func(t *testing.T) {
			c, err := Init(filepath.Join(t.TempDir(), "ctx"), &InitOptions{Suite: suite})
			if err != nil {
				t.Fatal(err)
			}
			other, err := Init(filepath.Join(t.TempDir(), "other"), &InitOptions{Suite: suite})
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			server, err := c.IssueServiceCertificate(RoleServer, "sbm service", []string{"127.0.0.1", "localhost"}, ServerCertValidity)
			if err != nil {
				t.Fatal(err)
			}
			if len(server.Certificate.IPAddresses) != 1 || len(server.Certificate.DNSNames) != 1 {
				t.Fatalf("server SANs %v %v", server.Certificate.IPAddresses, server.Certificate.DNSNames)
			}
			station, err := c.IssueServiceCertificate(RoleStation, "cm1-line1", nil, CredentialCertValidity)
			if err != nil {
				t.Fatal(err)
			}
			foreign, err := other.IssueServiceCertificate(RoleOperator, "intruder", nil, CredentialCertValidity)
			if err != nil {
				t.Fatal(err)
			}
			op, err := c.OperatorCredential()
			if err != nil {
				t.Fatal(err)
			}
			again, err := c.OperatorCredential()
			if err != nil {
				t.Fatal(err)
			}
			if !again.Certificate.Equal(op.Certificate) {
				t.Fatal("operator credential issued twice")
			}
			if fi, err := os.Stat(c.Path("service/operator.key")); err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("operator key file: %v, %v", fi, err)
			}
			tests := []struct {
				name string
				cred *ServiceCredential
				role ServiceRole
				ok   bool
			}{
				{"server as server", server, RoleServer, true},
				{"server as operator", server, RoleOperator, false},
				{"operator as operator", op, RoleOperator, true},
				{"station as station", station, RoleStation, true},
				{"station as operator", station, RoleOperator, false},
				{"foreign operator", foreign, RoleOperator, false},
			}
			for _, tt := range tests {
				err := c.VerifyServiceCertificate([]*x509.Certificate{tt.cred.Certificate}, tt.role, now)
				if (err == nil) != tt.ok {
					t.Errorf("%s: %v", tt.name, err)
				}
			}
			err = c.VerifyServiceCertificate([]*x509.Certificate{station.Certificate}, RoleOperator, now)
			if !errors.Is(err, ErrNoServiceRole) {
				t.Errorf("station as operator: %v, want ErrNoServiceRole", err)
			}
			if ServiceRoleOf(c.DeviceCACertificate()) != "" {
				t.Error("the device CA has a service role")
			}
			if err := c.VerifyServiceCertificate([]*x509.Certificate{op.Certificate}, RoleOperator, now.Add(3*CredentialCertValidity)); err == nil {
				t.Error("expired operator certificate accepted")
			}

			dir := t.TempDir()
			if err := station.Save(dir, "station", nil); err != nil {
				t.Fatal(err)
			}
			if err := station.Save(dir, "station", nil); err == nil {
				t.Fatal("credential overwritten")
			}
			back, err := LoadServiceCredential(dir, "station", nil)
			if err != nil {
				t.Fatal(err)
			}
			if back.Digest() != station.Digest() || len(back.Chain) != 1 || len(back.TLSCertificate().Certificate) != 2 {
				t.Fatal("station credential read back differently")
			}
		})
	}
}

func TestOperatorCredentialEncrypted(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ctx")
	if _, err := Init(dir, &InitOptions{Passphrase: []byte("hunter2")}); err != nil {
		t.Fatal(err)
	}
	c, err := Open(dir, &OpenOptions{Passphrase: func() ([]byte, error) { return []byte("hunter2"), nil }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.OperatorCredential(); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadServiceCredential(c.Path(OperatorDir), "operator", nil); !errors.Is(err, ErrPassphraseRequired) {
		t.Fatalf("operator key readable without the passphrase: %v", err)
	}
}
