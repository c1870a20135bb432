package cbor

import "bytes"

// MaxMapKeys is the number of keys a KeySet can hold, and so the largest
// map whose keys can be checked for uniqueness with one.
const MaxMapKeys = 32

// A KeySet detects duplicate map keys in bounded memory. It compares keys by
// their encoded bytes, which is exact because the decoder only accepts
// preferred serialization. The zero value is an empty set.
type KeySet struct {
	keys [MaxMapKeys][]byte
	n    int
}

// Add records the encoded key raw. It returns ErrDuplicateKey if raw was
// already added and ErrTooLarge if the set is full.
func (s *KeySet) Add(raw []byte) error {
	for i := 0; i < s.n; i++ {
		if bytes.Equal(s.keys[i], raw) {
			return ErrDuplicateKey
		}
	}
	if s.n == len(s.keys) {
		return ErrTooLarge
	}
	s.keys[s.n] = raw
	s.n++
	return nil
}
