#!/usr/bin/env bash
# Builds the SBM as Cortex-M firmware with TinyGo and boots it under QEMU
# (docs/silicon.md, issue 13). One command on a fresh Debian 12 machine:
#
#     ./scripts/firmware.sh            # install, build, print sizes, boot under QEMU
#     ./scripts/firmware.sh --no-qemu  # install and build only
#     ./scripts/firmware.sh --test     # also run the board's end-to-end tests
#                                      # (provision, sbm program, native app,
#                                      # refusals, the 256 KiB measurement)
#
# It installs what it needs and caches it between runs in
# ${SBM_FIRMWARE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sbm-firmware}:
# Debian's LLVM/Clang/LLD 16, picolibc and QEMU (apt), the Go toolchain
# TinyGo accepts (through the Go module proxy), and TinyGo itself (module
# proxy source, built against Debian's LLVM). The firmware is built from a
# generated module in the cache that holds only the device-side packages
# with "go 1.24" in its go.mod, so the repository's go.mod (go 1.26.8) is
# untouched. The ELFs are written to $SBM_FIRMWARE_OUT (default: the
# cache's out/ directory); SBM_FIRMWARE_VARIANTS="full" builds only the
# whole SBM (default: full ed25519 p256 board board-ed25519: the self-check
# builds, then the board firmware with both suites and with Ed25519 only,
# tag sbm_ed25519only); SBM_FIRMWARE_BOARDS="mps2-an385 mps2-an505" adds
# the Cortex-M33 board (default: mps2-an385; board* variants are AN385 only).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

tinygo_version=0.37.0
go_version=go1.24.13 # TinyGo 0.37 accepts Go 1.19 to 1.24
llvm=16
cache=${SBM_FIRMWARE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sbm-firmware}
out=${SBM_FIRMWARE_OUT:-$cache/out}
qemu=1
e2e=0
for arg in "$@"; do
	case $arg in
	--no-qemu) qemu=0 ;;
	--test) e2e=1 ;;
	*) echo "usage: $0 [--no-qemu] [--test]" >&2; exit 2 ;;
	esac
done
mkdir -p "$cache" "$out"
hostgo=$(command -v go) # the repository's toolchain, for go list below

# 1. Debian packages. apt-get update runs once per cache, and only when a
# package is missing.
pkgs=(llvm-$llvm-dev clang-$llvm lld-$llvm libclang-$llvm-dev
	picolibc-arm-none-eabi gcc-arm-none-eabi qemu-system-arm)
