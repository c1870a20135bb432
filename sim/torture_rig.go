package sim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/internal/hostcose"
	"github.com/sbm-project/sbm/sbm"
	"github.com/sbm-project/sbm/sbm/mailbox"
	"github.com/sbm-project/sbm/trust"
	"github.com/sbm-project/sbm/vmcu"
	"github.com/sbm-project/sbm/wire"
)

// errPowerLost tells a torture step that an armed power cut fired.
var errPowerLost = errors.New("power lost")

// rig runs the real SBM on one (cloned) device, synchronously: each
// powerOn is one vmcu power-on session on the calling goroutine.
type rig struct {
	d *vmcu.Device
	// wrap, if set, wraps the SBM's flash (a test injects a broken
	// scheme with it).
	wrap func(hal.Flash) hal.Flash

	// session runs the next recovery session (one-shot); nil resets.
	session func(u hal.UART, t wire.Target, sys hal.System) bool
	// onLaunch runs the launched application (one-shot); nil returns at
	// once (the application "ran").
	onLaunch func(a *sbm.AppInfo)

	launched  *sbm.AppInfo // the application launched by the last session
	recovered bool         // the last session entered recovery
}

// firmware returns the SBM with the rig's hooks.
func (r *rig) firmware() vmcu.Firmware {
	return vmcu.FirmwareFunc(func(ctx context.Context, hw *hal.Hardware) {
		h := *hw
		if r.wrap != nil {
			h.Flash = r.wrap(h.Flash)
		}
		sbm.Boot(&h, &sbm.Options{
			Launch: func(a *sbm.AppInfo) {
				r.launched = a
				if f := r.onLaunch; f != nil {
					r.onLaunch = nil
					f(a)
				}
			},
			Serve: func(u hal.UART, t wire.Target, sys hal.System, _ time.Duration) bool {
				r.recovered = true
				f := r.session
				r.session = nil
				if f == nil {
					return true
				}
				return f(u, t, sys)
			},
			Timeout: 20 * time.Second,
		})
	})
}

// powerOn runs one power-on session. It returns errPowerLost if an armed
// cut fired, and an error if the firmware crashed.
func (r *rig) powerOn(warm, recovery bool) (vmcu.Stop, error) {
	r.launched, r.recovered = nil, false
	st, err := r.d.PowerOn(context.Background(), r.firmware(), vmcu.PowerOnOptions{Warm: warm, Recovery: recovery})
	switch {
	case err != nil:
		return st, err
	case st.Reason == vmcu.StopCrashed:
		return st, fmt.Errorf("SBM crashed: %v", st.Panic)
	case st.Reason == vmcu.StopPowerLoss:
		return st, errPowerLost
	}
	return st, nil
}

// bootToApp powers on (cold unless warm) and follows resets, at most a
// few, until a session ends without a reset (an application launched and
// returned) or the resets run out (recovery with nothing to do). It returns errPowerLost if a cut fired.
func (r *rig) bootToApp(warm, recovery bool) error {
	for range 4 {
		st, err := r.powerOn(warm, recovery)
		if err != nil {
			return err
		}
		if st.Reason != vmcu.StopReset {
			return nil
		}
		warm, recovery = true, st.Recovery
	}
	return nil
}

// state reads the SBM's public state of the device.
func (r *rig) state() (*sbm.State, error) { return sbm.ReadState(r.d.Flash(hal.PrivSBM), r.d.PUF()) }

// primary reads the first n bytes of the primary slot.
func (r *rig) primary(n int) ([]byte, error) {
	f := r.d.Flash(hal.PrivSBM)
	reg, ok := f.Geometry().Region(hal.RegionPrimary)
	if !ok {
		return nil, errors.New("board has no primary slot")
	}
	b := make([]byte, n)
	return b, f.Read(reg.Start, b)
}

// provisioned is the base device of a torture run and what the host knows
// about it.
type provisioned struct {
	d  *vmcu.Device
	ka []byte // the device's key-agreement public key (raw)
}

