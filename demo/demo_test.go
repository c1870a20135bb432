package demo

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestDemo runs the whole demo — the README's main command — and checks
// that every step behaved as expected and that it left nothing behind.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo builds WebAssembly applications (run without -short)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	var out bytes.Buffer
	keep := t.TempDir()
	if err := Run(ctx, &Options{Out: &out, Keep: keep}); err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"openssl verify", "token verified", "installed 2.0.0", "order exhausted", "the OEM audits the log offline",
		"updated 1, failed 0",
		"decryption failed", "downgrade", "not the recipient",
		"below the anti-rollback fuse 2", "record not authentic", "2.0.0 boots verified again", "debug port locked",
		"Every step behaved as expected",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("narration lacks %q", want)
		}
	}
	for _, f := range []string{"context/context.toml", "device/flash.bin", "device.crt", "app-2.0.0.pkg"} {
		if _, err := os.Stat(keep + "/" + f); err != nil {
			t.Errorf("--keep: %v", err)
		}
	}
}

func TestKeepMustBeEmpty(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(dir+"/x", []byte("mine"), 0o644)
	if err := Run(context.Background(), &Options{Keep: dir}); err == nil {
		t.Fatal("the demo used a non-empty --keep directory")
	}
}
