package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sbm-project/sbm/image"
	"github.com/sbm-project/sbm/internal/hostcose"
	"github.com/sbm-project/sbm/trust"
)

// TestPayloadLimitCLI checks the one payload limit (image.MaxPayloadSize,
// 64 MiB) at its boundary in every command that reads an image or a
// package: at the limit, image create, image inspect, upk issue and image
// verify accept it; one byte over, each refuses it with the same message,
// naming its file.
func TestPayloadLimitCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("packages and verifies 64 MiB")
	}
	dir := t.TempDir()
	ctxDir := filepath.Join(dir, "ctx")
	c, err := trust.Init(ctxDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	classKey := filepath.Join(ctxDir, "keys", "class-ka.key")
	sparse := func(name string, size int64) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, size); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const over = "image too large: 67108865 bytes, over the 67108864-byte (64 MiB) limit"

	// At the limit: accepted by all.
	in := sparse("limit.bin", image.MaxPayloadSize)
	pkg := filepath.Join(dir, "limit.pkg")
	for _, args := range [][]string{
		{"image", "create", "--context", ctxDir, "--version", "1.0.0", "--class-upk", "--out", pkg, in},
		{"image", "inspect", pkg},
		{"upk", "issue", "--context", ctxDir, "--package", pkg, "--class", "--out", filepath.Join(dir, "class.upk")},
		{"image", "verify", "--context", ctxDir, "--key", classKey, pkg},
	} {
		if code, _, stderr := runCLI(t, "", args...); code != 0 {
			t.Errorf("%s at the limit: exit %d: %s", strings.Join(args[:2], " "), code, stderr)
		}
	}

	// One byte over: refused by all, with the same message.
	in = sparse("over.bin", image.MaxPayloadSize+1)
	pkg = overLimitPackage(t, c, filepath.Join(dir, "over.pkg"))
	for _, tc := range []struct {
		args []string
		file string
	}{
		{[]string{"image", "create", "--context", ctxDir, "--version", "1.0.0", "--out", filepath.Join(dir, "x.pkg"), in}, in},
		{[]string{"image", "inspect", pkg}, pkg},
		{[]string{"upk", "issue", "--context", ctxDir, "--package", pkg, "--class", "--out", filepath.Join(dir, "x.upk")}, pkg},
		{[]string{"image", "verify", "--context", ctxDir, "--key", classKey, "--extract", filepath.Join(dir, "x.bin"), pkg}, pkg},
		{[]string{"upk", "issue", "--context", ctxDir, "--package", pkg, "--recipients", "-", "--out-dir", filepath.Join(dir, "xd")}, pkg},
	} {
		code, _, stderr := runCLI(t, "", tc.args...)
		if want := fmt.Sprintf("sbm: %s: %s\n", tc.file, over); code != 1 || stderr != want {
			t.Errorf("%s over the limit: exit %d, stderr %q; want exit 1, %q", strings.Join(tc.args[:2], " "), code, stderr, want)
		}
	}
	for _, f := range []string{"x.pkg", "x.upk", "x.bin", "xd"} {
		if _, err := os.Stat(filepath.Join(dir, f)); !os.IsNotExist(err) {
			t.Errorf("%s written for a refused input", f)
		}
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

// overLimitPackage writes, as another tool might, a correctly signed
// package whose manifest states a payload one byte over the limit (the
// payload itself a sparse run of zeros of the right length), and returns
// its path.
func overLimitPackage(t *testing.T, c *trust.Context, path string) string {
	t.Helper()
	const size = image.MaxPayloadSize + 1
	vendor, class := c.VendorID(), c.ClassID()
	enc, err := hostcose.Marshal(map[int]any{
		1: 1, 2: vendor[:], 3: class[:], 4: "1.0.0", 5: 0, 6: size, 7: make([]byte, 32), 8: "primary",
		9: map[int]any{1: 3, 2: 4096, 3: make([]byte, 7)}, 10: 1700000000,
	})
	if err != nil {
		t.Fatal(err)
	}
	signer, err := c.Signer(trust.ImageSigningKey)
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := hostcose.Sign1(signer, hostcose.ContentTypeManifest, enc, c.ImageSigningKeyCert())
	if err != nil {
		t.Fatal(err)
	}
	chunks := (size + 4095) / 4096
	payloadLen := size + 16*chunks
	b, err := (&image.Package{Manifest: manifest, Payload: []byte{}}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	// Patch the empty payload record's length and extend the file to it.
	n := len(b)
	b[n-4], b[n-3], b[n-2], b[n-1] = byte(payloadLen), byte(payloadLen>>8), byte(payloadLen>>16), byte(payloadLen>>24)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, int64(n+payloadLen)); err != nil {
		t.Fatal(err)
	}
	return path
}
