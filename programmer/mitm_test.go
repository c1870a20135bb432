package programmer

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sbm-project/sbm/sbm"
	"github.com/sbm-project/sbm/sbm/mailbox"
	"github.com/sbm-project/sbm/sim"
	"github.com/sbm-project/sbm/trust"
	"github.com/sbm-project/sbm/vmcu"
	"github.com/sbm-project/sbm/wire"
)

// mitmPort is a man in the middle on the production line's debug link: it
// rewrites the SBM's successful OpProvision response (in the mailbox in
// RAM) on its way to the provisioning tool.
type mitmPort struct {
	DebugPort
	tamper func(*mailbox.Response)
}

// Read returns the device's RAM, with the provisioning response rewritten
// by p.tamper.
func (p *mitmPort) Read(ctx context.Context, addr uint32, n int) ([]byte, error) {
	b, err := p.DebugPort.Read(ctx, addr, n)
	if err != nil || addr != vmcu.RAMBase+mailbox.Offset || n < mailbox.HeaderSize {
		return b, err
	}
	m, err := mailbox.ParseHeader(b, mailbox.MagicResponse)
	if err != nil {
		return b, nil // no response yet
	}
	f, err := p.DebugPort.Read(ctx, addr, mailbox.HeaderSize+m)
	if err != nil {
		return nil, err
	}
	body, err := mailbox.Unframe(f, mailbox.MagicResponse)
	if err != nil {
		return b, nil
	}
	resp, err := mailbox.DecodeResponse(body)
	if err != nil || resp.Op != mailbox.OpProvision || resp.Code != 0 {
		return b, nil
	}
	p.tamper(&resp)
	forged, err := mailbox.Frame(nil, mailbox.MagicResponse, mailbox.EncodeResponse(nil, &resp))
	if err != nil {
		return nil, err
	}
	out := make([]byte, n)
	copy(out, forged)
	return out, nil
}

// attackerCSR returns a CSR for a fresh identity key of the attacker's,
// requesting the given subjectAltName URIs (none if uris is empty).
func attackerCSR(t *testing.T, s trust.Suite, uris ...string) []byte {
	t.Helper()
	k, err := s.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: "attacker"}}
	for _, u := range uris {
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, pu)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestProvisionRefusesSubstitutedKeyAgreementKey: a man in the middle on
// the debug link replaces the key-agreement key in the SBM's provisioning
// response by their own (and, in the last two cases, the CSR by one of
// their own). Provisioning fails; nothing is recorded, no certificate is
// installed and no lock is blown: the same device then provisions
// normally over a clean link.
func TestProvisionRefusesSubstitutedKeyAgreementKey(t *testing.T) {
	for _, suite := range []trust.Suite{trust.SuiteP256, trust.SuiteEd25519} {
		t.Run(string(suite), func(t *testing.T) {
			c, err := trust.Init(filepath.Join(t.TempDir(), "ctx"), &trust.InitOptions{Suite: suite})
			if err != nil {
				t.Fatal(err)
			}
			b, err := vmcu.LookupBoard("small")
			if err != nil {
				t.Fatal(err)
			}
			dev := vmcu.NewMemory(b, 3)
			run := sim.StartDevice(context.Background(), dev, sim.Firmware(nil))
			defer run.Stop()
			attackerKA, err := suite.GenerateKeyAgreementKey()
			if err != nil {
				t.Fatal(err)
			}
			id := dev.ID()
			devURI := fmt.Sprintf("urn:sbm:device:%x", id)
			curve := "p256"
			if suite == trust.SuiteEd25519 {
				curve = "x25519"
			}
			kaURI := "urn:sbm:ka:" + curve + ":" + base64.RawURLEncoding.EncodeToString(attackerKA.PublicKey().Bytes())
			boundCSR := attackerCSR(t, suite, devURI, kaURI)
			unboundCSR := attackerCSR(t, suite)

			for _, tc := range []struct {
				name   string
				tamper func(*mailbox.Response)
				check  func(error) bool
			}{
				{"key-agreement key replaced",
					func(r *mailbox.Response) { r.KeyAgreement = attackerKA.PublicKey().Bytes() },
					func(err error) bool {
						return errors.Is(err, trust.ErrKeyAgreementMismatch) &&
							strings.Contains(err.Error(), "key-agreement key in the provisioning response is not the one the device signed")
					}},
				{"key replaced, CSR replaced by one without the binding",
					func(r *mailbox.Response) { r.KeyAgreement, r.CSR = attackerKA.PublicKey().Bytes(), unboundCSR },
					func(err error) bool { return errors.Is(err, trust.ErrUnboundCSR) }},
				{"key replaced, CSR replaced by the attacker's, binding the attacker's key",
					func(r *mailbox.Response) { r.KeyAgreement, r.CSR = attackerKA.PublicKey().Bytes(), boundCSR },
					// The device CA cannot tell this CSR from the
					// device's; the device refuses the certificate.
					func(err error) bool {
						var we *wire.Error
						return errors.As(err, &we) && we.Code == wire.CodeNotRecipient
					}},
			} {
				_, err := Provision(t.Context(), c, &mitmPort{DebugPort: dev.DebugPort(), tamper: tc.tamper},
					&ProvisionOptions{SBMImage: sbm.Descriptor()})
				if err == nil || !tc.check(err) {
					t.Fatalf("%s: err = %v", tc.name, err)
				}
				if ids, err := c.Devices(); err != nil || len(ids) != 0 {
					t.Fatalf("%s: production records %v %v", tc.name, ids, err)
				}
				if dev.Locks() != 0 {
					t.Fatalf("%s: locks %#x blown", tc.name, dev.Locks())
				}
			}
			// No certificate was installed (the SBM refuses to be
			// provisioned again once it has one) and the debug port is
			// open: over a clean link the device provisions normally.
			p, err := Provision(t.Context(), c, dev.DebugPort(), &ProvisionOptions{SBMImage: sbm.Descriptor(), NoLock: true})
			if err != nil {
				t.Fatalf("clean provisioning after the attacks: %v", err)
			}
			got, err := trust.ParseDeviceIdentity(p.Certificate)
			if err != nil {
				t.Fatal(err)
			}
			if got.KeyAgreement.Equal(attackerKA.PublicKey()) {
				t.Fatal("the attacker's key was certified")
			}
		})
	}
}
