package programmer

import (
	"context"
	"errors"
	"fmt"

	"github.com/sbm-project/sbm/image"
	"github.com/sbm-project/sbm/wire"
	"github.com/sbm-project/sbm/wire/client"
)

// ProgramOptions configures Program.
type ProgramOptions struct {
	// UPK is the UPK to send; nil selects the first UPK carried in the
	// package (a class UPK).
	UPK []byte
	// NoReset leaves the device in its recovery session after the install.
	NoReset bool
	// Progress is called as the device acknowledges bytes.
	Progress func(sent, total int)
	// Ready, if set, is called with the device information before anything
	// is sent; an error it returns ends Program before the transfer.
	Ready func(info *wire.DeviceInfo) error
	// Resume continues an unfinished transfer of the same size that the
	// device's session still holds (client.SendOptions.Resume), such as one
	// an interrupted programmer began, instead of beginning again.
	Resume bool
}

// ProgramResult reports a programming session.
type ProgramResult struct {
	Before *wire.DeviceInfo // the device before programming
	Stats  *client.SendStats
	// Bytes is the size of the stream sent (manifest, UPK and payload
	// records).
	Bytes int
}

// ErrNoUPK is returned when there is no UPK to send.
var ErrNoUPK = errors.New("no UPK: give one (sbm upk issue) or package with --class-upk")

// Program sends package p with a UPK to the device's SBM over cl, has it
// verify and install the package, and resets the device into the new
// application. A rejection is a *wire.Error carrying the device's code.
// Nothing answering HELLO (the device runs its application, not the SBM's
// recovery mode) is an error wrapping client.ErrNoHello, before anything is
// sent.
func Program(ctx context.Context, cl *client.Client, p *image.Package, opts *ProgramOptions) (*ProgramResult, error) {
	if opts == nil {
		opts = &ProgramOptions{}
	}
	u := opts.UPK
	if u == nil {
		if len(p.UPKs) == 0 {
			return nil, ErrNoUPK
		}
		u = p.UPKs[0]
	}
	stream, err := (&image.Package{Manifest: p.Manifest, UPKs: [][]byte{u}, Payload: p.Payload}).MarshalBinary()
	if err != nil {
		return nil, err
	}
	res := &ProgramResult{Bytes: len(stream)}
	if res.Before, err = cl.Info(ctx); err != nil {
		return nil, fmt.Errorf("device info: %w", err)
	}
	if res.Before.StagingSize != 0 && uint64(len(stream)) > uint64(res.Before.StagingSize) {
		return res, &wire.Error{Code: wire.CodeTooLarge, Detail: fmt.Sprintf("package of %d bytes, the device's staging slot holds %d", len(stream), res.Before.StagingSize)}
	}
	if opts.Ready != nil {
		if err := opts.Ready(res.Before); err != nil {
			return res, err
		}
	}
	if res.Stats, err = cl.Send(ctx, stream, client.SendOptions{Progress: opts.Progress, Resume: opts.Resume}); err != nil {
		return res, err
	}
	if err := cl.Finish(ctx); err != nil {
		return res, err
	}
	if !opts.NoReset {
		if err := cl.Reset(ctx); err != nil {
			return res, fmt.Errorf("reset after install: %w", err)
		}
	}
	return res, nil
}
