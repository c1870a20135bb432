package sdk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/sbm-project/sbm/internal/secpkg"
)

// container builds a package container of the given records (type, body).
func container(recs ...[]byte) []byte {
	b := append([]byte(nil), secpkg.Magic[:]...)
	for _, r := range recs {
		var h [8]byte
		h[0] = r[0]
		binary.LittleEndian.PutUint32(h[4:], uint32(len(r)-1))
		b = append(append(b, h[:]...), r[1:]...)
	}
	return b
}

func rec(typ byte, body string) []byte { return append([]byte{typ}, body...) }

// TestSpliceUPK: the UPK records of a package are replaced by the given
// one, whatever the write sizes; the result parses as a container with
// exactly that UPK; what is not a package is refused.
func TestSpliceUPK(t *testing.T) {
	upk := []byte("device upk bytes")
	want := container(rec(1, "manifest"), rec(2, string(upk)), rec(3, "payload chunks"))
	for name, in := range map[string][]byte{
		"no upk":     container(rec(1, "manifest"), rec(3, "payload chunks")),
		"escrow upk": container(rec(1, "manifest"), rec(2, "escrow"), rec(3, "payload chunks")),
		"two upks":   container(rec(1, "manifest"), rec(2, "escrow"), rec(2, ""), rec(3, "payload chunks")),
	} {
		for _, chunk := range []int{1, 3, 8, 9, 1 << 20} {
			var out bytes.Buffer
			s := SpliceUPK(&out, upk)
			for off := 0; off < len(in); off += chunk {
				if n, err := s.Write(in[off:min(off+chunk, len(in))]); err != nil || n != min(chunk, len(in)-off) {
					t.Fatalf("%s, %d-byte writes: %d, %v", name, chunk, n, err)
				}
			}
			if !s.Done() || !bytes.Equal(out.Bytes(), want) {
				t.Fatalf("%s, %d-byte writes: done %v\n got %x\nwant %x", name, chunk, s.Done(), out.Bytes(), want)
			}
			c, err := secpkg.ParseContainer(bytes.NewReader(out.Bytes()), int64(out.Len()))
			if err != nil || c.NumUPKs != 1 {
				t.Fatalf("%s: %v, %d upks", name, err, c.NumUPKs)
			}
		}
	}
	for name, in := range map[string][]byte{
		"not a package":  []byte("<html>not found</html>"),
		"unknown record": container(rec(1, "m"), rec(7, "x"), rec(3, "p")),
	} {
		var out bytes.Buffer
		_, err := SpliceUPK(&out, upk).Write(in)
		if !errors.Is(err, ErrNotPackage) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Cut short before the payload: not done.
	s := SpliceUPK(&bytes.Buffer{}, upk)
	full := container(rec(1, "manifest"), rec(3, "payload"))
	s.Write(full[:20])
	if s.Done() {
		t.Error("a truncated package is done")
	}
	// A failing writer's error comes back.
	if _, err := SpliceUPK(failWriter{}, upk).Write(full); !errors.Is(err, errFull) {
		t.Errorf("failing writer: %v", err)
	}
}

var errFull = errors.New("staging full")

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errFull }
