package auditlog

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/sbm-project/sbm/internal/cbor"
	"github.com/sbm-project/sbm/internal/hostcose"
)

func sampleEntries() []*Entry {
	o := orderID("sample")
	return []*Entry{
		{Kind: OrderLoaded, Time: epoch, Order: o, Digest: digest("order"), Quota: 5},
		{Kind: OrderRevoked, Time: epoch, Order: o},
		{Kind: OrderRevoked, Time: epoch, Order: o, Digest: digest("revocation")},
		{Kind: CertificateIssued, Time: epoch, Order: o, Station: station1[:], Device: deviceID(1), Digest: digest("cert"), Count: 1},
		{Kind: UPKIssued, Time: epoch, Order: o, Station: station1[:], Device: deviceID(1), Digest: digest("upk")},
		{Kind: UnitSpoiled, Time: epoch, Order: o, Station: station1[:], Count: 1},
		{Kind: UnitSpoiled, Time: epoch, Order: o, Station: station1[:], Device: deviceID(2), Count: 1 << 40},
		{Kind: DeviceRevoked, Time: epoch, Order: o, Device: deviceID(1)},
		{Kind: DeviceRevoked, Time: epoch, Order: o, Device: deviceID(1), Digest: digest("cert")},
	}
}

func TestEntryRoundTrip(t *testing.T) {
	for _, e := range sampleEntries() {
		t.Run(e.Kind.String(), func(t *testing.T) {
			b := mustMarshal(t, e)
			got, err := ParseEntry(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, e) {
				t.Fatalf("got %+v, want %+v", got, e)
			}
			// The encoding is RFC 8949 core deterministic CBOR: the same
			// bytes as the project's host encoder gives for the same map.
			m := map[int]any{keyKind: uint64(e.Kind), keyTime: uint64(e.Time.Unix()), keyOrder: e.Order[:]}
			if e.Station != nil {
				m[keyStation] = e.Station
			}
			if e.Device != nil {
				m[keyDevice] = e.Device
			}
			if e.Digest != nil {
				m[keyDigest] = e.Digest[:]
			}
			if e.Count != 0 {
				m[keyCount] = e.Count
			}
			if e.Quota != 0 {
				m[keyQuota] = e.Quota
			}
			want, err := hostcose.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, want) {
				t.Fatalf("encoding %x, deterministic CBOR %x", b, want)
			}
		})
	}
}

