#!/usr/bin/env bash
# End-to-end load test of the update service (docs/fleet.md, "Fleet
# simulator"): builds sbm once, creates a security context, starts
# "sbm server run" on 127.0.0.1 with SQLite or a throwaway PostgreSQL
# cluster, publishes a release (a 64 KiB package), starts a rollout at
# --percent, runs "sbm fleet simulate" against it and prints its summary,
# then stops everything and removes its temporary directory.
#
# Usage: scripts/fleet-load.sh [--store sqlite|postgres|both] [--devices N]
#          [--interval D] [--duration D] [--percent P] [--json]
# Defaults: sqlite, 1000 devices, 500ms interval, 30s duration, 10 %.
#
# The summary goes to standard output (with --json the simulator's JSON
# object; with --store both and --json one object {"sqlite": …,
# "postgres": …}), progress to standard error. PostgreSQL is Debian's
# postgresql package (installed if missing), a cluster initdb'ed in the
# temporary directory, listening on a unix socket there only (no TCP), run
# as the postgres user when this script runs as root, with the default
# settings (fsync on). Both processes run on loopback only. Exits 1 if a
# step fails (with the tail of the server's log) or the simulator counted
# errors, 2 on a usage error.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
	sed -n 's/^# \{0,1\}//; /^Usage:/,/^Defaults:/p' "$0" >&2
	exit 2
}

store=sqlite devices=1000 interval=500ms duration=30s percent=10 json=false
while (($#)); do
	case $1 in
	--store | --devices | --interval | --duration | --percent)
		(($# >= 2)) || { echo "fleet-load: $1 needs a value" >&2; usage; }
		v=$2
		case $1 in
		--store) store=$v ;;
		--devices) devices=$v ;;
		--interval) interval=$v ;;
		--duration) duration=$v ;;
		--percent) percent=$v ;;
		esac
		shift 2
		;;
	--store=* | --devices=* | --interval=* | --duration=* | --percent=*)
		set -- "${1%%=*}" "${1#*=}" "${@:2}"
		;;
	--json) json=true; shift ;;
	-h | --help) usage ;;
	*) echo "fleet-load: unknown argument: $1" >&2; usage ;;
	esac
done
case $store in
sqlite | postgres) stores=("$store") ;;
both) stores=(sqlite postgres) ;;
*) echo "fleet-load: --store: want sqlite, postgres or both, not \"$store\"" >&2; usage ;;
esac
[[ $devices =~ ^[1-9][0-9]*$ ]] || { echo "fleet-load: --devices: want a positive integer, not \"$devices\"" >&2; usage; }

