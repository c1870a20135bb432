// Package programmer is the host side of a device's life after the
// factory's silicon: provisioning at birth over the debug port (install the
// SBM, write the trust anchors, have the SBM generate its keys, certify them
// from the device CA, lock) and programming over the SBM's connection
// protocol.
package programmer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/sbm/mailbox"
	"github.com/sbm-project/sbm/trust"
	"github.com/sbm-project/sbm/vmcu"
	"github.com/sbm-project/sbm/wire"
)

// DebugPort is the debug access provisioning needs (implemented by
// *vmcu.DebugPort).
type DebugPort interface {
	ID(ctx context.Context) ([hal.IDSize]byte, error)
	Board(ctx context.Context) (*vmcu.Board, error)
	Read(ctx context.Context, addr uint32, n int) ([]byte, error)
	Write(ctx context.Context, addr uint32, data []byte) error
	Program(ctx context.Context, addr uint32, data []byte) error
	Erase(ctx context.Context, addr uint32) error
	Fuses(ctx context.Context) hal.Fuses
	Reset(ctx context.Context) error
}

// ProvisionOptions configures Provision.
type ProvisionOptions struct {
	// SBMImage is the SBM image written into the SBM region (required;
	// sbm.Descriptor() for the virtual microcontroller).
	SBMImage []byte
	// NoLock leaves the lock bits unblown (development devices).
	NoLock bool
	// ClassKey also gives the device the class key-agreement private key,
	// so that it accepts class UPKs.
	ClassKey bool
	// SecurityCounter is the initial anti-rollback counter.
	SecurityCounter uint32
	// Now defaults to time.Now; it is also the device's initial time floor.
	Now func() time.Time
	// Timeout bounds each wait for the SBM's answer; default 10 s.
	Timeout time.Duration
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// Provisioned describes a provisioned device.
type Provisioned struct {
	ID          []byte
	Certificate *x509.Certificate
	Record      *trust.DeviceRecord
	Locked      bool
	// UPK is the first-programming UPK the authority issued, or nil.
	UPK []byte
}

// ErrProvisioned is returned when the device already holds another
// context's root of trust.
var ErrProvisioned = errors.New("device is bound to another root of trust")

// Authority is what provisioning needs from the OEM: the trust anchors to
// write into the device and the certification of its keys. A context is
// its own authority (Provision); a station at a contract manufacturer uses
// the OEM service's (server.StationClient), which counts every device
// against a production order.
type Authority interface {
	// Anchors returns the anchors the device is given.
	Anchors(ctx context.Context) (*trust.Anchors, error)
	// CheckNew is called before anything is written to the device: it
	// refuses a device ID that was certified before, where the authority
	// can tell without the CSR (ErrDeviceExists).
	CheckNew(ctx context.Context, id []byte) error
	// Certify certifies the device whose verified request is req (der:
	// the CSR as the SBM made it); meta holds what provisioning measured
	// of the device (board, SBM measurement).
	Certify(ctx context.Context, req *trust.DeviceRequest, der []byte, meta trust.DeviceRecord) (*Certified, error)
	// Installed is called once the device holds its certificate: the
	// authority keeps the production record (meta carries its facts), or
	// returns nil if it recorded the device when certifying it (the
	// service, which logs every certificate it issues).
	Installed(ctx context.Context, cert *x509.Certificate, meta trust.DeviceRecord) (*trust.DeviceRecord, error)
}

// Certified is an authority's answer.
type Certified struct {
	Certificate *x509.Certificate
	// UPK is the device's first-programming UPK, if the authority issued
	// one (a production order that names a release).
	UPK []byte
}

// contextAuthority is a context certifying its own devices and recording
// them in its production records.
type contextAuthority struct {
	c   *trust.Context
	now func() time.Time
}

func (a contextAuthority) Anchors(context.Context) (*trust.Anchors, error) { return a.c.Anchors() }

func (a contextAuthority) CheckNew(_ context.Context, id []byte) error { return a.c.CheckNewDevice(id) }

func (a contextAuthority) Certify(_ context.Context, req *trust.DeviceRequest, _ []byte, _ trust.DeviceRecord) (*Certified, error) {
	cert, err := a.c.IssueDeviceCertificate(req.CSR, req.ID, req.KeyAgreement, a.now())
	if err != nil {
		return nil, err
	}
	return &Certified{Certificate: cert}, nil
}

// Installed records the device: only a certificate the device accepted
// gets a production record.
func (a contextAuthority) Installed(_ context.Context, cert *x509.Certificate, meta trust.DeviceRecord) (*trust.DeviceRecord, error) {
	rec, err := a.c.SaveDevice(cert, meta)
	if err != nil {
		return nil, fmt.Errorf("production record: %w", err)
	}
	return rec, nil
}

// Provision provisions the device behind dp for context c, which certifies
// it and keeps its production record. The device must be running (its CPU
// executes the SBM) and its debug port open.
func Provision(ctx context.Context, c *trust.Context, dp DebugPort, opts *ProvisionOptions) (*Provisioned, error) {
	now := time.Now
	if opts != nil && opts.Now != nil {
		now = opts.Now
	}
	var classKey []byte
	if opts != nil && opts.ClassKey {
		// The class key can be sent only from a file context: a token
		// does not let it out. Find out before touching the device.
		var err error
		if classKey, err = c.ExportClassKey(); err != nil {
			return nil, err
		}
	}
	return provision(ctx, contextAuthority{c: c, now: now}, dp, opts, classKey)
}

// ProvisionWith provisions the device behind dp with the anchors and
// certification of authority a (a station provisioning through the OEM
// service). opts.ClassKey is refused: the class key never leaves the OEM.
func ProvisionWith(ctx context.Context, a Authority, dp DebugPort, opts *ProvisionOptions) (*Provisioned, error) {
	if opts != nil && opts.ClassKey {
		return nil, errors.New("provision: the class key is not given out through an authority")
	}
	return provision(ctx, a, dp, opts, nil)
}

func provision(ctx context.Context, auth Authority, dp DebugPort, opts *ProvisionOptions, classKey []byte) (*Provisioned, error) {
	if opts == nil || len(opts.SBMImage) == 0 {
		return nil, errors.New("provision: no SBM image")
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	logf := func(format string, a ...any) {
		if opts.Log != nil {
			fmt.Fprintf(opts.Log, format+"\n", a...)
		}
	}
	anchors, err := auth.Anchors(ctx)
	if err != nil {
		return nil, fmt.Errorf("trust anchors: %w", err)
	}
	deviceCA, err := anchors.Check()
	if err != nil {
		return nil, err
	}
	id, err := dp.ID(ctx)
	if err != nil {
		return nil, fmt.Errorf("debug port: %w", err)
	}
	board, err := dp.Board(ctx)
	if err != nil {
		return nil, fmt.Errorf("debug port: %w", err)
	}
	logf("device %x (board %s): debug port open", id, board.Name)
	// A production record for this ID means a certificate was issued for
	// it: this chip is a clone (or the ID is re-used). Refuse before
	// touching it; the authority's exclusive record settles a race.
	if err := auth.CheckNew(ctx, id[:]); err != nil {
		return nil, err
	}

	// 1. Install the SBM.
	if err := installSBM(ctx, dp, board, opts.SBMImage); err != nil {
		return nil, err
	}
	sbmMeasurement, err := measureSBM(ctx, dp, board)
	if err != nil {
		return nil, err
	}
	// The SBM measurement (SHA-256 of the whole region, sbm.Measurement)
	// is what device info and attestation tokens report; the image's own
	// hash is not shown, so that there is one SBM hash to compare.
	logf("installed the SBM (%d bytes); SBM measurement %x", len(opts.SBMImage), sbmMeasurement)

	// 2. The root of trust: the root key hashes into fuses.
	fuses := dp.Fuses(ctx)
	if err := programRootSlots(fuses, anchors); err != nil {
		return nil, err
	}
	logf("root key hash %x written to fuses", anchors.RootSlots[anchors.RootSlot][:8])

	// 3. Anchors and key generation on the device.
	req := &mailbox.Request{
		Op: mailbox.OpProvision, Suite: 1, RootKey: anchors.RootKey,
		VendorID: anchors.VendorID, ClassID: anchors.ClassID,
		ImageKeyCert: anchors.ImageKeyCert, UpdateKeyCert: anchors.UpdateKeyCert,
		SecurityCounter: opts.SecurityCounter, Time: uint64(now().Unix()),
	}
	if anchors.Suite == trust.SuiteEd25519 {
		req.Suite = 2
	}
	if classKey != nil {
		req.ClassKey = rawPrivate(classKey)
	}
	resp, err := exchange(ctx, dp, req, opts.Timeout)
	if err != nil {
		return nil, fmt.Errorf("provisioning request: %w", err)
	}
	if !bytes.Equal(resp.DeviceID, id[:]) {
		return nil, fmt.Errorf("the SBM answered for device %x, the debug port says %x", resp.DeviceID, id)
	}
	// The device ID and key-agreement key in the response are not
	// authenticated; the CSR binds them under the identity key's signature,
	// and only those copies are certified.
	dreq, err := trust.ParseDeviceRequest(anchors.Suite, resp.CSR)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(dreq.ID, id[:]) {
		return nil, fmt.Errorf("%w: the CSR names device %x, the debug port says %x", trust.ErrDeviceIDMismatch, dreq.ID, id)
	}
	if !bytes.Equal(dreq.KeyAgreement.Bytes(), resp.KeyAgreement) {
		return nil, trust.ErrKeyAgreementMismatch
	}
	logf("the SBM generated its identity and key-agreement keys and sent a CSR binding them")

	// 4. The device certificate, and its production record.
	meta := trust.DeviceRecord{Board: board.Name, Locked: !opts.NoLock, SBMMeasurement: hex.EncodeToString(sbmMeasurement[:]), Provisioned: now()}
	certified, err := auth.Certify(ctx, dreq, resp.CSR, meta)
	if err != nil {
		return nil, err
	}
	cert := certified.Certificate
	if !bytes.Equal(cert.RawSubjectPublicKeyInfo, dreq.CSR.RawSubjectPublicKeyInfo) {
		return nil, errors.New("the authority certified another key than the device's")
	}
	if err := cert.CheckSignatureFrom(deviceCA); err != nil {
		return nil, fmt.Errorf("the device certificate is not signed by the device CA: %w", err)
	}
	// The CA chain up to (not including) the root, which the device trusts
	// through the root key hash in its fuses.
	chain := append(binary.BigEndian.AppendUint16(nil, uint16(len(anchors.DeviceCA))), anchors.DeviceCA...)
	if _, err := exchange(ctx, dp, &mailbox.Request{Op: mailbox.OpInstallCertificate, Certificate: cert.Raw, CAChain: chain}, opts.Timeout); err != nil {
		return nil, fmt.Errorf("installing the certificate: %w", err)
	}
	logf("device certificate issued by the device CA (serial %s) and installed", cert.SerialNumber.Text(16))

	// 5. The production record, then lock.
	rec, err := auth.Installed(ctx, cert, meta)
	if err != nil {
		return nil, err
	}
	out := &Provisioned{ID: id[:], Certificate: cert, Locked: !opts.NoLock, Record: rec, UPK: certified.UPK}
	if out.Record == nil {
		meta.ID = hex.EncodeToString(id[:])
		meta.Certificate = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))
		meta.Provisioned = meta.Provisioned.UTC().Truncate(time.Second)
		out.Record = &meta
	} else {
		logf("recorded device %s in the production records", out.Record.ID)
	}
	if opts.NoLock {
		logf("lock bits left unblown (--no-lock)")
		return out, dp.Reset(ctx)
	}
	if err := hal.BlowLocks(fuses, hal.LockSBMWriteProtect|hal.LockSecureHidden); err != nil {
		return nil, fmt.Errorf("blow protection fuses: %w", err)
	}
	if err := dp.Reset(ctx); err != nil {
		return nil, err
	}
	// The debug lock goes last: after it, this port answers nothing.
	if err := hal.BlowLocks(fuses, hal.LockDebug); err != nil {
		return nil, fmt.Errorf("blow debug lock: %w", err)
	}
	logf("lock bits blown: SBM write-protect, secure storage hidden, debug port locked")
	return out, nil
}

