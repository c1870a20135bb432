package demo

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"time"

	"github.com/sbm-project/sbm/image"
	"github.com/sbm-project/sbm/internal/atomicfile"
	"github.com/sbm-project/sbm/internal/firmware"
	"github.com/sbm-project/sbm/programmer"
	"github.com/sbm-project/sbm/sim"
	"github.com/sbm-project/sbm/trust"
	"github.com/sbm-project/sbm/upk"
	"github.com/sbm-project/sbm/vmcu"
	"github.com/sbm-project/sbm/wire"
	"github.com/sbm-project/sbm/wire/client"
)

// story holds the demo's state as it goes.
type story struct {
	n               *narrator
	dir, src, board string
	ctx             *trust.Context
	devDir, devID   string
	device          *sim.Running
	uartAddr        string
	console         *console
	releases        map[string]*release
	deviceKA        upk.Recipient
	fw              vmcu.Firmware // the device's firmware, for power cycles
	v1Flash         []byte        // the flash chip copied while 1.0.0 ran
	v1Step          int           // the step it was copied in
	svc             *service      // the OEM service
}

// release is a packaged application version.
type release struct {
	version string
	wasm    []byte
	pkg     *image.Package
	file    string
	cek     [32]byte
}

func (s *story) close() {
	if s.console != nil {
		s.console.Close()
	}
	if s.device != nil {
		s.device.Stop()
	}
	if s.svc != nil {
		s.svc.close()
	}
}

