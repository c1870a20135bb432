package vmcu

import (
	"sync"
	"time"
)

// pacer paces one direction of a UART at its line rate with a token
// bucket kept as a deadline: every chunk of n bytes moves the deadline by
// n byte-times (10 bits per byte: start, 8 data, stop) from the previous
// deadline, not from the time the caller woke up, so oversleeping does not
// accumulate into drift. After an idle period of more than pacerBurst the
// deadline restarts from now, so a sender cannot save up more than
// pacerBurst of line time.
type pacer struct {
	mu   sync.Mutex
	baud int
	next time.Time
}

const pacerBurst = 25 * time.Millisecond

// reserve schedules n bytes and returns the time by which they have been
// shifted out. It returns the zero time when pacing is off.
func (p *pacer) reserve(n int, now time.Time) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.baud <= 0 {
		return time.Time{}
	}
	if p.next.Before(now.Add(-pacerBurst)) {
		p.next = now
	}
	p.next = p.next.Add(time.Duration(n) * 10 * time.Second / time.Duration(p.baud))
	return p.next
}

// chunk returns how many bytes to move at a time: about 5 ms of line time,
// or 4096 bytes when pacing is off.
func (p *pacer) chunk() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.baud <= 0 {
		return 4096
	}
	return max(1, min(4096, p.baud/10/200))
}

func (p *pacer) setBaud(baud int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.baud = baud
	p.next = time.Time{}
}

// sleepUntil waits until t or until stop is closed; it reports whether it
// reached t.
func sleepUntil(t time.Time, stop <-chan struct{}) bool {
	d := time.Until(t)
	if d <= 0 {
		return true
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-stop:
		return false
	}
}