// rawPrivate returns a copy of a raw private key.
func rawPrivate(b []byte) []byte { return append([]byte(nil), b...) }

// installSBM writes image into the SBM region, unless it is already there.
func installSBM(ctx context.Context, dp DebugPort, b *vmcu.Board, image []byte) error {
	g := b.Geometry
	r, ok := g.Region(hal.RegionSBM)
	if !ok {
		return errors.New("board has no SBM region")
	}
	ws := int(g.WriteSize)
	padded := append([]byte(nil), image...)
	for len(padded)%ws != 0 {
		padded = append(padded, g.Erased)
	}
	if uint32(len(padded)) > r.Size {
		return fmt.Errorf("SBM image of %d bytes does not fit the %d-byte SBM region", len(image), r.Size)
	}
	cur, err := dp.Read(ctx, r.Start, len(padded))
	if err != nil {
		return fmt.Errorf("read SBM region: %w", err)
	}
	if bytes.Equal(cur, padded) {
		return nil
	}
	for _, s := range g.Sectors {
		if s.Start >= r.Start && s.Start < r.Start+r.Size {
			if err := dp.Erase(ctx, s.Start); err != nil {
				return fmt.Errorf("erase SBM region: %w", err)
			}
		}
	}
	if err := dp.Program(ctx, r.Start, padded); err != nil {
		return fmt.Errorf("program SBM: %w", err)
	}
	return nil
}

