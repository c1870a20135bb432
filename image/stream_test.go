package image

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sbm-project/sbm/internal/firmware"
	"github.com/sbm-project/sbm/trust"
)

// memWriterAt is an in-memory io.WriterAt.
type memWriterAt struct{ b []byte }

func (m *memWriterAt) WriteAt(p []byte, off int64) (int, error) {
	if end := off + int64(len(p)); end > int64(len(m.b)) {
		m.b = append(m.b, make([]byte, end-int64(len(m.b)))...)
	}
	return copy(m.b[off:], p), nil
}

// TestCreateToMatchesCreate checks that the streaming CreateTo writes
// byte for byte the container Create builds in memory, for both suites,
// with and without a class UPK, with and without a load address, and that
// the result verifies through Open and VerifyFile.
func TestCreateToMatchesCreate(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, suite := range []trust.Suite{trust.SuiteP256, trust.SuiteEd25519} {
		f := newFixture(t, suite, 10)
		for _, tc := range []struct {
			name     string
			size     int
			class    bool
			chunk    int
			loadAddr bool
		}{
			{"one byte", 1, false, 0, false},
			{"one chunk", 4096, true, 0, false},
			{"partial last chunk", 10000, true, 256, true},
			{"big chunks", 200000, false, 65536, false},
		} {
			t.Run(string(suite)+"/"+tc.name, func(t *testing.T) {
				data := make([]byte, tc.size)
				for i := range data {
					data[i] = byte(i * 13)
				}
				img := &firmware.Image{Data: data, Format: firmware.FormatBinary, LoadAddress: 0x08000000, HasLoadAddress: tc.loadAddr}
				opts := func(seed uint64) *CreateOptions {
					return &CreateOptions{Version: "1.2.3", SecurityCounter: 7, ChunkSize: tc.chunk, ClassUPK: tc.class,
						Now: func() time.Time { return now }, Rand: seeded(fmt.Sprint("stream ", seed))}
				}
				mem, err := Create(f.ctx, img, opts(1))
				if err != nil {
					t.Fatal(err)
				}
				want, err := mem.Package.MarshalBinary()
				if err != nil {
					t.Fatal(err)
				}
				var out memWriterAt
				src := &Source{R: bytes.NewReader(data), Size: int64(len(data)), Format: img.Format, LoadAddress: img.LoadAddress, HasLoadAddress: img.HasLoadAddress}
				res, err := CreateTo(f.ctx, src, &out, opts(1))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(out.b, want) {
					t.Fatalf("CreateTo wrote %d bytes that differ from Create's %d", len(out.b), len(want))
				}
				if res.Size != int64(len(want)) || mem.Size != int64(len(want)) {
					t.Errorf("Size = %d (CreateTo), %d (Create), want %d", res.Size, mem.Size, len(want))
				}
				if res.PayloadDigest != mem.PayloadDigest || res.ManifestDigest != mem.ManifestDigest || !bytes.Equal(res.Escrow, mem.Escrow) {
					t.Error("CreateTo's digests or escrow UPK differ from Create's")
				}
				pf, err := Open(bytes.NewReader(out.b), int64(len(out.b)))
				if err != nil {
					t.Fatal(err)
				}
				var plain bytes.Buffer
				key, _ := f.ctx.EscrowKey()
				if _, err := VerifyFile(f.ctx, pf, &VerifyOptions{Key: key, Escrow: true, UPK: res.Escrow, Plaintext: &plain}); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(plain.Bytes(), data) {
					t.Error("VerifyFile's plaintext differs from the input")
				}
			})
		}
	}
}

// TestCreateToShortInput checks that an input shorter than its stated size
// (a file that shrank while it was read) is an error, not a package.
func TestCreateToShortInput(t *testing.T) {
	f := newFixture(t, trust.SuiteEd25519, 10)
	var out memWriterAt
	_, err := CreateTo(f.ctx, &Source{R: bytes.NewReader(make([]byte, 5000)), Size: 9000, Format: firmware.FormatBinary}, &out, &CreateOptions{Version: "1.0.0"})
	if err == nil || err.Error() != "input ended after fewer than its 9000 bytes (did it change while it was read?)" {
		t.Fatalf("err = %v", err)
	}
}

