package wire

import (
	"time"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/internal/errs"
)

// Session defaults (docs/spec/protocol.md §6).
const (
	// DefaultMaxData is the DATA payload a Session accepts by default.
	DefaultMaxData = 2048
	// DefaultWindowFrames is the default window in DATA frames of MaxData
	// bytes.
	DefaultWindowFrames = 4
	// DefaultInactivity is the default inactivity timeout.
	DefaultInactivity = 60 * time.Second
	// minData is the smallest MaxData a Session may be configured with.
	minData = 64
	// maxWindowFrames bounds the window in frames so that a host never has
	// more than 2·64 frames unanswered, well inside the 256 sequence
	// numbers.
	maxWindowFrames = 64
)

// Clock is a monotonic clock; hal.System implements it.
type Clock interface {
	// Now returns the time elapsed since an arbitrary fixed origin.
	Now() time.Duration
}

// Config sets a Session's limits. The zero value selects the defaults.
type Config struct {
	// MaxData is the largest DATA payload accepted, 64 to MaxData bytes;
	// default DefaultMaxData.
	MaxData int
	// Window is the number of unacknowledged DATA payload bytes the host
	// may have in flight. It should not exceed what the UART driver can
	// buffer while the Target writes to flash. Default DefaultWindowFrames
	// times MaxData; it is kept between MaxData and 64 times MaxData.
	Window int
	// Inactivity ends the session when no valid request arrives for that
	// long; default DefaultInactivity.
	Inactivity time.Duration
}

func (c Config) withDefaults() Config {
	if c.MaxData <= 0 {
		c.MaxData = DefaultMaxData
	}
	c.MaxData = min(max(c.MaxData, minData), MaxData)
	if c.Window <= 0 {
		c.Window = DefaultWindowFrames * c.MaxData
	}
	c.Window = min(max(c.Window, c.MaxData), maxWindowFrames*c.MaxData)
	if c.Inactivity <= 0 {
		c.Inactivity = DefaultInactivity
	}
	return c
}

// EndReason tells why Serve returned.
type EndReason uint8

// Reasons a session ends.
const (
	// EndReset: the host sent RESET; nothing was installed.
	EndReset EndReason = iota + 1
	// EndInstalled: the host sent RESET after a successful FINISH.
	EndInstalled
	// EndTimeout: no valid request arrived within the inactivity timeout.
	EndTimeout
	// EndLink: the UART failed; Serve also returns its error.
	EndLink
)

var endNames = [...]string{"", "reset", "installed", "timeout", "link failure"}

// String returns a short description of r.
func (r EndReason) String() string {
	if int(r) < len(endNames) && r != 0 {
		return endNames[r]
	}
	return "unknown"
}

// SessionStats counts what a Session has seen.
type SessionStats struct {
	ReaderStats
	Requests   uint32 // valid request frames handled
	Duplicates uint32 // DATA frames below the expected offset, re-acknowledged
	OutOfOrder uint32 // DATA frames above the expected offset, answered with NAK
	Ignored    uint32 // valid frames of a response type, ignored
}

// Session serves the protocol on a UART, driving a Target. Its buffers
// are fixed arrays sized by MaxFrame, so a Session takes about 13 KiB and
// allocates nothing per frame. A Session is used from one goroutine.
//
// A Session treats the UART as persistent: a host that disconnects and
// reconnects (a dropped link, a reopened serial port) just sends new bytes,
// and a transfer in progress resumes where the Target says it stopped.
type Session struct {
	uart  hal.UART
	clock Clock
	t     Target
	cfg   Config

	rd   FrameReader
	rx   [256]byte
	body [MaxBody]byte
	tx   [MaxEncoded]byte

	hello      bool   // a HELLO has been answered
	state      uint8  // StateIdle, StateReceiving or StateInstalled
	size       uint32 // package size, while receiving
	next       uint32 // next expected DATA offset, while receiving
	lastCode   Code   // why the last transfer failed
	lastDetail string
	stats      SessionStats
}

// NewSession returns a Session that serves uart for t, measuring
// inactivity with clock.
func NewSession(uart hal.UART, clock Clock, t Target, cfg Config) *Session {
	return &Session{uart: uart, clock: clock, t: t, cfg: cfg.withDefaults()}
}

// Stats returns the session's counters.
func (s *Session) Stats() SessionStats {
	st := s.stats
	st.ReaderStats = s.rd.Stats()
	return st
}

// Installed reports whether a FINISH succeeded in this session.
func (s *Session) Installed() bool { return s.state == StateInstalled }