// measureSBM returns the SHA-256 of the whole SBM region, the SBM
// measurement the device's attestation tokens report (sbm.Measurement).
func measureSBM(ctx context.Context, dp DebugPort, b *vmcu.Board) ([32]byte, error) {
	r, ok := b.Geometry.Region(hal.RegionSBM)
	if !ok {
		return [32]byte{}, errors.New("board has no SBM region")
	}
	region, err := dp.Read(ctx, r.Start, int(r.Size))
	if err != nil {
		return [32]byte{}, fmt.Errorf("read SBM region: %w", err)
	}
	return sha256.Sum256(region), nil
}

// exchange writes a request into the mailbox, resets the device and waits
// for the SBM's response.
func exchange(ctx context.Context, dp DebugPort, req *mailbox.Request, timeout time.Duration) (*mailbox.Response, error) {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	frame, err := mailbox.Frame(nil, mailbox.MagicRequest, mailbox.EncodeRequest(nil, req))
	if err != nil {
		return nil, err
	}
	base := uint32(vmcu.RAMBase + mailbox.Offset)
	if err := dp.Write(ctx, base, frame); err != nil {
		return nil, fmt.Errorf("write mailbox: %w", err)
	}
	if err := dp.Reset(ctx); err != nil {
		return nil, fmt.Errorf("reset: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		h, err := dp.Read(ctx, base, mailbox.HeaderSize)
		if err == nil {
			if n, err := mailbox.ParseHeader(h, mailbox.MagicResponse); err == nil {
				f, err := dp.Read(ctx, base, mailbox.HeaderSize+n)
				if err != nil {
					return nil, err
				}
				body, err := mailbox.Unframe(f, mailbox.MagicResponse)
				if err != nil {
					return nil, err
				}
				resp, err := mailbox.DecodeResponse(body)
				if err != nil {
					return nil, err
				}
				if resp.Op != req.Op {
					return nil, fmt.Errorf("the SBM answered operation %d to operation %d", resp.Op, req.Op)
				}
				if resp.Code != 0 {
					return nil, &wire.Error{Code: wire.Code(resp.Code), Detail: resp.Detail}
				}
				return &resp, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no answer from the SBM within %v (is the SBM running?)", timeout)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// rootIndexCounter is the SBM's root-index fuse counter (sbm.FuseRootIndex).
const rootIndexCounter = 3

// programRootSlots programs the context's root-key hashes into the
// device's root-key fuse slots (slot 0 the first root, then its
// successors) and, for a context whose root has rotated, advances the
// device's root index to the current slot: a new device starts on the
// current root, with the successors still ahead. A device whose slots hold
// other hashes belongs to another root: ErrProvisioned.
func programRootSlots(fuses hal.Fuses, a *trust.Anchors) error {
	for i, h := range a.RootSlots {
		cur, err := hal.ReadRootKeySlot(fuses, i)
		if err != nil {
			return fmt.Errorf("read root key slot %d: %w", i, err)
		}
		if cur == h {
			continue
		}
		if err := hal.ProgramRootKeySlot(fuses, i, h); err != nil {
			if errors.Is(err, hal.ErrFuseConflict) {
				return fmt.Errorf("%w: its root key slot %d holds %x", ErrProvisioned, i, cur[:8])
			}
			return fmt.Errorf("program root key slot %d: %w", i, err)
		}
	}
	if slot := a.RootSlot; slot > 0 {
		if err := hal.AdvanceCounter(fuses, rootIndexCounter, int(slot)); err != nil {
			return fmt.Errorf("advance the root index: %w", err)
		}
	}
	return nil
}
