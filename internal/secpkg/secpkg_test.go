package secpkg

import (
	"bytes"
	"errors"
	"testing"
)

// decryptAll feeds the encrypted payload to a Decrypter chunk by chunk.
func decryptAll(t *testing.T, cek [32]byte, m *Manifest, payload []byte) ([]byte, error) {
	t.Helper()
	d, err := NewDecrypter(&cek, m)
	if err != nil {
		return nil, err
	}
	var out []byte
	buf := make([]byte, d.MaxChunkLen())
	for n := d.NextChunkLen(); n > 0; n = d.NextChunkLen() {
		if len(payload) < n {
			n = len(payload)
		}
		chunk := buf[:n]
		copy(chunk, payload[:n])
		payload = payload[n:]
		plain, err := d.Open(chunk[:0], chunk) // in place
		if err != nil {
			return nil, err
		}
		out = append(out, plain...)
	}
	if err := d.Finish(); err != nil {
		return nil, err
	}
	if len(payload) != 0 {
		return nil, ErrTrailingData
	}
	return out, nil
}

func TestValidPackage(t *testing.T) {
	for _, s := range suites {
		t.Run(s.name, func(t *testing.T) {
			c := newCtx(t, s.suite)
			p := c.build(10000, 4096)
			devUPK := c.signUPK(c.upkMap(p.manifest, RecipientDevice, p.cek))
			classUPK := c.signUPK(c.upkMap(p.manifest, RecipientClass, p.cek))
			file := container(record{1, p.manifest}, record{2, devUPK}, record{2, classUPK}, record{3, p.payload})

			ct, err := ParseContainer(bytes.NewReader(file), int64(len(file)))
			if err != nil {
				t.Fatal(err)
			}
			if ct.NumUPKs != 2 || ct.Manifest.Length != int64(len(p.manifest)) || ct.Payload.Length != int64(len(p.payload)) {
				t.Fatalf("container = %+v", ct)
			}
			span := func(sp Span) []byte { return file[sp.Offset : sp.Offset+sp.Length] }
			m, err := VerifyManifest(c.anchors, span(ct.Manifest))
			if err != nil {
				t.Fatal(err)
			}
			if m.Version != "1.2.0" || m.Slot != "primary" || m.SecurityCounter != 7 || m.PayloadSize != 10000 ||
				m.ChunkSize != 4096 || m.NumChunks() != 3 || m.HasLoadAddress || m.SourceFormat != "" ||
				m.SignerKID != KeyID(c.img.pub) || m.Created != c.now {
				t.Errorf("manifest = %+v", m)
			}
			if err := ct.CheckPayload(m); err != nil {
				t.Fatal(err)
			}
			dm, err := DecodeManifest(p.manifest)
			if err != nil || *dm != *m {
				t.Errorf("DecodeManifest = %+v, %v", dm, err)
			}
			for _, tc := range []struct {
				name string
				raw  []byte
				kind RecipientKind
				key  KeyAgreement
			}{
				{"device", span(ct.UPKs[0]), RecipientDevice, c.device},
				{"class", span(ct.UPKs[1]), RecipientClass, c.classKey},
			} {
				u, err := VerifyUPK(c.anchors, tc.raw)
				if err != nil {
					t.Fatalf("%s: %v", tc.name, err)
				}
				if u.Kind != tc.kind || u.SignerKID != KeyID(c.ua.pub) {
					t.Errorf("%s: upk = %+v", tc.name, u)
				}
				if err := u.CheckManifest(m); err != nil {
					t.Fatal(err)
				}
				if err := u.CheckDevice(c.deviceID); err != nil {
					t.Fatal(err)
				}
				if err := u.CheckValidity(c.now); err != nil {
					t.Fatal(err)
				}
				cek, err := u.Unwrap(tc.key)
				if err != nil || cek != p.cek {
					t.Fatalf("%s: Unwrap = %x, %v", tc.name, cek, err)
				}
				plain, err := decryptAll(t, cek, m, span(ct.Payload))
				if err != nil || !bytes.Equal(plain, p.plain) {
					t.Fatalf("%s: decrypt: %v", tc.name, err)
				}
				du, err := DecodeUPK(tc.raw)
				if err != nil || du.ID != u.ID {
					t.Errorf("DecodeUPK = %v", err)
				}
			}
		})
	}
}

func TestOptionalManifestFields(t *testing.T) {
	c := newCtx(t, SuiteEd25519)
	p := c.build(256, 256)
	msg := c.signManifest(p.m.set(11, u(0x08000000)).set(12, tx("elf")).set(-7, arr(u(1), tx("x"))))
	m, err := VerifyManifest(c.anchors, msg)
	if err != nil {
		t.Fatal(err)
	}
	if !m.HasLoadAddress || m.LoadAddress != 0x08000000 || m.SourceFormat != "elf" || m.NumChunks() != 1 {
		t.Errorf("manifest = %+v", m)
	}
}

func TestFieldErrorMessage(t *testing.T) {
	c := newCtx(t, SuiteEd25519)
	p := c.build(256, 256)
	_, err := DecodeManifest(c.signManifest(p.m.set(6, u(0))))
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Key != 6 || !errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %v", err)
	}
	if got, want := err.Error(), "secpkg: manifest: field 6 (payload-size): value out of range"; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
	_, err = DecodeManifest(c.signManifest(p.m.set(9, cmap{{1, i(3)}, {2, u(300)}, {3, bs(make([]byte, 7))}}.enc())))
	if got, want := err.Error(), "secpkg: encryption: field 2 (chunk-size): value out of range"; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
}
