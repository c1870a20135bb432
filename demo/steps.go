package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/sbm-project/sbm/attest/verifier"
	"github.com/sbm-project/sbm/image"
	"github.com/sbm-project/sbm/sim"
	"github.com/sbm-project/sbm/upk"
	"github.com/sbm-project/sbm/vmcu"
)

// bootTimeout bounds a boot into the application: the SBM verifies it and
// the runtime compiles a multi-megabyte WebAssembly module on first sight.
const bootTimeout = 3 * time.Minute

func (s *story) bootAndAttest(ctx context.Context) error {
	s.n.section("Verified boot: the application runs and proves what it is")
	var err error
	if s.console, err = openConsole(s.uartAddr, s.n); err != nil {
		return err
	}
	s.n.say("the SBM hashed the application in flash, matched its signature table, and launched it;")
	s.n.say("its console is the UART:")
	if _, err := s.console.until(ctx, bootTimeout, func(l string) bool { return l == "ready" }); err != nil {
		return err
	}
	nonce := make([]byte, 16)
	rand.Read(nonce)
	s.n.say("the host sends a fresh challenge; the SBM signs a token with the device's PUF-derived key")
	lines, err := s.console.command(ctx, "attest "+hex.EncodeToString(nonce), time.Minute)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrStep, err)
	}
	var tok []byte
	for _, l := range lines {
		if h, ok := strings.CutPrefix(l, "token "); ok {
			if tok, err = hex.DecodeString(h); err != nil {
				return fmt.Errorf("%w: token is not hex", ErrStep)
			}
		}
	}
	res, err := verifier.Verify(s.ctx, tok, nonce, nil, nil)
	if err != nil {
		return fmt.Errorf("%w: attestation: %v", ErrStep, err)
	}
	s.n.ok("token verified with the device certificate: device %s (%s), SBM %s, application %s = release %s",
		res.Device[:12]+"…", res.Lifecycle, res.SBM.Version, res.Application.Version, res.Application.Release.Version)
	return nil
}

// serve serves files over HTTP on 127.0.0.1 and returns the base URL.
func (s *story) serve(files map[string][]byte) (string, func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	mux := http.NewServeMux()
	for name, b := range files {
		mux.HandleFunc("/"+name, func(w http.ResponseWriter, r *http.Request) { w.Write(b) })
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	return "http://" + l.Addr().String(), func() { srv.Close() }, nil
}

// devicePackage returns rel's container with a UPK for this device.
func (s *story) devicePackage(rel *release, u []byte) ([]byte, error) {
	return (&image.Package{Manifest: rel.pkg.Manifest, UPKs: [][]byte{u}, Payload: rel.pkg.Payload}).MarshalBinary()
}

// offer has the application download and request pkg, and returns the
// boot-info lines of the application that runs afterwards.
func (s *story) offer(ctx context.Context, url string) ([]string, error) {
	if err := s.console.send("update " + url); err != nil {
		return nil, err
	}
	if _, err := s.console.until(ctx, time.Minute, func(l string) bool {
		return strings.HasPrefix(l, "update: ") && strings.Contains(l, "requesting the update") || strings.HasPrefix(l, "error:")
	}); err != nil {
		return nil, err
	}
	var after []string
	_, err := s.console.until(ctx, bootTimeout, func(l string) bool {
		after = append(after, l)
		return l == "ready"
	})
	return after, err
}

func findLine(lines []string, prefix string) string {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

// attack offers a bad package and checks it is refused with reason while
// 2.0.0 keeps running.
func (s *story) attack(ctx context.Context, what, url, reason string) error {
	s.n.say("")
	s.n.say("attack: %s", what)
	after, err := s.offer(ctx, url)
	if err != nil {
		return err
	}
	refused := findLine(after, "last update: refused")
	if refused == "" || !strings.Contains(refused, reason) || findLine(after, "application 2.0.0") == "" {
		return fmt.Errorf("%w: %s was not refused with %q while 2.0.0 kept running", ErrStep, what, reason)
	}
	s.n.refused("%s; 2.0.0 still runs", strings.TrimPrefix(refused, "last update: refused: "))
	return nil
}

func (s *story) attacks(ctx context.Context) error {
	s.n.section("Attacks are refused, and the running application is never harmed")
	v3, err := s.makeRelease(ctx, "updater", "3.0.0", 3)
	if err != nil {
		return err
	}
	good, err := s.upkFor(v3, s.deviceKA)
	if err != nil {
		return err
	}
	tampered, err := s.devicePackage(v3, good)
	if err != nil {
		return err
	}
	tampered[len(tampered)-40] ^= 0x01 // one bit, in the last chunk
	v1 := s.releases["1.0.0"]
	u1, err := s.upkFor(v1, s.deviceKA)
	if err != nil {
		return err
	}
	downgrade, err := s.devicePackage(v1, u1)
	if err != nil {
		return err
	}
	clone, err := s.ctx.Suite().GenerateKeyAgreementKey()
	if err != nil {
		return err
	}
	otherUPK, err := s.upkFor(v3, upk.Recipient{Kind: upk.Device, Key: clone.PublicKey(), DeviceID: []byte("another-device")})
	if err != nil {
		return err
	}
	other, err := s.devicePackage(v3, otherUPK)
	if err != nil {
		return err
	}
	base, stop, err := s.serve(map[string][]byte{"tampered.pkg": tampered, "downgrade.pkg": downgrade, "other.pkg": other})
	if err != nil {
		return err
	}
	defer stop()
	if err := s.attack(ctx, "3.0.0 with one bit flipped in its last chunk", base+"/tampered.pkg", "decrypt"); err != nil {
		return err
	}
	if err := s.attack(ctx, "a downgrade to 1.0.0 (validly signed, with a fresh UPK)", base+"/downgrade.pkg", "downgrade"); err != nil {
		return err
	}
	if err := s.attack(ctx, "3.0.0 with a UPK made for another device (a clone)", base+"/other.pkg", "recipient"); err != nil {
		return err
	}
	st, err := sim.ReadState(s.devDir)
	if err != nil {
		return err
	}
	if st.App == nil || st.App.Version != "2.0.0" || st.SecurityCounter != 2 {
		return fmt.Errorf("%w: the signature table changed", ErrStep)
	}
	s.n.ok("signature table: 2.0.0, security counter 2")
	return nil
}

func (s *story) debugClosed(ctx context.Context) error {
	s.n.section("The debug port stays closed")
	_, err := s.device.Device.DebugPort().Read(ctx, 0, 16)
	if !errors.Is(err, vmcu.ErrDebugLocked) {
		return fmt.Errorf("%w: the debug port answered a read (%v)", ErrStep, err)
	}
	s.n.refused("read of the SBM region over the debug port: %v", err)
	return nil
}
