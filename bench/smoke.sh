#!/usr/bin/env bash
# The bench scripts, each on a short profile with the debug binaries, so that CI notices
# when one stops working (failover.sh once did, for a day, unnoticed). Numbers from this
# run mean nothing: debug builds, seconds of load. The measuring commands are in
# BENCHMARKS.md.
#
#   bash bench/smoke.sh        (builds the debug binaries first; about a minute)
#
# Needs curl, python3 and pgrep (Debian: curl, python3, procps). Every port is on loopback,
# below the kernel's ephemeral range (each script picks its own).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --locked -q --bins
export AGORA_BIN_DIR="${CARGO_TARGET_DIR:-target}/debug"
log=$(mktemp -t agora-bench-smoke.XXXXXX)
trap 'rm -f "$log"' EXIT

# Runs one script; it must exit 0 and print a line matching the pattern.
check() {
  local name=$1 pattern=$2
  shift 2
  echo "-- $name"
  if ! "$@" >"$log" 2>&1; then
    cat "$log" >&2
    echo "bench smoke: $name failed" >&2
    exit 1
  fi
  if ! grep -Eq "$pattern" "$log"; then
    cat "$log" >&2
    echo "bench smoke: $name printed no line matching /$pattern/" >&2
    exit 1
  fi
  grep -E "$pattern" "$log" | head -3
}

check compare-etcd.sh '^agora: [1-9][0-9]* committed' \
  bash bench/compare-etcd.sh --agora-only --seconds 3 --clients 8
check failover.sh '^fail-over: 1 trials, median [0-9.]+ s' \
  bash bench/failover.sh --trials 1 --warmup 3
check zones.sh '^\| 2 \| [0-9]+ \| [0-9.]+ \| [1-9][0-9]* \|' \
  env CLIENTS=6 LOAD_SECONDS=2 IDLE_SECONDS=1 ZONES="1 2" bash bench/zones.sh
echo "bench smoke: all three scripts ran"