need=()
for p in "${pkgs[@]}"; do
	dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if ((${#need[@]})); then
	echo "== apt-get install ${need[*]}"
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO="sudo"
	if [ ! -e "$cache/apt-updated" ]; then
		$SUDO apt-get update -qq
		touch "$cache/apt-updated"
	fi
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# 2. The Go toolchain TinyGo accepts, downloaded by the go command.
goroot=$(GOTOOLCHAIN=$go_version go env GOROOT)
export PATH="$goroot/bin:/usr/lib/llvm-$llvm/bin:$PATH" GOTOOLCHAIN=local
unset GOROOT
echo "== $(go version)"

# 3. TinyGo from the module proxy, built with the llvm16 tag. The module zip
# lacks TinyGo's git submodules: src/net is not needed (an empty directory),
# compiler-rt and picolibc are replaced by Debian's libgcc and picolibc in
# the target (step 4). The runtime is patched so that the MPS2 boards print
# over semihosting, and Go's crypto/internal/fips140 is overlaid with a
# copy whose Enabled is the constant false: the firmware has no GODEBUG, so
# FIPS 140-3 mode is off at run time anyway, and as a constant it takes the
# module's start-up self-tests (CASTs) out of the link; and
# crypto/internal/fips140hash.Unwrap, which only unwraps crypto/sha3's
# hashes for the FIPS service indicator, returns its argument, so that
# crypto/hkdf and crypto/hmac stop making SHA-3 reachable (11 KB of
# Keccak). Neither fips140 nor crypto/internal/fips140only (whose Enabled
# becomes the constant false) reads GODEBUG: the firmware has no
# environment, and internal/godebug with its table of every setting is
# 2.6 KB. Two interface comparisons are replaced: crypto/ecdh compares
# curves by their concrete types and pointers (the same test), and
# crypto/internal/fips140/hmac.New drops its check that the hash
# constructor returned two distinct values (the firmware's is
# sha256.New): in TinyGo an interface comparison is the reflection-based
# runtime.interfaceEqual, 3.5 KB with what it needs, and the device code
# has none (internal/errs, internal/devicerule). $tinygo/sbm-patches
# names the patch level; another level rebuilds.
tinygo=$cache/tinygo-$tinygo_version
patches=9 # 1, 8: semihosting putchar; 2: constant fips140.Enabled; 3: fips140hash without SHA-3; 4-5: no GODEBUG; 6-7: no interface comparisons; 9: aligned P-256 table
if [ ! -x "$tinygo/bin/tinygo" ] || [ "$(cat "$tinygo/sbm-patches" 2>/dev/null)" != "$patches" ]; then
	echo "== building TinyGo $tinygo_version (about 2 minutes)"
	src=$(cd "$cache" && go mod download -json "github.com/tinygo-org/tinygo@v$tinygo_version" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[ -d "$src" ] || { echo "go mod download of TinyGo failed" >&2; exit 1; }
	rm -rf "$tinygo.tmp"
	cp -r "$src" "$tinygo.tmp"
	chmod -R u+w "$tinygo.tmp"
	mkdir -p "$tinygo.tmp/src/net"
	rt=$tinygo.tmp/src/runtime
	python3 - "$rt/runtime_cortexm_qemu.go" <<-'EOF'
		import sys
		p = sys.argv[1]
		s = open(p).read()
		old = "func putchar(c byte) {\n\tstdoutWrite.Set(uint8(c))\n}"
		new = ("func putchar(c byte) {\n\tif mps2 {\n"
		       "\t\t// sbm firmware.sh: console over semihosting (SYS_WRITEC) on the MPS2 boards,\n"
		       "\t\t// from a global so that printing allocates nothing (the HardFault\n"
		       "\t\t// handler prints, and may not allocate).\n"
		       "\t\tputcharByte = c\n"
		       "\t\tarm.SemihostingCall(arm.SemihostingWriteByte, uintptr(unsafe.Pointer(&putcharByte)))\n"
		       "\t\treturn\n\t}\n\tstdoutWrite.Set(uint8(c))\n}\n\nvar putcharByte byte")
		assert old in s, "runtime_cortexm_qemu.go: putchar not found"
		open(p, "w").write(s.replace(old, new))
	EOF
	printf '//go:build cortexm && qemu && mps2\n\npackage runtime\n\nconst mps2 = true\n' >"$rt/runtime_cortexm_qemu_mps2.go"
	printf '//go:build cortexm && qemu && !mps2\n\npackage runtime\n\nconst mps2 = false\n' >"$rt/runtime_cortexm_qemu_nomps2.go"
	fips=$tinygo.tmp/src/crypto/internal/fips140
	mkdir -p "$fips"
	for f in "$goroot"/src/crypto/internal/fips140/*.go; do
		case $f in *_test.go) ;; *) cp "$f" "$fips/" ;; esac
	done
	chmod u+w "$fips"/*.go
	python3 - "$fips/fips140.go" "$tinygo.tmp/loader/goroot.go" <<-'EOF'
		import re, sys
		p = sys.argv[1]
		s = open(p).read()
		new = ("// sbm firmware.sh: FIPS 140-3 mode cannot be enabled on the firmware\n"
		       "// (it has no GODEBUG), so Enabled is a constant and the self-tests\n"
		       "// are compiled out.\n"
		       "const Enabled = false\n\nconst debug = false\n")
		s, n = re.subn(r"var Enabled bool\n.*?\nfunc init\(\) \{\n.*?\n\}\n", new, s, flags=re.S)
		assert n == 1, "fips140.go: Enabled and init not found"
		old = '\t"crypto/internal/fips140deps/godebug"\n'
		assert old in s, "fips140.go: godebug import not found"
		open(p, "w").write(s.replace(old, ""))
		p = p.replace("fips140.go", "cast.go")
		s = open(p).read()
		new = 'var failfipscast = "" // sbm firmware.sh: no GODEBUG\n'
		s, n = re.subn(r'var failfipscast = godebug.Value\("#failfipscast"\)\n', new, s)
		assert n == 1 and old in s, "cast.go: failfipscast not found"
		open(p, "w").write(s.replace(old, ""))
		p = sys.argv[2]
		s = open(p).read()
		old = 'paths["crypto/internal/boring/sig/"] = false\n'
		assert old in s, "loader/goroot.go: crypto overrides not found"
		open(p, "w").write(s.replace(old, old + '\t\tpaths["crypto/internal/fips140/"] = true\n'
		                             '\t\tpaths["crypto/internal/fips140hash/"] = false\n'
		                             '\t\tpaths["crypto/internal/fips140only/"] = false\n'
		                             '\t\tpaths["crypto/internal/fips140/hmac/"] = false\n'
		                             '\t\tpaths["crypto/ecdh/"] = false\n'
		                             '\t\tpaths["crypto/internal/fips140/nistec/"] = false\n'))
	EOF
	for d in crypto/ecdh crypto/internal/fips140/hmac; do
		mkdir -p "$tinygo.tmp/src/$d"
		for f in "$goroot/src/$d"/*.go; do
			case $f in *_test.go) ;; *) cp "$f" "$tinygo.tmp/src/$d/" ;; esac
		done
		chmod u+w "$tinygo.tmp/src/$d"/*.go
	done
	python3 - "$tinygo.tmp/src" <<-'EOF'
		import sys
		src = sys.argv[1]
		p = src + "/crypto/ecdh/ecdh.go"
		s = open(p).read()
		for old, new, n in [("k.curve == xx.curve", "sameCurve(k.curve, xx.curve)", 2),
		                    ("k.curve != remote.curve", "!sameCurve(k.curve, remote.curve)", 1)]:
		    assert s.count(old) == n, "ecdh.go: " + old
		    s = s.replace(old, new)
		s += ("\n// sameCurve (sbm firmware.sh) compares curves without an interface\n"
		      "// comparison, which is reflection-based in TinyGo.\n"
		      "func sameCurve(a, b Curve) bool {\n"
		      "\tswitch x := a.(type) {\n"
		      "\tcase *x25519Curve:\n"
		      "\t\t_, ok := b.(*x25519Curve)\n"
		      "\t\treturn ok\n"
		      "\tcase *nistCurve:\n"
		      "\t\ty, ok := b.(*nistCurve)\n"
		      "\t\treturn ok && x == y\n"
		      "\t}\n"
		      "\treturn false\n}\n")
		open(p, "w").write(s)
		p = src + "/crypto/internal/fips140/hmac/hmac.go"
		s = open(p).read()
		start = s.index("\tunique := true\n")
		end = s.index("\tblocksize := hm.inner.BlockSize()\n")
		assert "hash generation function does not produce unique values" in s[start:end], "hmac.go: unique check not found"
		s = s[:start] + ("\t// sbm firmware.sh: the check that h returned two distinct values\n"
		                 "\t// (an interface comparison) is left out.\n") + s[end:]
		open(p, "w").write(s)
	EOF
	# Go's P-256 base-point table is a [...]byte that crypto/internal/
	# fips140/nistec reads as uint64 limbs through an unsafe cast; gc aligns
	# it, TinyGo gives a byte array alignment 1, and where the linker puts
	# it at an address that is not a multiple of 4 the Cortex-M3 faults
	# (unaligned LDRD) at the first P-256 base-point multiplication. The
	# copy declares the same bytes as little-endian uint64 words.
	nist=crypto/internal/fips140/nistec
	rm -rf "$tinygo.tmp/src/$nist"
	cp -r "$goroot/src/$nist" "$tinygo.tmp/src/$nist"
	chmod -R u+w "$tinygo.tmp/src/$nist"
	find "$tinygo.tmp/src/$nist" -name '*_test.go' -delete
	python3 - "$tinygo.tmp/src/$nist/p256_table.go" <<-'EOF'
		import re, struct, sys
		p = sys.argv[1]
		s = open(p).read()
		m = re.search(r"var p256PrecomputedEmbed = \[\.\.\.\]byte\{([^}]*)\}", s)
		assert m, "p256_table.go: p256PrecomputedEmbed not found"
		b = bytes(int(x, 0) for x in m.group(1).split(","))
		assert len(b) % 8 == 0
		w = struct.unpack("<%dQ" % (len(b) // 8), b)
		new = ("// sbm firmware.sh: uint64 words (little-endian, the same bytes), so that\n"
		       "// the table is aligned for the uint64 reads of p256.go.\n"
		       "var p256PrecomputedEmbed = [%d]uint64{%s}" % (len(w), ", ".join("%#x" % x for x in w)))
		open(p, "w").write(s[:m.start()] + new + s[m.end():])
	EOF
	mkdir -p "$tinygo.tmp/src/crypto/internal/fips140only"
	fo=$goroot/src/crypto/internal/fips140only/fips140only.go
	python3 - "$fo" "$tinygo.tmp/src/crypto/internal/fips140only/fips140only.go" <<-'EOF'
		import sys
		s = open(sys.argv[1]).read()
		old = 'var Enabled = godebug.New("fips140").Value() == "only"\n'
		assert old in s, "fips140only.go: Enabled not found"
		s = s.replace(old, "// sbm firmware.sh: the firmware has no GODEBUG.\nconst Enabled = false\n")
		s = s.replace('\t"internal/godebug"\n', "")
		open(sys.argv[2], "w").write(s)
	EOF
	mkdir -p "$tinygo.tmp/src/crypto/internal/fips140hash"
	cat >"$tinygo.tmp/src/crypto/internal/fips140hash/hash.go" <<-'EOF'
		// Package fips140hash is crypto/internal/fips140hash without SHA-3
		// (sbm firmware.sh): FIPS 140-3 mode is off on the firmware, so the
		// inner implementation is never needed for the service indicator.
		package fips140hash

		import "hash"

		// Unwrap returns h.
		func Unwrap(h hash.Hash) hash.Hash { return h }

		// UnwrapNew returns newHash as a func() hash.Hash.
		func UnwrapNew[Hash hash.Hash](newHash func() Hash) func() hash.Hash {
			return func() hash.Hash { return Unwrap(newHash()) }
		}
	EOF
	(cd "$tinygo.tmp" && CGO_ENABLED=1 CC=clang-$llvm CXX=clang++-$llvm \
		go build -tags llvm$llvm -o bin/tinygo .)
	echo "$patches" >"$tinygo.tmp/sbm-patches"
	rm -rf "$tinygo"
	mv "$tinygo.tmp" "$tinygo"
fi
echo "== $("$tinygo/bin/tinygo" version)"

# 4. The board targets, for QEMU's MPS2 boards: mps2-an385 (Cortex-M3;
# 4 MiB SSRAM1 at 0 for code, 4 MiB SSRAM2/3 at 0x20000000) and mps2-an505
# (Cortex-M33, booting in the Secure state: code at the secure alias
# 0x10000000, RAM at 0x38000000). Debian's picolibc and libgcc replace
# TinyGo's own builds; TinyGo's stack-size analysis cannot read GCC's
# .debug_frame, so copies of the archives without debug sections are linked.
target=$cache/target
mkdir -p "$target"
m3_features="+armv7-m,+hwdiv,+soft-float,+thumb-mode,-aes,-bf16,-cdecp0,-cdecp1,-cdecp2,-cdecp3,-cdecp4,-cdecp5,-cdecp6,-cdecp7,-crc,-crypto,-d32,-dotprod,-dsp,-fp-armv8,-fp-armv8d16,-fp-armv8d16sp,-fp-armv8sp,-fp16,-fp16fml,-fp64,-fpregs,-fullfp16,-hwdiv-arm,-i8mm,-lob,-mve,-mve.fp,-neon,-pacbti,-ras,-sb,-sha2,-vfp2,-vfp2sp,-vfp3,-vfp3d16,-vfp3d16sp,-vfp3sp,-vfp4,-vfp4d16,-vfp4d16sp,-vfp4sp"
m33_features="+armv8-m.main,+dsp,+hwdiv,+soft-float,+thumb-mode,-aes,-bf16,-cdecp0,-cdecp1,-cdecp2,-cdecp3,-cdecp4,-cdecp5,-cdecp6,-cdecp7,-crc,-crypto,-d32,-dotprod,-fp-armv8,-fp-armv8d16,-fp-armv8d16sp,-fp-armv8sp,-fp16,-fp16fml,-fp64,-fpregs,-fullfp16,-hwdiv-arm,-i8mm,-lob,-mve,-mve.fp,-neon,-pacbti,-ras,-sb,-sha2,-vfp2,-vfp2sp,-vfp3,-vfp3d16,-vfp3d16sp,-vfp3sp,-vfp4,-vfp4d16,-vfp4d16sp,-vfp4sp"
write_target() { # board
	local board=$1 triple cpu features arch code ram codelen ramlen
	case $board in
	# mps2-an385: the SBM's code in the lower 2 MiB of the code SSRAM (the
	# board hal maps the emulated flash array in the upper 2 MiB), its RAM
	# in the lower 3 MiB of SSRAM2/3 (the native application owns the top
	# 1 MiB; firmware/mps2/chip).
	mps2-an385) triple=thumbv7m-unknown-unknown-eabi cpu=cortex-m3 features=$m3_features arch=v7-m code=0x00000000 ram=0x20000000 codelen=2M ramlen=3M ;;
	mps2-an505) triple=thumbv8m.main-unknown-unknown-eabi cpu=cortex-m33 features=$m33_features arch=v8-m.main code=0x10000000 ram=0x38000000 codelen=4M ramlen=4M ;;
	*) echo "unknown board $board (mps2-an385, mps2-an505)" >&2; exit 2 ;;
	esac
	local libc=/usr/lib/picolibc/arm-none-eabi/lib/release/thumb/$arch/nofp/libc.a
	local libgcc
	libgcc=$(ls /usr/lib/gcc/arm-none-eabi/*/thumb/"$arch"/nofp/libgcc.a 2>/dev/null | head -1)
	[ -f "$libc" ] && [ -n "$libgcc" ] || { echo "picolibc or libgcc for $arch not found" >&2; exit 1; }
	mkdir -p "$target/$arch"
	for a in "$libc" "$libgcc"; do
		[ -f "$target/$arch/$(basename "$a")" ] ||
			llvm-objcopy-$llvm --strip-debug "$a" "$target/$arch/$(basename "$a")"
	done
	cat >"$target/$board.ld" <<-EOF
		MEMORY
		{
		    FLASH_TEXT (rw) : ORIGIN = $code, LENGTH = $codelen
		    RAM (xrw)       : ORIGIN = $ram, LENGTH = $ramlen
		}
		_stack_size = 32K;
		INCLUDE "targets/arm.ld"
	EOF
	cat >"$target/$board.json" <<-EOF
		{
			"llvm-target": "$triple",
			"cpu": "$cpu",
			"features": "$features",
			"build-tags": ["cortexm", "baremetal", "linux", "arm", "qemu", "mps2", "${board//-/_}"],
			"goos": "linux",
			"goarch": "arm",
			"gc": "conservative",
			"scheduler": "tasks",
			"linker": "ld.lld",
			"automatic-stack-size": true,
			"default-stack-size": 8192,
			"cflags": ["-Werror", "-fshort-enums", "-fomit-frame-pointer", "-mfloat-abi=soft",
				"-fno-exceptions", "-fno-unwind-tables", "-fno-asynchronous-unwind-tables",
				"-ffunction-sections", "-fdata-sections"],
			"ldflags": ["--emit-relocs", "--gc-sections", "$target/$arch/libc.a", "$target/$arch/libgcc.a"],
			"linkerscript": "$target/$board.ld",
			"extra-files": ["src/device/arm/cortexm.S", "src/internal/task/task_stack_cortexm.S", "src/runtime/asm_arm.S", "targets/cortex-m-qemu.s"],
			"emulator": "qemu-system-arm -M $board -nographic -semihosting -kernel {}"
		}
	EOF
}
# shellcheck disable=SC2206
boards=(${SBM_FIRMWARE_BOARDS:-mps2-an385})
for board in "${boards[@]}"; do write_target "$board"; done

# 5. A generated module with the firmware's main and the device-side
# packages it imports (non-test files only), at go 1.24.
mod=$cache/mod
rm -rf "$mod"
mkdir -p "$mod"
printf 'module github.com/sbm-project/sbm\n\ngo 1.24\n' >"$mod/go.mod"
# (-e: the host's go list does not know TinyGo's own packages such as
# device/arm; they have no module and are left to TinyGo.)
# (Listed twice: the phase-1 variants and the board variant, whose files
# have other build tags, import different packages.)
dirs=$(cd "$root" && for tags in tinygo tinygo,mps2_an385,sbmfw_board; do
	GOTOOLCHAIN=auto "$hostgo" list -e -tags $tags -deps \
		-f '{{if and (not .Standard) .Module}}{{.Dir}}{{end}}' ./firmware/mps2
done | sort -u)
for d in $dirs; do
	rel=${d#"$root"/}
	mkdir -p "$mod/$rel"
	for f in "$d"/*.go; do
		case $f in *_test.go) continue ;; esac
		cp "$f" "$mod/$rel/"
	done
done
echo "== module $mod: $(echo "$dirs" | wc -w) packages"

# 6. Build the firmware for each board: the whole SBM on an in-RAM
# stand-in (full), one-suite variants that link only that suite's
# signature primitives, and, for mps2-an385, the SBM on the board's own hal
# (board: UART, chip file, reset, native applications) with the native
# example application (firmware/app, arm-none-eabi-gcc). -panic trap: a
# run-time panic (a bug: index out of range, nil dereference) is a UDF
# instruction, i.e. a HardFault, whose handler prints the faulting pc on
# the console and halts the core, as a panic does, without the panic
# printing code (5 KB); llvm-addr2line -e ELF PC names the line.
# shellcheck disable=SC2206
variants=(${SBM_FIRMWARE_VARIANTS:-full ed25519 p256 board board-ed25519})
builds=() # board:variant
for board in "${boards[@]}"; do
	for v in "${variants[@]}"; do
		case $v in board*) [ "$board" = mps2-an385 ] || continue ;; esac
		builds+=("$board:$v")
	done
done
for b in "${builds[@]}"; do
	board=${b%%:*} v=${b#*:}
	case $v in
	full) tags="" ;;
	# The board firmware with the P-256 suite compiled out (internal/p256).
	board-ed25519) tags="-tags sbmfw_board,sbm_ed25519only" ;;
	*) tags="-tags sbmfw_$v" ;;
	esac
	elf=$out/sbm-$board-$v.elf
	echo "== tinygo build $board $v -> $elf"
	# shellcheck disable=SC2086
	(cd "$mod" && "$tinygo/bin/tinygo" build -target "$target/$board.json" -opt z -panic trap $tags \
		-o "$elf" ./firmware/mps2)
	if [ "$v" = board ]; then
		app=$out/app-$board
		echo "== arm-none-eabi-gcc firmware/app -> $app.elf, $app.bin"
		arm-none-eabi-gcc -mcpu=cortex-m3 -mthumb -Os -ffreestanding -nostdlib -Wall -Werror \
			-T "$root/firmware/app/app.ld" "$root/firmware/app/app.c" -o "$app.elf"
		arm-none-eabi-objcopy -O binary "$app.elf" "$app.bin"
	fi
done
echo "== sizes (bytes; flash = text + data, RAM = data + bss, heap not included)"
elfs=()
for b in "${builds[@]}"; do elfs+=("sbm-${b%%:*}-${b#*:}.elf"); done
(cd "$out" && llvm-size-$llvm "${elfs[@]}")

# 7. Boot each self-check ELF under QEMU and check it ran (the board
# variant needs a provisioned chip file: firmware/firmware_test.go).
if ((qemu)); then
	for b in "${builds[@]}"; do
		board=${b%%:*} v=${b#*:}
		case $v in board*) continue ;; esac
		elf=$out/sbm-$board-$v.elf
		echo "== qemu-system-arm -M $board ... $elf"
		log=$(timeout 60 qemu-system-arm -M "$board" -nographic -monitor none -semihosting \
			-kernel "$elf" </dev/null 2>&1) || true
		echo "$log"
		grep -q "sbm core linked" <<<"$log" || { echo "firmware $board $v did not report success" >&2; exit 1; }
	done
fi
# 8. The board's end-to-end tests on the ELF and application just built.
if ((e2e)); then
	[ -f "$out/sbm-mps2-an385-board.elf" ] || { echo "--test needs the board variant (SBM_FIRMWARE_VARIANTS)" >&2; exit 2; }
	echo "== go test ./firmware (TestFirmwareProgramsUnderQEMU, TestFirmwareBootMeasurement, TestFirmwareLinks)"
	(cd "$root" && SBM_FIRMWARE_TEST=1 SBM_FIRMWARE_PREBUILT=$out GOTOOLCHAIN=auto PATH="$(dirname "$hostgo"):$PATH" \
		"$hostgo" test -count=1 -v -timeout 15m \
		-run 'TestFirmwareProgramsUnderQEMU|TestFirmwareBootMeasurement|TestFirmwareLinks' ./firmware)
fi
echo "== ok"