say() { echo "fleet-load: $*" >&2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/fleet-load.XXXXXX")
sbm=$tmp/sbm
sim_pid="" srv_pid="" srv_log="" pg_bin="" pg_dir="" pg_user=""

# pg runs one of PostgreSQL's programs as the cluster's owner, in its
# directory.
pg() {
	local prog=$1
	shift
	if [ "$(id -u)" -eq 0 ]; then
		(cd "$pg_dir" && runuser -u postgres -- "$pg_bin/$prog" "$@")
	else
		(cd "$pg_dir" && "$pg_bin/$prog" "$@")
	fi
}

# teardown stops the server and PostgreSQL if running (idempotent).
teardown() {
	if [ -n "$sim_pid" ]; then
		kill -TERM "$sim_pid" 2>/dev/null || true
		wait "$sim_pid" 2>/dev/null || true
		sim_pid=""
	fi
	if [ -n "$srv_pid" ]; then
		kill -TERM "$srv_pid" 2>/dev/null || true
		for _ in $(seq 100); do
			kill -0 "$srv_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$srv_pid" 2>/dev/null || true
		wait "$srv_pid" 2>/dev/null || true
		srv_pid=""
	fi
	if [ -n "$pg_dir" ] && [ -f "$pg_dir/data/postmaster.pid" ]; then
		pg pg_ctl stop -m fast -w -t 30 -D "$pg_dir/data" >/dev/null 2>&1 ||
			pg pg_ctl stop -m immediate -w -D "$pg_dir/data" >/dev/null 2>&1 || true
	fi
	pg_dir=""
}
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
	teardown
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# fail reports a failed step with its output and the logs' tails, and exits.
fail() {
	local what=$1 out=${2:-}
	say "FAILED: $what"
	if [ -n "$out" ] && [ -s "$out" ]; then
		echo "--- output:" >&2
		tail -n 40 "$out" >&2
	fi
	if [ -n "$srv_log" ] && [ -s "$srv_log" ]; then
		echo "--- last lines of the server's log ($srv_log):" >&2
		tail -n 30 "$srv_log" >&2
	fi
	if [ -n "$pg_dir" ] && [ -s "$pg_dir/log" ]; then
		echo "--- last lines of PostgreSQL's log:" >&2
		tail -n 20 "$pg_dir/log" >&2
	fi
	exit 1
}

# step DESCRIPTION CMD...: runs CMD with its output in a file, shown if it fails.
step() {
	local what=$1 out
	shift
	out=$(mktemp "$tmp/step.XXXXXX")
	"$@" >"$out" 2>&1 || fail "$what (exit $?): $*" "$out"
}

need_postgres() {
	pg_bin=$(find /usr/lib/postgresql -path '*/bin/initdb' 2>/dev/null | sort -V | tail -n 1 || true)
	if [ -z "$pg_bin" ] && command -v initdb >/dev/null 2>&1; then
		pg_bin=$(command -v initdb)
	fi
	if [ -z "$pg_bin" ]; then
		say "installing postgresql (Debian's package)"
		local sudo=""
		[ "$(id -u)" -eq 0 ] || sudo=sudo
		$sudo apt-get update -qq
		DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
		pg_bin=$(find /usr/lib/postgresql -path '*/bin/initdb' | sort -V | tail -n 1)
		[ -n "$pg_bin" ] || fail "postgresql installed but no initdb in /usr/lib/postgresql/*/bin"
	fi
	pg_bin=$(dirname "$pg_bin")
}

# start_postgres creates a cluster in $1 and sets db_url.
start_postgres() {
	pg_dir=$1
	mkdir -p "$pg_dir"
	if [ "$(id -u)" -eq 0 ]; then
		# initdb refuses to run as root: the cluster belongs to postgres.
		id postgres >/dev/null 2>&1 || fail "running as root and there is no postgres user"
		chmod 711 "$tmp"
		chown postgres: "$pg_dir"
		pg_user=postgres
	else
		pg_user=$(id -un)
	fi
	say "postgres: $("$pg_bin/postgres" --version), cluster in $pg_dir (unix socket only)"
	step "initdb" pg initdb -D "$pg_dir/data" -U "$pg_user" --auth=trust -E UTF8 --locale=C
	step "starting PostgreSQL" pg pg_ctl start -w -t 60 -D "$pg_dir/data" -l "$pg_dir/log" \
		-o "-c listen_addresses='' -k $pg_dir"
	step "createdb" "$pg_bin/createdb" -h "$pg_dir" -U "$pg_user" sbm
	db_url="postgres:///sbm?host=$pg_dir&user=$pg_user&sslmode=disable"
}

# run_store STORE: one whole run; the summary is left in $tmp/STORE/summary.
run_store() {
	local st=$1 dir=$tmp/$1 url
	mkdir -p "$dir"
	srv_log=$dir/server.log
	say "== $st: $devices devices, poll interval $interval, $duration, rollout at $percent %"
	step "sbm context init" "$sbm" context init "$dir/ctx"
	head -c 65536 /dev/urandom >"$dir/app.bin"
	step "sbm image create" "$sbm" image create --context "$dir/ctx" --version 1.0.0 --security-counter 1 \
		--out "$dir/app.pkg" "$dir/app.bin"

	local store_flags
	if [ "$st" = postgres ]; then
		start_postgres "$dir/pg"
		store_flags=(--db "$db_url")
	else
		store_flags=(--data "$dir/data")
	fi
	# Port 0: the kernel picks a free port; the server logs the address.
	"$sbm" server run --context "$dir/ctx" "${store_flags[@]}" --listen 127.0.0.1:0 >"$srv_log" 2>&1 &
	srv_pid=$!
	url=""
	for _ in $(seq 300); do
		url=$(sed -n 's/.*"msg":"serving","addr":"\(https:\/\/127\.0\.0\.1:[0-9]*\)".*/\1/p' "$srv_log" | head -n 1)
		[ -n "$url" ] && break
		kill -0 "$srv_pid" 2>/dev/null || fail "sbm server run exited at start"
		sleep 0.1
	done
	[ -n "$url" ] || fail "sbm server run did not say where it listens within 30 s"
	step "sbm server wait" "$sbm" server wait --server "$url" --context "$dir/ctx" --timeout 30s
	say "server on $url (pid $srv_pid, store $st)"
	step "sbm release publish" "$sbm" release publish --server "$url" --context "$dir/ctx" "$dir/app.pkg"
	step "sbm rollout start" "$sbm" rollout start --server "$url" --context "$dir/ctx" --release 1.0.0 --percent "$percent"

	local sim=(fleet simulate --server "$url" --context "$dir/ctx" --devices "$devices" --duration "$duration" --interval "$interval")
	[ "$json" = false ] || sim+=(--json)
	say "sbm ${sim[*]}"
	local rc=0
	# In the background, so that a signal to this script stops it at once.
	"$sbm" "${sim[@]}" >"$dir/summary" 2>"$dir/simulate.err" &
	sim_pid=$!
	wait "$sim_pid" || rc=$?
	sim_pid=""
	if ((rc != 0)); then
		cat "$dir/summary" >>"$dir/simulate.err"
		fail "sbm fleet simulate (exit $rc)" "$dir/simulate.err"
	fi
	kill -0 "$srv_pid" 2>/dev/null || fail "sbm server run died during the simulation"
	"$sbm" rollout status --server "$url" --context "$dir/ctx" >"$dir/rollout" 2>&1 ||
		fail "sbm rollout status" "$dir/rollout"
	sed "s/^/fleet-load: $st: /" "$dir/rollout" >&2

	# Stop the server gracefully (SIGTERM) and check it stopped cleanly.
	kill -TERM "$srv_pid"
	rc=0
	wait "$srv_pid" || rc=$?
	srv_pid=""
	((rc == 0)) || fail "sbm server run exited with status $rc when stopped"
	teardown
}

command -v go >/dev/null 2>&1 || { say "go not found (Go 1.26.8 or later, see README.md)"; exit 1; }
for st in "${stores[@]}"; do
	[ "$st" = sqlite ] || need_postgres
done
say "building sbm"
step "go build ./cmd/sbm" go build -o "$sbm" ./cmd/sbm

status=0
for st in "${stores[@]}"; do
	run_store "$st"
	if [ "$json" = true ]; then
		errs=$(sed -n 's/^ *"errors": *\([0-9]*\).*/\1/p' "$tmp/$st/summary")
	else
		errs=$(sed -n 's/.*, errors \([0-9]*\)$/\1/p' "$tmp/$st/summary")
	fi
	if [ "${errs:-0}" != 0 ]; then
		say "$st: the simulator counted $errs errors"
		cat "$tmp/$st/simulate.err" >&2
		echo "--- last lines of the server's log:" >&2
		tail -n 30 "$tmp/$st/server.log" >&2
		status=1
	fi
done

# The summaries.
if [ "$json" = true ] && ((${#stores[@]} > 1)); then
	sep="{"
	for st in "${stores[@]}"; do
		printf '%s\n"%s": ' "$sep" "$st"
		cat "$tmp/$st/summary"
		sep=","
	done
	echo "}"
elif [ "$json" = true ]; then
	cat "$tmp/${stores[0]}/summary"
else
	for st in "${stores[@]}"; do
		printf '%s: %s\n' "$st" "$(cat "$tmp/$st/summary")"
		if [ -s "$tmp/$st/simulate.err" ]; then
			sed "s/^/$st: /" "$tmp/$st/simulate.err"
		fi
	done
fi
exit "$status"