func (s *story) run(ctx context.Context) error {
	steps := []func(context.Context) error{
		s.createContext, s.startService, s.packageV1, s.newDevice, s.provisionAtCM, s.programV1,
		s.bootAndAttest, s.copyFlash, s.updateOverWeb, s.attacks, s.flashChip, s.debugClosed,
	}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (s *story) createContext(ctx context.Context) error {
	s.n.section("The OEM creates its security context")
	c, err := trust.Init(s.path("context"), &trust.InitOptions{Organization: "Example Corp"})
	if err != nil {
		return err
	}
	s.ctx = c
	info, _ := c.Info()
	s.n.say("root key (its hash goes into every device's fuses): %s…", info.RootKeyID[:16])
	s.n.say("image-signing and update-authority keys, certified by the root; an X.509 device CA")
	s.n.say("vendor %s, device class %s", c.VendorID(), c.ClassID())
	s.n.ok("context in %s (private keys PKCS#8, mode 0600)", s.path("context"))
	return nil
}

func (s *story) newDevice(ctx context.Context) error {
	s.n.section("A new virtual microcontroller comes off the line")
	b, err := vmcu.LookupBoard(s.board)
	if err != nil {
		return err
	}
	s.devDir = s.path("device")
	if err := vmcu.Create(s.devDir, b); err != nil {
		return err
	}
	in, err := vmcu.Inspect(s.devDir)
	if err != nil {
		return err
	}
	s.devID = in.ID
	s.n.say("board %s: %s", b.Name, b.Description)
	s.n.say("blank silicon: erased flash, unblown fuses, unique ID %s, a PUF", s.devID)
	if err := s.serviceFirmware(); err != nil {
		return err
	}
	if s.device, err = sim.Start(ctx, s.devDir, s.fw, nil); err != nil {
		return err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	s.uartAddr = l.Addr().String()
	l.Close()
	if _, err := s.device.Device.UART().ListenTCP(s.uartAddr); err != nil {
		return err
	}
	s.n.ok("powered on; its UART listens on tcp:%s", s.uartAddr)
	return nil
}

// saveCert writes the device certificate next to the context.
func (s *story) saveCert(cert *x509.Certificate) error {
	return atomicfile.WriteFile(s.path("device.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644)
}

// checkCert checks the device certificate with openssl (if installed) and
// that the debug port is locked.
func (s *story) checkCert(ctx context.Context) error {
	if openssl, err := exec.LookPath("openssl"); err == nil {
		out, err := exec.CommandContext(ctx, openssl, "verify", "-CAfile", s.ctx.CAChainPath(), s.path("device.crt")).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%w: openssl verify: %s", ErrStep, out)
		}
		s.n.ok("openssl verify -CAfile ca-chain.pem device.crt: OK")
	}
	if _, err := s.device.Device.DebugPort().ID(ctx); !errors.Is(err, vmcu.ErrDebugLocked) {
		return fmt.Errorf("%w: the debug port still answers after lock (%v)", ErrStep, err)
	}
	s.n.ok("lock bits blown: the debug port now refuses everything")
	return nil
}

// makeRelease builds, packages and records an application version.
func (s *story) makeRelease(ctx context.Context, example, version string, counter uint32) (*release, error) {
	wasm, err := buildWasm(ctx, s.src, example, version, s.path(example+"-"+version+".wasm"))
	if err != nil {
		return nil, err
	}
	res, err := image.Create(s.ctx, &firmware.Image{Data: wasm, Format: firmware.FormatWasm}, &image.CreateOptions{Version: version, SecurityCounter: counter})
	if err != nil {
		return nil, err
	}
	rel := &trust.Release{ManifestDigest: hex.EncodeToString(res.ManifestDigest[:]), Version: version, SecurityCounter: counter,
		PayloadSHA256: fmt.Sprintf("%x", sha256.Sum256(wasm)), PayloadSize: uint32(len(wasm)), Created: time.Now().UTC()}
	if err := s.ctx.SaveRelease(rel, res.Escrow); err != nil {
		return nil, err
	}
	enc, err := res.Package.MarshalBinary()
	if err != nil {
		return nil, err
	}
	file := s.path("app-" + version + ".pkg")
	if err := atomicfile.WriteFile(file, enc, 0o644); err != nil {
		return nil, err
	}
	if s.releases == nil {
		s.releases = map[string]*release{}
	}
	r := &release{version: version, wasm: wasm, pkg: res.Package, file: file, cek: res.CEK}
	s.releases[version] = r
	s.n.say("%s %s: %d-byte WebAssembly module built by the Go toolchain", example, version, len(wasm))
	s.n.ok("app-%s.pkg: manifest signed (COSE_Sign1), payload encrypted in %d authenticated chunks (%d bytes)", version, (len(wasm)+4095)/4096, len(enc))
	return r, nil
}

// upkFor issues a UPK of rel for recipient r.
func (s *story) upkFor(rel *release, r upk.Recipient) ([]byte, error) {
	return upk.Issue(s.ctx, rel.pkg.Manifest, &rel.cek, r, nil)
}

func (s *story) packageV1(ctx context.Context) error {
	s.n.section("Package the application, version 1.0.0")
	if _, err := s.makeRelease(ctx, "updater", "1.0.0", 1); err != nil {
		return err
	}
	return s.publishV1(ctx)
}

func (s *story) programV1(ctx context.Context) error {
	s.n.section("First programming over the UART")
	rel := s.releases["1.0.0"]
	u := s.svc.birthUPK
	if u == nil {
		return fmt.Errorf("%w: the service issued no first-programming UPK", ErrStep)
	}
	s.n.say("the UPK the service issued with the certificate, for this device only: the content key")
	s.n.say("wrapped to its PUF-derived key (ECDH-ES + HKDF + AES-KW)")
	cl, err := client.Dial(ctx, "tcp:"+s.uartAddr)
	if err != nil {
		return err
	}
	defer cl.Close()
	res, err := programmer.Program(ctx, cl, rel.pkg, &programmer.ProgramOptions{UPK: u})
	if err != nil {
		var we *wire.Error
		if errors.As(err, &we) {
			return fmt.Errorf("%w: the device refused v1: %v", ErrStep, we)
		}
		return err
	}
	s.n.say("no application yet, so the SBM waits in recovery; sent %d bytes in %d frames in %.2f s\n(an in-process link, not paced to a baud rate: `sbm program` over a real UART runs at line rate)",
		res.Bytes, res.Stats.Frames, res.Stats.Duration.Seconds())
	s.n.ok("the SBM checked the UPK and manifest, authenticated every chunk, installed 1.0.0 and reset")
	return nil
}
