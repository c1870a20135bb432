package secpkg

import (
	"bytes"
	"crypto/sha256"
	"testing"
)

// fuzzSeeds builds a valid package once for the seed corpora.
func fuzzSeeds(f *testing.F) (*testCtx, *pkg, []byte, []byte) {
	c := newCtx(f, SuiteP256)
	p := c.build(600, 256)
	upk := c.signUPK(c.upkMap(p.manifest, RecipientDevice, p.cek))
	file := container(record{1, p.manifest}, record{2, upk}, record{3, p.payload})
	return c, p, upk, file
}

func FuzzContainer(f *testing.F) {
	_, _, _, file := fuzzSeeds(f)
	f.Add(file)
	f.Add(Magic[:])
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseContainer(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		end := c.Payload.Offset + c.Payload.Length
		if c.NumUPKs > MaxUPKs || end != int64(len(b)) || c.Manifest.Length > MaxManifestSize {
			t.Fatalf("accepted container with bad spans: %+v", c)
		}
		for _, s := range c.UPKs[:c.NumUPKs] {
			if s.Offset < 0 || s.Length > MaxUPKSize || s.Offset+s.Length > end {
				t.Fatalf("bad UPK span %+v", s)
			}
		}
	})
}

func FuzzDecodeManifest(f *testing.F) {
	c, p, upk, _ := fuzzSeeds(f)
	f.Add(p.manifest)
	f.Add(upk)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeManifest(b)
		if err == nil {
			if m.PayloadSize == 0 || m.ChunkSize&(m.ChunkSize-1) != 0 || m.Digest != sha256.Sum256(b) {
				t.Fatalf("accepted bad manifest %+v", m)
			}
		}
		VerifyManifest(c.anchors, b)
	})
}

func FuzzDecodeUPK(f *testing.F) {
	c, p, upk, _ := fuzzSeeds(f)
	f.Add(upk)
	f.Add(p.manifest)
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := DecodeUPK(b)
		if err == nil {
			if u.NotBefore > u.NotAfter || (u.Kind == RecipientDevice) != (len(u.DeviceID) > 0) {
				t.Fatalf("accepted bad upk %+v", u)
			}
			u.Unwrap(c.device)
			u.Unwrap(c.classKey)
		}
		VerifyUPK(c.anchors, b)
	})
}

func FuzzDecrypter(f *testing.F) {
	c, p, _, _ := fuzzSeeds(f)
	m, err := VerifyManifest(c.anchors, p.manifest)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(p.payload, uint16(0))
	f.Add(p.payload[:300], uint16(1))
	f.Fuzz(func(t *testing.T, stream []byte, split uint16) {
		d, err := NewDecrypter(&p.cek, m)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, d.MaxChunkLen())
		var out []byte
		ok := true
		for stream != nil {
			n := d.NextChunkLen()
			if n == 0 { // give it whatever is left, as a trailing chunk
				n = len(stream)
				if n == 0 {
					break
				}
			}
			if split&1 == 1 && n > 1 { // present a short chunk sometimes
				n--
			}
			split >>= 1
			n = min(n, len(stream), len(buf))
			chunk := buf[:n]
			copy(chunk, stream)
			stream = stream[n:]
			plain, err := d.Open(chunk[:0], chunk)
			if err != nil {
				ok = false
				break
			}
			out = append(out, plain...)
		}
		if err := d.Finish(); err == nil && (!ok || !bytes.Equal(out, p.plain)) {
			t.Fatal("Finish accepted a stream that is not the payload")
		}
	})
}
