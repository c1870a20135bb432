package demo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/sbm-project/sbm/apphost"
	"github.com/sbm-project/sbm/programmer"
	"github.com/sbm-project/sbm/sbm"
	"github.com/sbm-project/sbm/server"
	"github.com/sbm-project/sbm/server/auditlog"
	"github.com/sbm-project/sbm/server/order"
	"github.com/sbm-project/sbm/server/station"
	"github.com/sbm-project/sbm/server/store"
	"github.com/sbm-project/sbm/server/store/sqlite"
	"github.com/sbm-project/sbm/sim"
	"github.com/sbm-project/sbm/trust"
	"github.com/sbm-project/sbm/upk"
	"github.com/sbm-project/sbm/vmcu"
)

// service is the OEM service the demo runs in-process.
type service struct {
	url      string
	store    store.Store
	operator *server.Client
	stop     context.CancelFunc
	done     chan error
	birthUPK []byte
}

func (v *service) close() {
	if v.operator != nil {
		v.operator.Close()
	}
	v.stop()
	<-v.done
	v.store.Close()
}

// startService runs the OEM service on loopback: SQLite in the demo
// directory, mutual TLS with certificates of the context's device CA.
func (s *story) startService(ctx context.Context) error {
	s.n.section("The OEM runs its service: production and updates over mutual TLS")
	st, err := sqlite.Open(ctx, s.path("service"))
	if err != nil {
		return err
	}
	srv, err := server.New(server.Config{Context: s.ctx, Store: st, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		st.Close()
		return err
	}
	tc, err := srv.TLSConfig([]string{"127.0.0.1"})
	if err != nil {
		st.Close()
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		st.Close()
		return err
	}
	sctx, stop := context.WithCancel(context.Background())
	v := &service{url: "https://" + ln.Addr().String(), store: st, stop: stop, done: make(chan error, 1)}
	go func() { v.done <- srv.Serve(sctx, ln, tc) }()
	s.svc = v
	cred, err := s.ctx.OperatorCredential()
	if err != nil {
		return err
	}
	if v.operator, err = server.NewClient(s.ctx, v.url, cred); err != nil {
		return err
	}
	if err := v.operator.Health(ctx); err != nil {
		return err
	}
	s.n.say("sbm server on %s: TLS 1.3, every client presents a certificate of the device CA", v.url)
	s.n.ok("SQLite store in %s; an append-only audit log with signed checkpoints", s.path("service"))
	return nil
}

// publishV1 publishes 1.0.0 on the service, for the order to program it at birth.
func (s *story) publishV1(ctx context.Context) error {
	rel := s.releases["1.0.0"]
	pkg, err := os.ReadFile(rel.file)
	if err != nil {
		return err
	}
	st, err := s.svc.operator.PublishRelease(ctx, pkg, false)
	if err != nil {
		return err
	}
	s.n.ok("published on the service after it verified the package against the context (manifest %s…)", st.ManifestDigest[:16])
	return nil
}

// provisionAtCM provisions the device at the contract manufacturer: a
// station credential, an order of one device naming the station and 1.0.0,
// the station's exchange with the service, then the OEM's audit.
func (s *story) provisionAtCM(ctx context.Context) error {
	s.n.section("Provisioning at the contract manufacturer, counted by the service, then lock")
	cred, err := s.ctx.IssueServiceCertificate(trust.RoleStation, "line-1", nil, trust.CredentialCertValidity)
	if err != nil {
		return err
	}
	o := order.New(s.ctx, 1, time.Now().Add(-time.Minute), time.Now().Add(24*time.Hour))
	o.Stations = [][32]byte{cred.Digest()}
	o.Release = s.releases["1.0.0"].manifestDigest()
	signed, err := order.Sign(s.ctx, o)
	if err != nil {
		return err
	}
	if _, err := s.svc.operator.LoadOrder(ctx, signed); err != nil {
		return err
	}
	s.n.say("the OEM signs an order with its root key: 1 device, station line-1, release 1.0.0 at birth; the service loads it")
	cl, err := server.NewStationClient(s.svc.url, cred)
	if err != nil {
		return err
	}
	defer cl.Close()
	auth := station.New(cl, o.IDString())
	res, err := programmer.ProvisionWith(ctx, auth, s.device.Device.DebugPort(), &programmer.ProvisionOptions{SBMImage: sbm.Descriptor()})
	if err != nil {
		return err
	}
	s.svc.birthUPK = res.UPK
	if err := s.saveCert(res.Certificate); err != nil {
		return err
	}
	s.n.say("the station got the anchors from the service and wrote them; the SBM derived its keys from the PUF")
	s.n.say("and sent a CSR; the station forwarded it; the service checked order, station and CSR, counted")
	s.n.say("the unit, signed the certificate with the device CA and logged it (entry %d), with a UPK for 1.0.0", auth.Last().LogIndex)
	if err := s.checkCert(ctx); err != nil {
		return err
	}
	// Over-production: a second chip gets nothing.
	spare, stopSpare, err := s.spareDevice(ctx)
	if err != nil {
		return err
	}
	clone, err := programmer.ProvisionWith(ctx, auth, spare, &programmer.ProvisionOptions{SBMImage: sbm.Descriptor(), NoLock: true})
	stopSpare()
	if err == nil || !strings.Contains(err.Error(), "order exhausted") {
		return fmt.Errorf("%w: a second device under an order of one: %v, %v", ErrStep, clone, err)
	}
	s.n.refused("a second chip on the same order: %s", trimRefusal(err))
	// The OEM audits the log and takes its production records from it.
	var export bytes.Buffer
	if err := s.svc.operator.ExportLog(ctx, &export); err != nil {
		return err
	}
	key, err := s.ctx.LogKey()
	if err != nil {
		return err
	}
	rep, err := auditlog.Audit(&export, key.Public(), map[auditlog.OrderID]uint64{auditlog.OrderID(o.ID): 1})
	if err != nil {
		return fmt.Errorf("%w: audit: %v", ErrStep, err)
	}
	d, err := s.svc.operator.Device(ctx, s.devID)
	if err != nil {
		return err
	}
	cert, err := x509.ParseCertificate(d.Certificate)
	if err != nil {
		return err
	}
	// The station's facts (board, lock, the SBM it measured) with the
	// certificate the log names.
	if _, err := s.ctx.SaveDevice(cert, *res.Record); err != nil {
		return err
	}
	or := rep.Orders[auditlog.OrderID(o.ID)]
	s.n.ok("the OEM audits the log offline: %d entries, every checkpoint signed, order: %d of %d certified; production record from it", rep.Size, or.Certified, or.Quota)
	_, id, err := s.ctx.LoadDevice(s.devID)
	if err != nil {
		return err
	}
	s.deviceKA = upk.Recipient{Kind: upk.Device, Key: id.KeyAgreement, DeviceID: id.ID}
	return nil
}

func trimRefusal(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, "): "); i >= 0 {
		return msg[i+3:]
	}
	return msg
}

