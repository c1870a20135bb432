package apphost

// The bodies of the service host functions. Each checks its pointers
// against the module's memory first (CodeBadPointer), then that the
// services exist (CodeUnavailable), then its values (CodeBadArgument),
// and only then calls the SBM.

func (c *call) bootInfo() int32 {
	out, ok := c.view(c.u32(0), c.u32(1))
	if !ok {
		return -CodeBadPointer
	}
	h := c.h
	h.buf = appendBootInfo(h.buf[:0], h.app, h.hw.ID, h.svc)
	return reply(out, h.buf)
}

func (c *call) certChain() int32 {
	out, ok := c.view(c.u32(0), c.u32(1))
	if !ok {
		return -CodeBadPointer
	}
	if c.h.svc == nil {
		return -CodeUnavailable
	}
	b, err := c.h.svc.CertificateChain(c.h.buf[:0])
	if err != nil {
		return -codeOf(err)
	}
	c.h.buf = b
	return reply(out, b)
}

func (c *call) verifyChain() int32 {
	chain, ok := c.view(c.u32(0), c.u32(1))
	if !ok {
		return -CodeBadPointer
	}
	if c.h.svc == nil {
		return -CodeUnavailable
	}
	now := c.i64(2)
	if len(chain) == 0 || len(chain) > MaxChainSize || now < 0 {
		return -CodeBadArgument
	}
	// The services get a copy, so the application's memory cannot change
	// under them.
	if err := c.h.svc.VerifyChain(append([]byte(nil), chain...), uint64(now)); err != nil {
		return -codeOf(err)
	}
	return 0
}

func (c *call) sign() int32 {
	digest, ok1 := c.view(c.u32(0), 32)
	out, ok2 := c.view(c.u32(1), c.u32(2))
	if !ok1 || !ok2 {
		return -CodeBadPointer
	}
	if c.h.svc == nil {
		return -CodeUnavailable
	}
	var d [32]byte
	copy(d[:], digest)
	b, err := c.h.svc.Sign(c.h.buf[:0], d[:])
	if err != nil {
		return -codeOf(err)
	}
	c.h.buf = b
	return reply(out, b)
}

func (c *call) attest() int32 {
	nonce, ok1 := c.view(c.u32(0), c.u32(1))
	out, ok2 := c.view(c.u32(2), c.u32(3))
	if !ok1 || !ok2 {
		return -CodeBadPointer
	}
	if c.h.svc == nil {
		return -CodeUnavailable
	}
	if len(nonce) < MinNonceSize || len(nonce) > MaxNonceSize {
		return -CodeBadArgument
	}
	b, err := c.h.svc.Attest(c.h.buf[:0], append([]byte(nil), nonce...))
	if err != nil {
		return -codeOf(err)
	}
	c.h.buf = b
	return reply(out, b)
}

func (c *call) tlsSign() int32 {
	th, ok1 := c.view(c.u32(0), c.u32(1))
	out, ok2 := c.view(c.u32(2), c.u32(3))
	if !ok1 || !ok2 {
		return -CodeBadPointer
	}
	if c.h.svc == nil {
		return -CodeUnavailable
	}
	if len(th) != 32 && len(th) != 48 {
		return -CodeBadArgument
	}
	b, err := c.h.svc.TLSSign(c.h.buf[:0], append([]byte(nil), th...))
	if err != nil {
		return -codeOf(err)
	}
	c.h.buf = b
	return reply(out, b)
}

func (c *call) report() int32 {
	nonce, ok1 := c.view(c.u32(0), c.u32(1))
	out, ok2 := c.view(c.u32(2), c.u32(3))
	if !ok1 || !ok2 {
		return -CodeBadPointer
	}
	if c.h.svc == nil {
		return -CodeUnavailable
	}
	if len(nonce) != 0 && (len(nonce) < MinNonceSize || len(nonce) > MaxReportNonceSize) {
		return -CodeBadArgument
	}
	b, err := c.h.svc.Report(c.h.buf[:0], append([]byte(nil), nonce...))
	if err != nil {
		return -codeOf(err)
	}
	c.h.buf = b
	return reply(out, b)
}

func (c *call) stagingSize() int32 {
	if c.h.svc == nil {
		return -CodeUnavailable
	}
	n := c.h.svc.StagingSize()
	if n > 1<<31-1 {
		n = 1<<31 - 1
	}
	return int32(n)
}

func (c *call) stagingErase() int32 {
	if c.h.svc == nil {
		return -CodeUnavailable
	}
	if err := c.h.svc.StagingErase(); err != nil {
		return -codeOf(err)
	}
	return 0
}

// stagingRange checks [off, off+n) against the staging slot.
func (c *call) stagingRange(off, n uint32) bool {
	return uint64(off)+uint64(n) <= uint64(c.h.svc.StagingSize())
}

func (c *call) stagingWrite() int32 { return c.stagingIO(true) }

func (c *call) stagingRead() int32 { return c.stagingIO(false) }

// stagingIO serves staging_write and staging_read (off, ptr, len): the
// module's buffer is checked, then the range against the staging slot.
func (c *call) stagingIO(write bool) int32 {
	off := c.u32(0)
	p, ok := c.view(c.u32(1), c.u32(2))
	if !ok {
		return -CodeBadPointer
	}
	if c.h.svc == nil {
		return -CodeUnavailable
	}
	if !c.stagingRange(off, uint32(len(p))) {
		return -CodeBadArgument
	}
	var err error
	if write {
		err = c.h.svc.StagingWrite(off, p)
	} else {
		err = c.h.svc.StagingRead(off, p)
	}
	if err != nil {
		return -codeOf(err)
	}
	return 0
}

func (c *call) requestUpdate() int32 {
	if c.h.svc == nil {
		return -CodeUnavailable
	}
	c.h.closeFetches()
	if err := c.h.svc.RequestUpdate(); err != nil {
		return -codeOf(err)
	}
	return 0
}

func (c *call) requestRecovery() int32 {
	if c.h.svc == nil {
		return -CodeUnavailable
	}
	c.h.closeFetches()
	c.h.svc.RequestRecovery()
	return 0
}