func TestEntryMarshalRefuses(t *testing.T) {
	o := orderID("x")
	for _, tc := range []struct {
		name string
		e    Entry
	}{
		{"no kind", Entry{Time: epoch, Order: o}},
		{"unknown kind", Entry{Kind: 9, Time: epoch, Order: o}},
		{"loaded without quota", Entry{Kind: OrderLoaded, Time: epoch, Order: o, Digest: digest("o")}},
		{"loaded with device", Entry{Kind: OrderLoaded, Time: epoch, Order: o, Digest: digest("o"), Quota: 1, Device: []byte{1}}},
		{"certificate without count", Entry{Kind: CertificateIssued, Time: epoch, Order: o, Station: []byte{1}, Device: []byte{1}, Digest: digest("c")}},
		{"certificate without device", Entry{Kind: CertificateIssued, Time: epoch, Order: o, Station: []byte{1}, Digest: digest("c"), Count: 1}},
		{"UPK with count", Entry{Kind: UPKIssued, Time: epoch, Order: o, Station: []byte{1}, Device: []byte{1}, Digest: digest("u"), Count: 1}},
		{"spoiled with digest", Entry{Kind: UnitSpoiled, Time: epoch, Order: o, Station: []byte{1}, Count: 1, Digest: digest("u")}},
		{"revocation without device", Entry{Kind: DeviceRevoked, Time: epoch, Order: o}},
		{"revocation with station", Entry{Kind: DeviceRevoked, Time: epoch, Order: o, Station: []byte{1}, Device: []byte{1}}},
		{"revocation with count", Entry{Kind: DeviceRevoked, Time: epoch, Order: o, Device: []byte{1}, Count: 1}},
		{"before 1970", Entry{Kind: OrderRevoked, Time: time.Unix(-1, 0), Order: o}},
		{"long device ID", Entry{Kind: UPKIssued, Time: epoch, Order: o, Station: []byte{1}, Device: make([]byte, 65), Digest: digest("u")}},
	} {
		if _, err := tc.e.MarshalBinary(); !errors.Is(err, ErrEntry) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

func TestParseEntryRefuses(t *testing.T) {
	good := mustMarshal(t, sampleEntries()[0]) // {1: 1, 2: t, 3: order, 6: digest, 8: 5}
	enc := func(f func(b []byte) []byte) []byte { return f(nil) }
	order := orderID("sample")
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"not a map", []byte{0x80}},
		{"trailing byte", append(bytes.Clone(good), 0)},
		{"truncated", good[:len(good)-1]},
		{"keys out of order", enc(func(b []byte) []byte {
			b = cbor.AppendMapHeader(b, 3)
			b = cbor.AppendUint(cbor.AppendUint(b, keyTime), 1)
			b = cbor.AppendUint(cbor.AppendUint(b, keyKind), 2)
			return cbor.AppendBytes(cbor.AppendUint(b, keyOrder), order[:])
		})},
		{"duplicate key", enc(func(b []byte) []byte {
			b = cbor.AppendMapHeader(b, 4)
			b = cbor.AppendUint(cbor.AppendUint(b, keyKind), 2)
			b = cbor.AppendUint(cbor.AppendUint(b, keyTime), 1)
			b = cbor.AppendUint(cbor.AppendUint(b, keyTime), 1)
			return cbor.AppendBytes(cbor.AppendUint(b, keyOrder), order[:])
		})},
		{"unknown key", enc(func(b []byte) []byte {
			b = cbor.AppendMapHeader(b, 4)
			b = cbor.AppendUint(cbor.AppendUint(b, keyKind), 2)
			b = cbor.AppendUint(cbor.AppendUint(b, keyTime), 1)
			b = cbor.AppendBytes(cbor.AppendUint(b, keyOrder), order[:])
			return cbor.AppendUint(cbor.AppendUint(b, 9), 1)
		})},
		{"short order ID", enc(func(b []byte) []byte {
			b = cbor.AppendMapHeader(b, 3)
			b = cbor.AppendUint(cbor.AppendUint(b, keyKind), 2)
			b = cbor.AppendUint(cbor.AppendUint(b, keyTime), 1)
			return cbor.AppendBytes(cbor.AppendUint(b, keyOrder), order[:8])
		})},
		{"non-shortest integer", enc(func(b []byte) []byte {
			b = cbor.AppendMapHeader(b, 3)
			b = cbor.AppendUint(cbor.AppendUint(b, keyKind), 2)
			b = append(cbor.AppendUint(b, keyTime), 0x18, 0x01)
			return cbor.AppendBytes(cbor.AppendUint(b, keyOrder), order[:])
		})},
		{"count 0", enc(func(b []byte) []byte {
			b = cbor.AppendMapHeader(b, 4)
			b = cbor.AppendUint(cbor.AppendUint(b, keyKind), 5)
			b = cbor.AppendUint(cbor.AppendUint(b, keyTime), 1)
			b = cbor.AppendBytes(cbor.AppendUint(b, keyOrder), order[:])
			b = cbor.AppendBytes(cbor.AppendUint(b, keyStation), []byte{1})
			return cbor.AppendUint(cbor.AppendUint(b, keyCount), 0)
		})},
		{"missing field", enc(func(b []byte) []byte {
			b = cbor.AppendMapHeader(b, 3)
			b = cbor.AppendUint(cbor.AppendUint(b, keyKind), 1)
			b = cbor.AppendUint(cbor.AppendUint(b, keyTime), 1)
			return cbor.AppendBytes(cbor.AppendUint(b, keyOrder), order[:])
		})},
		{"too large", make([]byte, MaxEntrySize+1)},
	} {
		if e, err := ParseEntry(tc.b); !errors.Is(err, ErrEntry) {
			t.Errorf("%s: %+v, %v", tc.name, e, err)
		}
	}
}