// serviceFirmware is the device's firmware: the SBM with the application
// runtime, whose https fetches reach the OEM service only.
func (s *story) serviceFirmware() error {
	pool := x509.NewCertPool()
	pool.AddCert(s.ctx.DeviceCACertificate())
	s.fw = simFirmware(&apphost.Options{ServiceURL: s.svc.url, ServiceRoots: pool})
	return nil
}

// updateOverWeb publishes 2.0.0, rolls it out, and lets the running
// application update itself from the service over mutual TLS.
func (s *story) updateOverWeb(ctx context.Context) error {
	s.n.section("An update over the web: a rollout on the service, the application fetches 2.0.0 over mutual TLS")
	rel, err := s.makeRelease(ctx, "updater", "2.0.0", 2)
	if err != nil {
		return err
	}
	pkg, err := os.ReadFile(rel.file)
	if err != nil {
		return err
	}
	if _, err := s.svc.operator.PublishRelease(ctx, pkg, false); err != nil {
		return err
	}
	ro, err := s.svc.operator.StartRollout(ctx, &server.RolloutRequest{Release: "2.0.0", Percent: 100, MaxFailures: "1"})
	if err != nil {
		return err
	}
	s.n.say("published 2.0.0; rollout %s started: 100 %% of the fleet, halt after 1 failure", ro.ID)
	s.n.say("the application polls the service (hawkBit DDI) with TLS 1.3, its client certificate's key")
	s.n.say("in the SBM (tls_sign); it downloads the package and its own UPK, the service issued and logged")
	if err := s.console.send("poll " + s.svc.url); err != nil {
		return err
	}
	var lines []string
	last, err := s.console.until(ctx, 2*time.Minute, func(l string) bool {
		lines = append(lines, l)
		return strings.Contains(l, "requesting the update") || strings.HasPrefix(l, "error:") || l == "ok"
	})
	if err != nil {
		return err
	}
	if findLine(lines, "poll: action ") == "" || !strings.Contains(last, "requesting the update") {
		return fmt.Errorf("%w: the service offered nothing: %q", ErrStep, lines)
	}
	var after []string
	if _, err := s.console.until(ctx, bootTimeout, func(l string) bool {
		after = append(after, l)
		return l == "ready"
	}); err != nil {
		return err
	}
	if findLine(after, "application 2.0.0") == "" || findLine(after, "last update: installed at this boot") == "" {
		return fmt.Errorf("%w: the device did not come back running 2.0.0: %q", ErrStep, after)
	}
	s.n.ok("the SBM authenticated the whole staged package before touching 1.0.0, installed 2.0.0, and boots it verified")
	lines, err = s.console.command(ctx, "poll "+s.svc.url, time.Minute)
	if err != nil {
		return fmt.Errorf("%w: poll: %v", ErrStep, err)
	}
	if findLine(lines, "poll: report sent") == "" {
		return fmt.Errorf("%w: no report: %q", ErrStep, lines)
	}
	st, err := s.svc.operator.Rollout(ctx, ro.ID)
	if err != nil {
		return err
	}
	if st.Updated != 1 || st.Failed != 0 {
		return fmt.Errorf("%w: rollout status %+v", ErrStep, st)
	}
	s.n.ok("the service verified the install report the SBM signed; sbm rollout status: %s %s, %.0f %%, targeted %d, downloaded %d, updated %d, failed %d",
		st.Release, st.State, st.Percent, st.Targeted, st.Downloaded, st.Updated, st.Failed)
	return nil
}

// spareDevice powers on a second blank chip of the same board, in memory.
func (s *story) spareDevice(ctx context.Context) (programmer.DebugPort, func(), error) {
	b, err := vmcu.LookupBoard(s.board)
	if err != nil {
		return nil, nil, err
	}
	dev := vmcu.NewMemory(b, 2)
	run := sim.StartDevice(ctx, dev, sim.Firmware(nil))
	return dev.DebugPort(), func() { run.Stop() }, nil
}

func (r *release) manifestDigest() [32]byte { return sha256.Sum256(r.pkg.Manifest) }

func simFirmware(opts *apphost.Options) vmcu.Firmware { return sim.FirmwareWithApps(nil, opts) }
