package dashboard

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"sync"
	"time"
)

// secretSize is the size of a login token and of a session ID: 256 bits.
const secretSize = 32

// errTooManyTokens refuses a login token while MaxTokens are outstanding.
var errTooManyTokens = errors.New("dashboard: too many outstanding login tokens")

// auth holds the outstanding login tokens and the open sessions, in
// memory. It keeps only SHA-256 hashes of the secrets: the maps are keyed
// by the hash, so a lookup's timing depends on the hash, not on the
// secret, and the stored hash is then compared in constant time.
type auth struct {
	mu       sync.Mutex
	tokens   map[[sha256.Size]byte]entry
	sessions map[[sha256.Size]byte]entry
}

// entry is a token or a session: its hash and its lifetime.
type entry struct {
	hash    [sha256.Size]byte
	created time.Time
	expires time.Time
}

func newAuth() *auth {
	return &auth{tokens: map[[sha256.Size]byte]entry{}, sessions: map[[sha256.Size]byte]entry{}}
}

// newSecret returns a random 256-bit secret, base64url without padding,
// and its hash.
func newSecret() (string, [sha256.Size]byte, error) {
	var b [secretSize]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", [sha256.Size]byte{}, err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), sha256.Sum256(b[:]), nil
}

// hashSecret decodes a secret as newSecret encodes it and hashes it; ok is
// false for anything else.
func hashSecret(s string) (h [sha256.Size]byte, ok bool) {
	if base64.RawURLEncoding.EncodedLen(secretSize) != len(s) {
		return h, false
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != secretSize {
		return h, false
	}
	return sha256.Sum256(b), true
}

// lookup finds the live entry for secret in m, in constant time once the
// map has found a candidate. An expired entry is removed.
func lookup(m map[[sha256.Size]byte]entry, secret string, now time.Time) (entry, bool) {
	h, ok := hashSecret(secret)
	if !ok {
		return entry{}, false
	}
	e, found := m[h]
	if !found || subtle.ConstantTimeCompare(e.hash[:], h[:]) != 1 {
		return entry{}, false
	}
	if !now.Before(e.expires) {
		delete(m, h)
		return entry{}, false
	}
	return e, true
}

// prune removes the expired entries of m and, if it still holds max or
// more, the oldest ones until one more fits (evict) or reports false
// (!evict).
func prune(m map[[sha256.Size]byte]entry, now time.Time, max int, evict bool) bool {
	for h, e := range m {
		if !now.Before(e.expires) {
			delete(m, h)
		}
	}
	for len(m) >= max {
		if !evict {
			return false
		}
		var oldest entry
		first := true
		for _, e := range m {
			if first || e.created.Before(oldest.created) {
				oldest, first = e, false
			}
		}
		delete(m, oldest.hash)
	}
	return true
}

// newToken records a login token valid for ttl.
func (a *auth) newToken(now time.Time, ttl time.Duration, max int) (string, error) {
	tok, h, err := newSecret()
	if err != nil {
		return "", err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !prune(a.tokens, now, max, false) {
		return "", errTooManyTokens
	}
	a.tokens[h] = entry{hash: h, created: now, expires: now.Add(ttl)}
	return tok, nil
}

// redeem consumes a login token: it reports whether the token was
// outstanding and live, and removes it in any case, so it works once.
func (a *auth) redeem(token string, now time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := lookup(a.tokens, token, now)
	if ok {
		delete(a.tokens, e.hash)
	}
	return ok
}

// newSession opens a session valid for ttl and returns its ID, evicting
// the oldest session if max are open.
func (a *auth) newSession(now time.Time, ttl time.Duration, max int) (string, time.Time, error) {
	id, h, err := newSecret()
	if err != nil {
		return "", time.Time{}, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	prune(a.sessions, now, max, true)
	e := entry{hash: h, created: now, expires: now.Add(ttl)}
	a.sessions[h] = e
	return id, e.expires, nil
}

// session reports whether id is an open session.
func (a *auth) session(id string, now time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := lookup(a.sessions, id, now)
	return ok
}

// counts returns the number of outstanding tokens and open sessions,
// expired ones included until they are pruned.
func (a *auth) counts() (tokens, sessions int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.tokens), len(a.sessions)
}
