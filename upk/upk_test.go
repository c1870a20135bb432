package upk

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sbm-project/sbm/trust"
)

func TestIssueRejectsBadArguments(t *testing.T) {
	c, err := trust.Init(filepath.Join(t.TempDir(), "ctx"), nil)
	if err != nil {
		t.Fatal(err)
	}
	x, _ := trust.SuiteEd25519.GenerateKeyAgreementKey()
	p, _ := trust.SuiteP256.GenerateKeyAgreementKey()
	now := time.Now()
	var cek [32]byte
	tests := []struct {
		name string
		r    Recipient
		opts *Options
		want string
	}{
		{"no key", Recipient{Kind: Device, DeviceID: []byte{1}}, nil, "no key-agreement key"},
		{"wrong curve", Recipient{Kind: Device, Key: x.PublicKey(), DeviceID: []byte{1}}, nil, "not a p256"},
		{"no device id", Recipient{Kind: Device, Key: p.PublicKey()}, nil, "device ID must be"},
		{"long device id", Recipient{Kind: Device, Key: p.PublicKey(), DeviceID: make([]byte, 33)}, nil, "device ID must be"},
		{"class with device id", Recipient{Kind: Class, Key: p.PublicKey(), DeviceID: []byte{1}}, nil, "no device ID"},
		{"unknown kind", Recipient{Kind: 9, Key: p.PublicKey()}, nil, "unknown recipient kind"},
		{"empty window", Recipient{Kind: Class, Key: p.PublicKey()}, &Options{NotBefore: now, NotAfter: now.Add(-time.Second)}, "validity window is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Issue(c, []byte("manifest"), &cek, tt.r, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}