// Serve answers requests until the host sends RESET, no valid request
// arrives for the inactivity timeout, or the UART fails (EndLink, with the
// UART's error). Serve never panics on input. It does not abort an
// unfinished transfer when it returns; the caller resets the device.
func (s *Session) Serve() (EndReason, error) {
	last := s.clock.Now()
	for {
		idle := s.clock.Now() - last
		if idle >= s.cfg.Inactivity {
			return EndTimeout, nil
		}
		n, err := s.uart.Read(s.rx[:], s.cfg.Inactivity-idle)
		if errs.Same(err, hal.ErrTimeout) {
			continue
		}
		if err != nil && n <= 0 {
			return EndLink, err
		}
		p := s.rx[:min(max(n, 0), len(s.rx))]
		for len(p) > 0 {
			c, f, ok := s.rd.Push(p)
			p = p[c:]
			if !ok {
				continue
			}
			if f.Type.IsResponse() {
				s.stats.Ignored++
				continue
			}
			s.stats.Requests++
			last = s.clock.Now()
			if end, err := s.handle(f); end != 0 {
				return end, err
			}
		}
		if err != nil {
			return EndLink, err
		}
	}
}

// handle answers one request. It returns a non-zero EndReason when the
// session ends.
func (s *Session) handle(f Frame) (EndReason, error) {
	if f.Type == TypeHello {
		var m Hello
		if err := m.DecodeCBOR(f.Body); err != nil {
			return s.fail(f.Seq, err)
		}
		if m.MinVersion > MaxVersion || m.MaxVersion < MinVersion {
			return s.result(f.Seq, CodeUnsupported, "no common protocol version")
		}
		s.hello = true
		r := HelloReply{
			Version:    min(m.MaxVersion, MaxVersion),
			MaxData:    uint32(s.cfg.MaxData),
			Window:     uint32(s.cfg.Window),
			Inactivity: uint32(min(s.cfg.Inactivity/time.Millisecond, 1<<32-1)),
			MaxFrame:   MaxFrame,
			Nonce:      m.Nonce,
		}
		return s.send(TypeHelloReply, f.Seq, r.AppendCBOR(s.body[:0]))
	}
	if f.Type.IsResponse() || f.Type > TypeReset || f.Type == 0 {
		return s.result(f.Seq, CodeUnsupported, "unknown request")
	}
	if !s.hello {
		return s.result(f.Seq, CodeState, "hello first")
	}
	switch f.Type {
	case TypeInfo:
		if err := DecodeEmpty(f.Body); err != nil {
			return s.fail(f.Seq, err)
		}
		b := s.t.Info(s.body[:0])
		if len(b) > MaxBody {
			return s.result(f.Seq, CodeInternal, "device information too large")
		}
		return s.send(TypeInfoReply, f.Seq, b)
	case TypeGetCert:
		return s.getCert(f)
	case TypeBegin:
		var m Begin
		if err := m.DecodeCBOR(f.Body); err != nil {
			return s.fail(f.Seq, err)
		}
		if s.state == StateInstalled {
			return s.result(f.Seq, CodeState, "package already installed")
		}
		if s.state == StateInstalled {
			return s.result(f.Seq, CodeState, "package already installed")
		}
		if s.state == StateReceiving {
			s.t.Abort()
		}
		s.state, s.size, s.next, s.lastCode, s.lastDetail = StateIdle, 0, 0, CodeOK, ""
		if err := s.t.Begin(m.Size); err != nil {
			return s.transferFailed(f.Seq, err)
		}
		s.state, s.size = StateReceiving, m.Size
		return s.result(f.Seq, CodeOK, "")
	case TypeData:
		return s.data(f)
	case TypeStatus:
		if err := DecodeEmpty(f.Body); err != nil {
			return s.fail(f.Seq, err)
		}
		r := StatusReply{State: s.state, Code: s.lastCode, Detail: s.lastDetail}
		switch s.state {
		case StateReceiving:
			r.Size = s.size
			r.Received = min(s.t.Received(), s.next)
			s.next = r.Received
		case StateInstalled:
			r.Size, r.Received = s.size, s.size
		}
		return s.send(TypeStatusReply, f.Seq, r.AppendCBOR(s.body[:0]))
	case TypeFinish:
		if err := DecodeEmpty(f.Body); err != nil {
			return s.fail(f.Seq, err)
		}
		switch {
		case s.state == StateInstalled:
			return s.result(f.Seq, CodeOK, "") // FINISH is idempotent
		case s.state != StateReceiving && s.lastCode != CodeOK:
			// The transfer failed: a repeated FINISH gets the same answer.
			return s.result(f.Seq, s.lastCode, s.lastDetail)
		case s.state != StateReceiving:
			return s.result(f.Seq, CodeState, "no transfer in progress")
		case s.next < s.size:
			return s.result(f.Seq, CodeState, "package incomplete")
		}
		if err := s.t.Finish(); err != nil {
			s.state = StateIdle
			s.lastCode, s.lastDetail = codeOf(err)
			return s.result(f.Seq, s.lastCode, s.lastDetail)
		}
		s.state = StateInstalled
		return s.result(f.Seq, CodeOK, "")
	case TypeAbort:
		if err := DecodeEmpty(f.Body); err != nil {
			return s.fail(f.Seq, err)
		}
		if s.state == StateInstalled {
			return s.result(f.Seq, CodeState, "package already installed")
		}
		if s.state == StateReceiving {
			s.t.Abort()
		}
		s.state, s.size, s.next, s.lastCode, s.lastDetail = StateIdle, 0, 0, CodeOK, ""
		return s.result(f.Seq, CodeOK, "")
	default: // TypeReset
		if err := DecodeEmpty(f.Body); err != nil {
			return s.fail(f.Seq, err)
		}
		if end, err := s.result(f.Seq, CodeOK, ""); end != 0 {
			return end, err
		}
		if s.state == StateInstalled {
			return EndInstalled, nil
		}
		return EndReset, nil
	}
}

