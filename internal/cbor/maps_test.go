package cbor

import (
	"errors"
	"testing"
)

func TestDecodeMap(t *testing.T) {
	known := func(k uint64, d *Decoder) (bool, error) {
		if k > 2 {
			return false, nil
		}
		_, err := d.Uint()
		return true, err
	}
	tests := []struct {
		hex  string
		seen uint32
		err  error
	}{
		{"a20101020a", 1<<1 | 1<<2, nil},
		{"a201012001", 1 << 1, nil},  // negative key skipped
		{"a10301", 0, ErrUnknownKey}, // unknown critical key
		{"a1616101", 0, ErrMapKey},   // text key
		{"a201010101", 0, ErrDuplicateKey},
		{"a2010120012001", 0, ErrTrailing}, // map of 2 entries followed by more
	}
	for _, tt := range tests {
		seen, err := DecodeMap(unhex(t, tt.hex), 8, known)
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("%s: err = %v, want %v", tt.hex, err, tt.err)
			}
			continue
		}
		if err != nil || seen != tt.seen {
			t.Errorf("%s: seen %b, err %v; want %b", tt.hex, seen, err, tt.seen)
		}
	}
}