// provisionDevice builds a new in-memory device of board b, installs the
// SBM and provisions it for c through the RAM mailbox (as the programmer
// does, without locking: the torture reads the state host-side).
func provisionDevice(c *trust.Context, b *vmcu.Board, seed uint64, now time.Time, log io.Writer) (*provisioned, error) {
	d := vmcu.NewMemory(b, seed)
	if log != nil {
		d.SetConsole(log)
	}
	f := d.Flash(hal.PrivSBM)
	g := f.Geometry()
	reg, ok := g.Region(hal.RegionSBM)
	if !ok {
		return nil, errors.New("board has no SBM region")
	}
	img := sbm.Descriptor()
	for len(img)%int(g.WriteSize) != 0 {
		img = append(img, g.Erased)
	}
	if err := f.Erase(reg.Start); err != nil {
		return nil, err
	}
	if err := f.Program(reg.Start, img); err != nil {
		return nil, err
	}
	root, err := hostcose.RawPublicKey(c.RootPublicKey())
	if err != nil {
		return nil, err
	}
	if err := hal.ProgramRootKeyHash(d.Fuses(), sha256.Sum256(root)); err != nil {
		return nil, err
	}
	r := &rig{d: d}
	req := &mailbox.Request{Op: mailbox.OpProvision, Suite: 1, RootKey: root,
		VendorID: c.VendorID(), ClassID: c.ClassID(),
		ImageKeyCert: c.ImageSigningKeyCert(), UpdateKeyCert: c.UpdateAuthorityKeyCert(),
		SecurityCounter: 1, Time: uint64(now.Unix())}
	if c.Suite() == trust.SuiteEd25519 {
		req.Suite = 2
	}
	resp, err := r.exchange(req)
	if err != nil {
		return nil, fmt.Errorf("provisioning: %w", err)
	}
	csr, err := x509.ParseCertificateRequest(resp.CSR)
	if err != nil {
		return nil, fmt.Errorf("device CSR: %w", err)
	}
	ka, err := c.Suite().KeyAgreementCurve().NewPublicKey(resp.KeyAgreement)
	if err != nil {
		return nil, err
	}
	id := d.ID()
	cert, err := c.IssueDeviceCertificate(csr, id[:], ka, now)
	if err != nil {
		return nil, err
	}
	if _, err := r.exchange(&mailbox.Request{Op: mailbox.OpInstallCertificate, Certificate: cert.Raw}); err != nil {
		return nil, fmt.Errorf("installing the certificate: %w", err)
	}
	// One plain boot so that the "no application" error is recorded
	// before any sweep starts.
	if err := r.bootToApp(false, false); err != nil {
		return nil, err
	}
	return &provisioned{d: d, ka: bytes.Clone(resp.KeyAgreement)}, nil
}

// exchange writes a mailbox request, resets the device (RAM kept) and
// returns the SBM's response.
func (r *rig) exchange(req *mailbox.Request) (*mailbox.Response, error) {
	frame, err := mailbox.Frame(nil, mailbox.MagicRequest, mailbox.EncodeRequest(nil, req))
	if err != nil {
		return nil, err
	}
	dp := r.d.DebugPort()
	ctx := context.Background()
	if err := dp.Write(ctx, vmcu.RAMBase+mailbox.Offset, frame); err != nil {
		return nil, err
	}
	if _, err := r.powerOn(true, false); err != nil {
		return nil, err
	}
	h, err := dp.Read(ctx, vmcu.RAMBase+mailbox.Offset, mailbox.HeaderSize)
	if err != nil {
		return nil, err
	}
	n, err := mailbox.ParseHeader(h, mailbox.MagicResponse)
	if err != nil {
		return nil, fmt.Errorf("no mailbox response: %w", err)
	}
	fr, err := dp.Read(ctx, vmcu.RAMBase+mailbox.Offset, mailbox.HeaderSize+n)
	if err != nil {
		return nil, err
	}
	body, err := mailbox.Unframe(fr, mailbox.MagicResponse)
	if err != nil {
		return nil, err
	}
	resp, err := mailbox.DecodeResponse(body)
	if err != nil {
		return nil, err
	}
	if resp.Code != 0 {
		return nil, &wire.Error{Code: wire.Code(resp.Code), Detail: resp.Detail}
	}
	resp.CSR = bytes.Clone(resp.CSR)
	resp.KeyAgreement = bytes.Clone(resp.KeyAgreement)
	return &resp, nil
}

// sendTarget drives a Target as the protocol would: Begin, Write in
// pieces of step bytes, Finish.
func sendTarget(t wire.Target, pkg []byte, step int) error {
	if err := t.Begin(uint32(len(pkg))); err != nil {
		return err
	}
	for off := 0; off < len(pkg); off += step {
		end := min(off+step, len(pkg))
		if err := t.Write(uint32(off), pkg[off:end]); err != nil {
			return err
		}
	}
	return t.Finish()
}
