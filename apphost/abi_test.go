package apphost

import (
	"crypto/sha256"
	"crypto/x509"
	"testing"

	"github.com/sbm-project/sbm/sbm"
	"github.com/sbm-project/sbm/sdk"
	"github.com/sbm-project/sbm/wire"
)

// TestCodesMatchSDK: the guest SDK's codes are the runtime's and the SBM's.
func TestCodesMatchSDK(t *testing.T) {
	pairs := map[int32]sdk.Code{
		CodeBadPointer: sdk.CodeBadPointer, CodeBadArgument: sdk.CodeBadArgument,
		CodeUnavailable: sdk.CodeUnavailable, CodeDenied: sdk.CodeDenied,
		CodeNetwork: sdk.CodeNetwork, CodeHTTPStatus: sdk.CodeHTTPStatus,
		CodeBadHandle: sdk.CodeBadHandle, CodeHostInternal: sdk.CodeHostInternal,
	}
	for c := wire.Code(0); c <= wire.CodeSlot; c++ {
		pairs[int32(c)] = sdk.Code(c)
		if c.String() != sdk.Code(c).String() {
			t.Errorf("code %d: wire says %q, sdk %q", c, c, sdk.Code(c))
		}
	}
	for host, guest := range pairs {
		if host != int32(guest) {
			t.Errorf("host code %d, sdk code %d", host, guest)
		}
	}
}

// TestBootInfoEncoding: the record the runtime writes is the one the SDK
// parses, with and without the services.
func TestBootInfoEncoding(t *testing.T) {
	app := &sbm.AppInfo{Version: "2.0.0", Digest: sha256.Sum256([]byte("app")),
		ManifestDigest: sha256.Sum256([]byte("manifest")), SecurityCounter: 3,
		SBMVersion: "0.1.0", Lifecycle: wire.LifecycleProvisioned}
	id := [16]byte{1, 2, 3}
	b, err := sdk.ParseInfo(appendBootInfo(nil, app, id, nil))
	if err != nil {
		t.Fatal(err)
	}
	if b.ServicesAvailable || b.AppVersion != "2.0.0" || b.SBMVersion != "0.1.0" || b.DeviceID != id ||
		b.AppDigest != app.Digest || b.ManifestDigest != app.ManifestDigest || b.SecurityCounter != 3 ||
		b.LifecycleName() != "provisioned" {
		t.Errorf("without services: %+v", b)
	}
	fake := newFake(16)
	fake.info.UpdatedThisBoot = true
	fake.info.LastUpdateDetail = string(make([]byte, 300)) // truncated to 255
	rec := appendBootInfo(nil, app, id, fake)
	if len(rec) > MaxBootInfoSize {
		t.Errorf("record of %d bytes, max %d", len(rec), MaxBootInfoSize)
	}
	b, err = sdk.ParseInfo(rec)
	if err != nil {
		t.Fatal(err)
	}
	if !b.ServicesAvailable || !b.UpdatedThisBoot || b.LastUpdate != sdk.CodeDowngrade ||
		len(b.LastUpdateDetail) != 255 || b.DeviceID != fake.info.DeviceID || b.SecurityCounter != 7 {
		t.Errorf("with services: %+v", b)
	}
	for n := range rec {
		if _, err := sdk.ParseInfo(rec[:n]); err == nil {
			t.Errorf("truncated record of %d bytes parsed", n)
		}
	}
}

// TestAllowedURL: only http URLs to the allowed hosts, without user info.
func TestAllowedURL(t *testing.T) {
	h := &host{opts: &Options{}}
	h.opts.defaults()
	for u, want := range map[string]bool{
		"http://127.0.0.1:8080/v2.pkg": true,
		"http://localhost/x":           true,
		"http://LOCALHOST/x":           true,
		"http://[::1]:80/x":            true,
		"https://127.0.0.1/x":          false,
		"http://127.0.0.1.nip.io/x":    false,
		"http://10.0.0.1/x":            false,
		"http://u@127.0.0.1/x":         false,
		"//127.0.0.1/x":                false,
		"http:127.0.0.1":               false,
		"ftp://localhost/x":            false,
		"":                             false,
	} {
		if _, ok := h.allowedURL(u); ok != want {
			t.Errorf("%q: allowed %v, want %v", u, ok, want)
		}
	}
	h = &host{opts: &Options{AllowedHosts: []string{"updates.example"}}}
	h.opts.defaults()
	if _, ok := h.allowedURL("http://127.0.0.1/x"); ok {
		t.Error("127.0.0.1 allowed with an explicit list without it")
	}
	if _, ok := h.allowedURL("http://updates.example/x"); !ok {
		t.Error("listed host refused")
	}
	// https: the configured service's origin only, and only with roots to
	// verify it.
	h = &host{opts: &Options{ServiceURL: "https://Fleet.example:8443/api", ServiceRoots: x509.NewCertPool()}}
	h.opts.defaults()
	for u, want := range map[string]bool{
		"https://fleet.example:8443/DEFAULT/controller/v1/x": true,
		"https://FLEET.example:8443/":                        true,
		"https://fleet.example/x":                            false, // port 443
		"https://fleet.example:8444/x":                       false,
		"https://other.example:8443/x":                       false,
		"https://u@fleet.example:8443/x":                     false,
		"http://fleet.example:8443/x":                        false, // not in AllowedHosts
		"https://127.0.0.1:8443/x":                           false,
	} {
		if _, ok := h.allowedURL(u); ok != want {
			t.Errorf("%q: allowed %v, want %v", u, ok, want)
		}
	}
	h = &host{opts: &Options{ServiceURL: "https://fleet.example:8443"}}
	h.opts.defaults()
	if _, ok := h.allowedURL("https://fleet.example:8443/x"); ok {
		t.Error("https allowed without roots to verify the service")
	}
	h = &host{opts: &Options{ServiceURL: "http://fleet.example:8443", ServiceRoots: x509.NewCertPool()}}
	h.opts.defaults()
	if _, ok := h.allowedURL("https://fleet.example:8443/x"); ok {
		t.Error("an http service URL allows https")
	}
}