// TestVerifyFileDetects checks that the streaming verifier refuses what
// the in-memory one refuses: a flipped payload byte and a cut payload.
func TestVerifyFileDetects(t *testing.T) {
	f := newFixture(t, trust.SuiteP256, 20000)
	enc, _ := f.pkg.MarshalBinary()
	for _, tc := range []struct {
		name string
		pkg  []byte
	}{
		{"flipped last byte", append(append([]byte(nil), enc[:len(enc)-1]...), enc[len(enc)-1]^1)},
		{"flipped first payload byte", func() []byte {
			b := append([]byte(nil), enc...)
			b[len(b)-len(f.pkg.Payload)] ^= 0x80
			return b
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pf, err := Open(bytes.NewReader(tc.pkg), int64(len(tc.pkg)))
			if err != nil {
				t.Fatal(err)
			}
			var plain bytes.Buffer
			_, err = VerifyFile(f.ctx, pf, &VerifyOptions{Key: f.dev, UPK: f.upk, Plaintext: &plain})
			p, _ := Parse(tc.pkg)
			_, err2 := Verify(f.ctx, p, &VerifyOptions{Key: f.dev, UPK: f.upk})
			if err == nil || err2 == nil || err.Error() != err2.Error() {
				t.Fatalf("VerifyFile: %v; Verify: %v", err, err2)
			}
		})
	}
}

// TestPayloadLimit checks the host tools' payload limit at its boundary:
// MaxPayloadSize is accepted by CreateTo, Open, VerifyFile, InspectFile and
// RecoverCEK, and one byte more is refused by each with the same message.
// The packages are streamed to files, so the test needs little memory.
func TestPayloadLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("writes two 64 MiB packages")
	}
	f := newFixture(t, trust.SuiteEd25519, 10)
	dir := t.TempDir()
	const wantMsg = "image too large: 67108865 bytes, over the 67108864-byte (64 MiB) limit"
	if err := firmware.CheckImageSize(MaxPayloadSize + 1); err == nil || err.Error() != wantMsg {
		t.Fatalf("CheckImageSize(limit+1) = %v", err)
	}
	for _, size := range []int64{MaxPayloadSize, MaxPayloadSize + 1} {
		over := size > MaxPayloadSize
		path := filepath.Join(dir, "p.pkg")
		out, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		src := &Source{R: io.LimitReader(zeros{}, size), Size: size, Format: firmware.FormatBinary}
		opts := &CreateOptions{Version: "1.0.0", ClassUPK: true}
		_, err = CreateTo(f.ctx, src, out, opts)
		checkLimitErr(t, "CreateTo", size, err)
		if over {
			// Build the over-limit package past CreateTo's check, as
			// another tool might, to see the readers refuse it.
			b, err := newBuilder(f.ctx, &Source{Size: MaxPayloadSize, Format: firmware.FormatBinary}, opts)
			if err != nil {
				t.Fatal(err)
			}
			b.src = src
			if _, err := out.Seek(0, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			res, err := b.finish([32]byte{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			out.Write(containerHeader(res.Package.Manifest, res.Package.UPKs, b.encryptedSize()))
			if _, err := b.seal(src.R, out); err != nil {
				t.Fatal(err)
			}
		}
		fi, _ := out.Stat()
		_, err = Open(out, fi.Size())
		checkLimitErr(t, "Open", size, err)
		pf, err := openFile(out, fi.Size())
		if err != nil {
			t.Fatal(err)
		}
		_, err = InspectFile(pf)
		checkLimitErr(t, "InspectFile", size, err)
		_, err = RecoverCEK(f.ctx, pf.Records())
		checkLimitErr(t, "RecoverCEK", size, err)
		key, _ := f.ctx.ClassKey()
		_, err = VerifyFile(f.ctx, pf, &VerifyOptions{Key: key})
		if !over && err != nil {
			t.Errorf("VerifyFile at the limit: %v", err)
		}
		if over {
			checkLimitErr(t, "VerifyFile", size, err)
		}
		out.Close()
	}
}

// checkLimitErr checks err of step for a payload of size bytes: nil at the
// limit, the limit's message above it.
func checkLimitErr(t *testing.T, step string, size int64, err error) {
	t.Helper()
	const wantMsg = "image too large: 67108865 bytes, over the 67108864-byte (64 MiB) limit"
	if size <= MaxPayloadSize {
		if err != nil {
			t.Errorf("%s, %d bytes: %v", step, size, err)
		}
		return
	}
	if err == nil || err.Error() != wantMsg || !errors.Is(err, firmware.ErrTooLarge) {
		t.Errorf("%s, %d bytes: err = %v, want %q", step, size, err, wantMsg)
	}
}

// zeros is an endless reader of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }
