package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/sbm-project/sbm/wire"
)

// SendOptions tune Send. The zero value uses the device's limits, no
// progress callback, no redial, and DefaultMaxRetries.
type SendOptions struct {
	// Progress, if set, is called whenever the device acknowledges more
	// bytes.
	Progress func(sent, total int)
	// Redial, if set, opens a new connection to the device after the link
	// drops; Send then asks STATUS and resumes from the device's received
	// offset. A Client made by Dial redials its port when Redial is nil.
	Redial func(ctx context.Context) (io.ReadWriteCloser, error)
	// MaxRetries is how many recoveries in a row (a status probe after a
	// timeout, a redial) Send makes without progress before it gives up.
	// 0 means DefaultMaxRetries; negative means none.
	MaxRetries int
	// ChunkSize is the DATA payload per frame; 0 or more than the device
	// accepts means the device's maximum.
	ChunkSize int
	// Window is the number of unacknowledged payload bytes in flight; 0 or
	// more than the device allows means the device's window.
	Window int
	// Resume, if set, first asks the device (STATUS) whether its session
	// already holds an unfinished transfer of the same size, such as one a
	// programmer that was interrupted began, and continues it at the
	// device's received offset instead of beginning again. The protocol
	// cannot tell whether those bytes came from the same package: if they
	// did not, the device's checks reject the package at Finish (nothing is
	// installed) and a Send without Resume begins again. A device that was
	// reset or ended its session by inactivity has lost the transfer; Send
	// then begins again.
	Resume bool
}

// DefaultMaxRetries is the default SendOptions.MaxRetries.
const DefaultMaxRetries = 5

// SendStats describes a transfer.
type SendStats struct {
	Bytes      int           // package size
	Acked      int           // bytes the device had acknowledged when Send returned
	Duration   time.Duration // from BEGIN to the last acknowledgement
	Frames     int           // DATA frames sent, including resent ones
	Resent     int           // DATA frames sent again (go-back-N, resume)
	Naks       int           // NAKs that made the sender go back
	Retries    int           // recoveries: status probes after a timeout, redials
	Reconnects int           // successful redials
	Restarts   int           // transfers begun again because the device had lost the transfer
	// ResumedAt is the offset at which Send continued a transfer the
	// device already held (SendOptions.Resume); 0 if it began one.
	ResumedAt int
}

// Send transfers pkg to the device: BEGIN, then DATA frames keeping a
// window of bytes in flight, until the device has acknowledged every byte.
// It recovers from lost frames (NAK, go-back-N), from silence (STATUS) and
// from a dropped link (redial, HELLO, STATUS, resume at the device's
// received offset). An error reported by the device, for example when it
// rejects the manifest, is a *wire.Error. Call Finish afterwards.
func (c *Client) Send(ctx context.Context, pkg []byte, opts SendOptions) (*SendStats, error) {
	st := &SendStats{Bytes: len(pkg)}
	if len(pkg) == 0 || uint64(len(pkg)) > math.MaxUint32 {
		return st, fmt.Errorf("wire/client: send: package size %d out of range", len(pkg))
	}
	s := &sender{c: c, ctx: ctx, pkg: pkg, opts: opts, st: st}
	if s.opts.Redial == nil {
		s.opts.Redial = c.redial
	}
	switch {
	case s.opts.MaxRetries == 0:
		s.maxRetries = DefaultMaxRetries
	case s.opts.MaxRetries > 0:
		s.maxRetries = s.opts.MaxRetries
	}
	start := time.Now()
	err := s.run()
	st.Duration = time.Since(start)
	st.Acked = s.acked
	if err != nil {
		if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
			err = ctx.Err()
		}
		return st, fmt.Errorf("wire/client: send: %w", err)
	}
	return st, nil
}

// sender is the state of one Send.
type sender struct {
	c          *Client
	ctx        context.Context
	pkg        []byte
	opts       SendOptions
	st         *SendStats
	maxRetries int

	chunk, window int
	acked, next   int // bytes acknowledged; offset of the next DATA to send
	high          int // highest offset sent so far
	gen           uint32
	gens          [256]uint32 // generation of the DATA frame sent with each sequence number
	fails         int         // recoveries since the last progress
}

// errStalled marks a timeout without progress, recovered with STATUS.
var errStalled = errors.New("no acknowledgement")

