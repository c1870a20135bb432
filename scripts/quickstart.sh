#!/usr/bin/env bash
# The quick start: a narrated walk through the host toolchain in a temporary
# directory. Exits non-zero if any step does not behave as expected.
# Usage: scripts/quickstart.sh [--keep DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

if ! command -v openssl >/dev/null 2>&1; then
	SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
	$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq openssl >/dev/null
fi

work=$(mktemp -d)
if [ "${1:-}" = "--keep" ] && [ -n "${2:-}" ]; then
	mkdir -p "$2"; work=$(cd "$2" && pwd)
else
	trap 'rm -rf "$work"' EXIT
fi
go build -o "$work/sbm" ./cmd/sbm
cd "$work"
sbm() { ./sbm "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
expect_fail() { # expect_fail PATTERN CMD...: the command must fail with PATTERN on stderr
	local pat=$1; shift
	if "$@" 2>err.txt; then echo "UNEXPECTED: '$*' succeeded"; exit 1; fi
	grep -q -- "$pat" err.txt || { echo "UNEXPECTED error:"; cat err.txt; exit 1; }
	echo "refused as expected: $(cat err.txt)"
}

step "1. Create the OEM security context (root key, signing keys, device CA, IDs)"
sbm context init --org "Example Corp" ctx
sbm context show ctx

step "2. A device's key-agreement key (on real devices it is generated on the device at provisioning)"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out device.key 2>/dev/null
openssl pkey -in device.key -pubout -out device.pub
echo "device 0123456789abcdef0123456789abcdef: key-agreement key in device.key"

step "3. Package an application (an ELF file) into a signed, encrypted package"
cp "$repo/internal/firmware/testdata/real/blink.elf" app.elf
sbm image create --context ctx --version 1.0.0 --security-counter 1 --out app.pkg app.elf
sbm image inspect app.pkg

step "4. Issue an Update Protection Key for that one device"
sbm upk issue --context ctx --package app.pkg --recipient device.pub --device-id 0123456789abcdef0123456789abcdef --out device.upk

step "5. Verify as the device would: signatures to the root, UPK binding, every chunk, the plaintext hash"
sbm image verify --context ctx --upk device.upk --key device.key --device-id 0123456789abcdef0123456789abcdef --extract app.bin app.pkg

step "6. Attacks are refused"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out clone.key 2>/dev/null
expect_fail "not for this recipient" sbm image verify --context ctx --upk device.upk --key clone.key app.pkg
cp app.pkg tampered.pkg
printf '\xff' | dd of=tampered.pkg bs=1 seek=$(( $(stat -c %s app.pkg) - 5 )) conv=notrunc status=none
expect_fail "chunk" sbm image verify --context ctx --upk device.upk --key device.key tampered.pkg
sbm context init other >/dev/null
sbm image create --context other --version 9.9.9 --out foreign.pkg app.bin >/dev/null
expect_fail "does not chain to the root" sbm image verify --context ctx foreign.pkg

printf '\n\033[1mQuick start complete: every step behaved as expected.\033[0m\n'
