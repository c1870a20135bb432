package order

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/sbm-project/sbm/trust"
)

func TestSignVerify(t *testing.T) {
	for _, suite := range []trust.Suite{trust.SuiteP256, trust.SuiteEd25519} {
		t.Run(string(suite), func(t *testing.T) {
			c, err := trust.Init(filepath.Join(t.TempDir(), "ctx"), &trust.InitOptions{Suite: suite})
			if err != nil {
				t.Fatal(err)
			}
			other, err := trust.Init(filepath.Join(t.TempDir(), "other"), &trust.InitOptions{Suite: suite})
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			o := New(c, 5, now.Add(-time.Minute), now.Add(time.Hour))
			o.Stations = [][32]byte{{1}, {2}}
			o.Release = [32]byte{7}
			o.Lines = map[string]uint64{"a": 2, "b": 3}
			signed, err := Sign(c, o)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Verify(c, signed, now)
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != o.ID || got.Count != 5 || !got.NotAfter.Equal(o.NotAfter) || len(got.Stations) != 2 ||
				!got.AllowsStation([32]byte{2}) || got.AllowsStation([32]byte{3}) || got.Release != o.Release || got.Lines["b"] != 3 {
				t.Fatalf("order read back as %+v", got)
			}

			foreign, err := Sign(other, New(other, 5, now.Add(-time.Minute), now.Add(time.Hour)))
			if err != nil {
				t.Fatal(err)
			}
			flipped := append([]byte(nil), signed...)
			flipped[len(flipped)-3] ^= 1
			tests := []struct {
				name   string
				signed []byte
				now    time.Time
				want   error
			}{
				{"expired", signed, now.Add(2 * time.Hour), ErrExpired},
				{"not yet valid", signed, now.Add(-time.Hour), ErrNotYetValid},
				{"foreign-signed", foreign, now, ErrSignature},
				{"flipped signature", flipped, now, ErrSignature},
				{"truncated", signed[:len(signed)-1], now, ErrMalformed},
				{"not an order", []byte("hello"), now, ErrMalformed},
			}
			for _, tt := range tests {
				if _, err := Verify(c, tt.signed, tt.now); !errors.Is(err, tt.want) {
					t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
				}
			}
			// Another product of the same root: a context cannot have one,
			// so check the comparison on a re-signed order.
			o2 := New(c, 1, now.Add(-time.Minute), now.Add(time.Hour))
			o2.ClassID = trust.NewUUID()
			s2, err := Sign(c, o2)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Verify(c, s2, now); !errors.Is(err, ErrProduct) {
				t.Errorf("other class: %v", err)
			}
		})
	}
}

func TestSignRefuses(t *testing.T) {
	c, err := trust.Init(filepath.Join(t.TempDir(), "ctx"), nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tests := []struct {
		name string
		o    *Order
	}{
		{"count 0", New(c, 0, now, now.Add(time.Hour))},
		{"empty validity", New(c, 1, now, now)},
		{"quotas over the count", &Order{Count: 3, NotBefore: now, NotAfter: now.Add(time.Hour), Lines: map[string]uint64{"a": 2, "b": 2}}},
	}
	for _, tt := range tests {
		if _, err := Sign(c, tt.o); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}
