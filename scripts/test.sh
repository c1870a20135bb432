#!/usr/bin/env bash
# Runs the whole default test suite on a fresh machine: installs what the
# tests need, then checks formatting, vets and tests every package.
# Exhaustive campaigns have their own commands (see README.md).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v softhsm2-util >/dev/null 2>&1 || need+=(softhsm2)
[ -x "$(ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | head -1)" ] || need+=(postgresql)
# The dashboard's browser tests (server/dashboard) drive headless Chromium.
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if ((${#need[@]})); then
	echo "== installing: ${need[*]}"
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO="sudo"
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt needed on:"; echo "$unformatted"; exit 1
fi

echo "== go vet"
go vet ./...
# The guest SDK and the example applications are built for the virtual
# microcontroller's WebAssembly runtime.
GOOS=wasip1 GOARCH=wasm go vet ./sdk/... ./examples/...

# The Ed25519-only SBM (the board-ed25519 firmware, docs/silicon.md):
# P-256 compiled out, so only the tests written for that build run.
go vet -tags sbm_ed25519only ./internal/p256 ./sbm
# The firmware's AES (internal/smallaes instead of crypto/aes, as TinyGo
# builds select): the package format and the SBM's tests on it.
go vet -tags sbm_smallaes ./internal/secpkg ./internal/aeskw

echo "== go test"
go test -count=1 -timeout 20m "$@" ./...
go test -count=1 -tags sbm_ed25519only -run 'CompiledOut|Ed25519Only' "$@" ./internal/p256 ./sbm
go test -count=1 -tags sbm_smallaes "$@" ./internal/secpkg ./internal/aeskw ./sbm