func (s *sender) run() error {
	if err := s.begin(); err != nil {
		return err
	}
	size := len(s.pkg)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for s.acked < size {
		// Fill the window.
		for s.next < size && s.next-s.acked < s.window {
			if err := s.sendData(); err != nil {
				if err := s.recover(err); err != nil {
					return err
				}
				continue
			}
			if err := s.drain(); err != nil {
				return err
			}
		}
		if s.acked >= size {
			break
		}
		// Wait for an acknowledgement.
		timer.Reset(s.progressTimeout())
		before := s.acked
		var err error
		cn := s.c.c
		select {
		case f := <-cn.frames:
			err = s.handle(f)
		case <-cn.done:
			err = s.c.connErr(cn.err)
		case <-timer.C:
			err = errStalled
		case <-s.ctx.Done():
			return s.ctx.Err()
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		if err != nil {
			var we *wire.Error
			if errors.As(err, &we) {
				return err
			}
			if err := s.recover(err); err != nil {
				return err
			}
		}
		if s.acked > before {
			s.fails = 0
		}
	}
	return nil
}

// begin negotiates (if needed) and sends BEGIN, or with
// SendOptions.Resume continues the device's unfinished transfer of the
// same size.
func (s *sender) begin() error {
	if err := s.negotiate(); err != nil {
		return err
	}
	if s.opts.Resume {
		// Three attempts, as for any idempotent request: right after a
		// reconnection the line may still carry an earlier host's bytes.
		st, err := s.statusAttempts(3)
		if err != nil {
			return err
		}
		if st.State == wire.StateReceiving && int(st.Size) == len(s.pkg) && st.Received > 0 && int(st.Received) <= len(s.pkg) {
			s.gen++
			s.acked, s.next, s.high = int(st.Received), int(st.Received), int(st.Received)
			s.st.ResumedAt = s.acked
			if s.opts.Progress != nil {
				s.opts.Progress(s.acked, len(s.pkg))
			}
			return nil
		}
	}
	return s.sendBegin()
}

// negotiate says HELLO if needed and sets the frame and window sizes.
func (s *sender) negotiate() error {
	p, err := s.c.hello(s.ctx)
	if err != nil {
		return err
	}
	s.chunk, s.window = p.MaxData, p.Window
	if s.opts.ChunkSize > 0 && s.opts.ChunkSize < s.chunk {
		s.chunk = s.opts.ChunkSize
	}
	if s.opts.Window > 0 && s.opts.Window < s.window {
		s.window = s.opts.Window
	}
	s.window = max(s.chunk, min(s.window, 64*s.chunk))
	return nil
}

// sendBegin sends BEGIN: the device discards any unfinished transfer.
func (s *sender) sendBegin() error {
	m := wire.Begin{Size: uint32(len(s.pkg))}
	if _, err := s.c.request(s.ctx, wire.TypeBegin, m.AppendCBOR(nil), wire.TypeResult); err != nil {
		return err
	}
	s.gen++
	s.acked, s.next = 0, 0
	return nil
}

func (s *sender) progressTimeout() time.Duration {
	return s.c.timeout + 2*s.c.linkTime(s.window+s.window/8+wire.MaxEncoded)
}

func (s *sender) sendData() error {
	n := min(s.chunk, len(s.pkg)-s.next)
	seq := s.c.nextSeq()
	s.gens[seq] = s.gen
	m := wire.Data{Offset: uint32(s.next), Bytes: s.pkg[s.next : s.next+n]}
	body := m.AppendCBOR(make([]byte, 0, n+16))
	if err := s.c.c.send(s.ctx, wire.AppendFrame(make([]byte, 0, len(body)+len(body)/254+8), wire.TypeData, seq, body)); err != nil {
		if s.ctx.Err() != nil {
			return s.ctx.Err()
		}
		return s.c.connErr(err)
	}
	s.st.Frames++
	if s.next < s.high {
		s.st.Resent++
	}
	s.next += n
	s.high = max(s.high, s.next)
	return nil
}

// drain handles the frames already received, without waiting.
func (s *sender) drain() error {
	for {
		select {
		case f := <-s.c.c.frames:
			if err := s.handle(f); err != nil {
				var we *wire.Error
				if errors.As(err, &we) {
					return err
				}
				return s.recover(err)
			}
		default:
			return nil
		}
	}
}

// handle processes one frame received during the transfer.
func (s *sender) handle(f wire.Frame) error {
	current := s.gens[f.Seq] == s.gen
	switch f.Type {
	case wire.TypeAck:
		var a wire.Ack
		if a.DecodeCBOR(f.Body) != nil || int(a.Offset) > len(s.pkg) {
			return nil // not for us: ignore
		}
		s.advance(int(a.Offset))
	case wire.TypeNak:
		var a wire.Ack
		if !current || a.DecodeCBOR(f.Body) != nil || int(a.Offset) > len(s.pkg) {
			return nil
		}
		s.advance(int(a.Offset))
		if int(a.Offset) < s.next {
			// Go back N: everything after the gap is resent; NAKs for
			// frames of the earlier generation are ignored.
			s.next = int(a.Offset)
			s.gen++
			s.st.Naks++
		}
	case wire.TypeResult:
		var r wire.Result
		if !current || r.DecodeCBOR(f.Body) != nil {
			return nil
		}
		if err := r.Err(); err != nil {
			return err
		}
	}
	return nil
}

// advance records that the device has received off bytes.
func (s *sender) advance(off int) {
	if off <= s.acked {
		return
	}
	s.acked = off
	s.next = max(s.next, off)
	s.fails = 0
	if s.opts.Progress != nil {
		s.opts.Progress(s.acked, len(s.pkg))
	}
}

// recover handles a stall (errStalled) or a link failure: it asks the
// device where the transfer stands, redialling first if the link is down,
// and resumes from there.
func (s *sender) recover(cause error) error {
	for {
		if s.ctx.Err() != nil {
			return s.ctx.Err()
		}
		s.fails++
		s.st.Retries++
		if s.fails > s.maxRetries {
			return fmt.Errorf("transfer stalled at %d of %d bytes after %d retries: %w", s.acked, len(s.pkg), s.fails-1, cause)
		}
		linkDown := !errors.Is(cause, errStalled) && !errors.Is(cause, ErrTimeout)
		if linkDown {
			if s.opts.Redial == nil {
				return cause
			}
			rwc, err := s.opts.Redial(s.ctx)
			if err != nil {
				cause = fmt.Errorf("redial: %w", err)
				s.pause()
				continue
			}
			if err := s.c.attach(rwc); err != nil {
				return err
			}
			s.st.Reconnects++
			if _, err := s.c.hello(s.ctx); err != nil {
				cause = err
				continue
			}
		}
		st, err := s.status()
		if err != nil {
			var we *wire.Error
			if errors.As(err, &we) {
				return err
			}
			cause = err
			continue
		}
		return s.resume(st)
	}
}

// pause waits a little before redialling again.
func (s *sender) pause() {
	t := time.NewTimer(200 * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.ctx.Done():
	}
}

// status asks STATUS once, allowing the window time to drain ahead of it.
func (s *sender) status() (*wire.StatusReply, error) { return s.statusAttempts(1) }

// statusAttempts asks STATUS up to attempts times.
func (s *sender) statusAttempts(attempts int) (*wire.StatusReply, error) {
	f, err := s.c.exchange(s.ctx, wire.TypeStatus, wire.AppendEmpty(nil), wire.TypeStatusReply, s.progressTimeout(), attempts)
	if err != nil {
		return nil, err
	}
	var st wire.StatusReply
	if err := st.DecodeCBOR(f.Body); err != nil {
		return nil, fmt.Errorf("%w: bad STATUS reply: %v", ErrProtocol, err)
	}
	return &st, nil
}

// resume continues the transfer from what STATUS reported.
func (s *sender) resume(st *wire.StatusReply) error {
	s.gen++ // answers to frames sent before this point are stale
	switch {
	case st.State == wire.StateReceiving && int(st.Size) == len(s.pkg):
		if int(st.Received) > s.acked {
			s.fails = 0
		}
		s.acked = int(st.Received)
		s.next = s.acked
		return nil
	case st.State == wire.StateIdle && st.Code != wire.CodeOK:
		// The device rejected the transfer while we were not listening.
		return &wire.Error{Code: st.Code, Detail: st.Detail}
	case st.State == wire.StateInstalled:
		return fmt.Errorf("%w: device reports a package installed during the transfer", ErrProtocol)
	default:
		// The device lost the transfer (it was reset): begin again.
		s.st.Restarts++
		if err := s.negotiate(); err != nil {
			return err
		}
		return s.sendBegin()
	}
}
