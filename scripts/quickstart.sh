#!/usr/bin/env bash
# Runs README.md's Quick start as written, in a scratch directory, with a
# freshly built sbm first on PATH instead of "go install" (so that your
# GOPATH/bin is left alone) and TMPDIR in that directory, removed at the
# end (the Quick start works in $(mktemp -d)). This is what TestQuickstart
# (cmd/sbm/quickstart_test.go) runs too, with a free TCP port for 7000.
# Exits non-zero if any step fails.
# Usage: scripts/quickstart.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v openssl >/dev/null 2>&1; then
	SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
	$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq openssl >/dev/null
fi

bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/sbm" ./cmd/sbm
# The ```sh block of the "## Quick start" section, without its go install line.
script=$(awk '/^## /{q = ($0 == "## Quick start")} q && /^```/{b = !b; next} q && b' README.md | grep -v '^go install ./cmd/sbm')
PATH="$bin:$PATH" TMPDIR="$bin" bash -euo pipefail -c "set -x
$script"
printf '\nQuick start complete: every step succeeded.\n'