func (s *Session) getCert(f Frame) (EndReason, error) {
	var m GetCert
	if err := m.DecodeCBOR(f.Body); err != nil {
		return s.fail(f.Seq, err)
	}
	cert := s.t.Certificate()
	if len(cert) == 0 {
		return s.result(f.Seq, CodeNotProvisioned, "no device certificate")
	}
	if uint64(len(cert)) > 1<<32-1 {
		return s.result(f.Seq, CodeInternal, "certificate too large")
	}
	if int64(m.Offset) > int64(len(cert)) {
		return s.result(f.Seq, CodeOffset, "offset beyond the certificate")
	}
	chunk := cert[m.Offset:]
	chunk = chunk[:min(len(chunk), s.cfg.MaxData)]
	r := CertReply{Total: uint32(len(cert)), Offset: m.Offset, Bytes: chunk}
	return s.send(TypeCertReply, f.Seq, r.AppendCBOR(s.body[:0]))
}

func (s *Session) data(f Frame) (EndReason, error) {
	var m Data
	if err := m.DecodeCBOR(f.Body); err != nil {
		return s.fail(f.Seq, err)
	}
	switch {
	case s.state != StateReceiving:
		return s.result(f.Seq, CodeState, "no transfer in progress")
	case len(m.Bytes) > s.cfg.MaxData:
		return s.result(f.Seq, CodeTooLarge, "data larger than negotiated")
	case m.Offset > s.next:
		s.stats.OutOfOrder++
		return s.ack(TypeNak, f.Seq)
	case m.Offset < s.next:
		s.stats.Duplicates++
		return s.ack(TypeAck, f.Seq)
	case uint64(m.Offset)+uint64(len(m.Bytes)) > uint64(s.size):
		return s.result(f.Seq, CodeOffset, "data beyond the package size")
	}
	if err := s.t.Write(m.Offset, m.Bytes); err != nil {
		s.t.Abort()
		return s.transferFailed(f.Seq, err)
	}
	s.next += uint32(len(m.Bytes))
	return s.ack(TypeAck, f.Seq)
}

// transferFailed ends the transfer with err's code and reports it.
func (s *Session) transferFailed(seq uint8, err error) (EndReason, error) {
	s.state, s.size, s.next = StateIdle, 0, 0
	s.lastCode, s.lastDetail = codeOf(err)
	return s.result(seq, s.lastCode, s.lastDetail)
}

func (s *Session) ack(t Type, seq uint8) (EndReason, error) {
	a := Ack{Offset: s.next}
	return s.send(t, seq, a.AppendCBOR(s.body[:0]))
}

// fail reports a request that could not be decoded.
func (s *Session) fail(seq uint8, err error) (EndReason, error) {
	c, d := codeOf(err)
	if _, ok := err.(*Error); !ok {
		c = CodeMalformed
	}
	return s.result(seq, c, d)
}

func (s *Session) result(seq uint8, c Code, detail string) (EndReason, error) {
	r := Result{Code: c, Detail: detail}
	return s.send(TypeResult, seq, r.AppendCBOR(s.body[:0]))
}

func (s *Session) send(t Type, seq uint8, body []byte) (EndReason, error) {
	frame := AppendFrame(s.tx[:0], t, seq, body)
	if _, err := s.uart.Write(frame); err != nil {
		return EndLink, err
	}
	return 0, nil
}

// codeOf returns the code and detail of err: those of an *Error, or
// CodeInternal and err's text.
func codeOf(err error) (Code, string) {
	if e, ok := err.(*Error); ok {
		if e == nil {
			return CodeInternal, "nil error" // a typed nil: fail closed
		}
		if e.Code == CodeOK {
			return CodeInternal, e.Detail
		}
		return e.Code, e.Detail
	}
	return CodeInternal, err.Error()
}
