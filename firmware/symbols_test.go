package firmware

import (
	"debug/elf"
	"path/filepath"
	"strings"
	"testing"
)

// TestFirmwareLinks reads the symbol tables of the board firmware: the
// Ed25519-only build links no P-256, ECDSA or math/big code, and neither
// build links the FIPS 140-3 self-tests, SHA-3's Keccak or GODEBUG, which
// the toolchain patches of scripts/firmware.sh take out, nor crypto/aes
// or hash/crc32 with their tables (docs/silicon.md, "Sizes"). The build of both suites must show P-256 symbols, so the
// check is known to see what is linked.
func TestFirmwareLinks(t *testing.T) {
	requireFirmwareToolchain(t)
	out := buildBoard(t)
	// The self-tests are closures in the FIPS packages' init functions
	// (crypto/internal/fips140/sha256.init#1$1 and so on): with Enabled a
	// constant false, only CAST's name check is left.
	// hash/crc32's tables and GODEBUG's settings table are replaced by
	// internal/crc and the toolchain patch; crypto/aes and its round
	// tables by internal/smallaes, except that the P-256 build keeps them
	// for ECDSA's signing nonces (crypto/internal/fips140/drbg is
	// CTR_DRBG with AES).
	never := []string{"crypto/internal/fips140/*.init#1$1", "crypto/internal/fips140/sha3.keccakF1600",
		"hash/crc32.", "internal/godebug"}
	for _, tc := range []struct {
		elf          string
		want, absent []string
	}{
		{boardELF, []string{"crypto/internal/fips140/nistec.", "crypto/internal/fips140/ecdsa.", "crypto/internal/fips140/edwards25519.", "internal/smallaes."}, never},
		{boardEd25519ELF, []string{"crypto/internal/fips140/edwards25519.", "internal/smallaes."},
			append([]string{"crypto/internal/fips140/nistec", "crypto/internal/fips140/ecdsa.", "crypto/ecdsa.", "crypto/elliptic.", "math/big.",
				"crypto/internal/fips140/aes.",
				// No interface comparison (internal/errs, the toolchain
				// patches; the P-256 code still has some), no errors.As
				// and no encoding/base64 (docs/silicon.md, "Sizes").
				"runtime.interfaceEqual", "errors.as", "encoding/base64."}, never...)},
	} {
		t.Run(tc.elf, func(t *testing.T) {
			f, err := elf.Open(filepath.Join(out, tc.elf))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			syms, err := f.Symbols()
			if err != nil {
				t.Fatal(err)
			}
			var flash uint64
			for _, s := range f.Sections {
				if s.Flags&elf.SHF_ALLOC != 0 && s.Type == elf.SHT_PROGBITS {
					flash += s.Size
				}
			}
			t.Logf("%s: %d symbols, %d bytes of allocated sections with contents", tc.elf, len(syms), flash)
			// has returns a defined symbol whose name contains p, where
			// a "*" in p stands for any text.
			has := func(p string) string {
				head, tail, star := strings.Cut(p, "*")
				for _, s := range syms {
					if s.Section == elf.SHN_UNDEF || s.Size == 0 {
						continue
					}
					i := strings.Index(s.Name, head)
					if i >= 0 && (!star || strings.Contains(s.Name[i+len(head):], tail)) {
						return s.Name
					}
				}
				return ""
			}
			for _, p := range tc.want {
				if has(p) == "" {
					t.Errorf("no symbol of %s", p)
				}
			}
			for _, p := range tc.absent {
				if n := has(p); n != "" {
					t.Errorf("linked %s (%s)", p, n)
				}
			}
			// Go's P-256 table is read as uint64 limbs: at an address that
			// is not a multiple of 4 the Cortex-M3 faults (the toolchain
			// patch declares it as uint64 words).
			for _, sym := range syms {
				if sym.Name == "crypto/internal/fips140/nistec.p256PrecomputedEmbed" && sym.Value%8 != 0 {
					t.Errorf("P-256 table at %#x, not 8-byte aligned", sym.Value)
				}
			}
		})
	}
}
