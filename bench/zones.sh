#!/usr/bin/env bash
# Zones: what serving several ledgers from the same three processes costs and gives.
#
# For Z in 1 2 3: a fresh release `agora-node devnet --nodes 3 --zones Z` on loopback;
# once every zone has a leader, the node processes' resident memory and their CPU time
# over IDLE_SECONDS with no clients (each zone's leader still proposes an empty block a
# second); then `agora-load` with CLIENTS clients in all, spread evenly over the Z zones,
# for LOAD_SECONDS: total committed transfers per second and each zone's; then how many
# distinct nodes lead the zones (as node 0 sees it).
#
# Usage: bash bench/zones.sh            (builds the release binaries first)
#   AGORA_BIN_DIR=dir   use the agora-node and agora-load found there
#   CLIENTS=96 LOAD_SECONDS=20 IDLE_SECONDS=10 ZONES="1 2 3"
# Ports: 17400+ (p2p) and 18400+ (HTTP), below the kernel's ephemeral range.
set -euo pipefail
cd "$(dirname "$0")/.."

CLIENTS=${CLIENTS:-96}
LOAD_SECONDS=${LOAD_SECONDS:-20}
IDLE_SECONDS=${IDLE_SECONDS:-10}
ZONES=${ZONES:-"1 2 3"}
if [ -n "${AGORA_BIN_DIR:-}" ]; then
  BIN=$AGORA_BIN_DIR
else
  cargo build --release --locked -p agora-node -p agora-cli --bin agora-node --bin agora-load >&2
  BIN=target/release
fi
WORK=$(mktemp -d /tmp/agora-zones-bench.XXXXXX)
trap 'pkill -TERM -f "agora-node devnet --nodes 3 --zones" 2>/dev/null || true; sleep 1; rm -rf "$WORK"' EXIT

node_pids() { pgrep -f "agora-node run --config $1/node" | tr '\n' ' '; }
rss_mib() { # summed VmRSS of the pids, MiB
  local total=0
  for pid in $1; do
    total=$((total + $(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")))
  done
  echo $((total / 1024))
}
cpu_ticks() { # summed utime + stime of the pids, in clock ticks
  local total=0
  for pid in $1; do
    total=$((total + $(sed 's/.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}')))
  done
  echo "$total"
}
hz=$(getconf CLK_TCK)

printf '| zones | memory after start (MiB, 3 nodes) | idle CPU (%% of a core, 3 nodes) | committed tx/s (total) | per zone | memory after load (MiB) | nodes leading a zone |\n'
printf '| --- | --- | --- | --- | --- | --- | --- |\n'
for z in $ZONES; do
  dir=$WORK/devnet-$z
  "$BIN/agora-node" devnet --nodes 3 --zones "$z" --dir "$dir" \
    --p2p-base-port 17400 --http-base-port 18400 >"$WORK/devnet-$z.log" 2>&1 &
  devnet=$!
  names=(agora-devnet)
  for i in $(seq 2 "$z"); do names+=("agora-devnet-$i"); done
  for _ in $(seq 1 120); do
    ready=1
    for name in "${names[@]}"; do
      curl -sf "http://127.0.0.1:18400/v1/zones/$name/status" | grep -q '"leader":"' || ready=0
    done
    [ "$ready" = 1 ] && break
    sleep 0.5
  done
  [ "$ready" = 1 ] || { echo "devnet with $z zones never had leaders" >&2; cat "$WORK/devnet-$z.log" >&2; exit 1; }
  sleep 2
  pids=$(node_pids "$dir")
  mem_start=$(rss_mib "$pids")
  before=$(cpu_ticks "$pids")
  sleep "$IDLE_SECONDS"
  after=$(cpu_ticks "$pids")
  idle=$(awk -v t=$((after - before)) -v hz="$hz" -v s="$IDLE_SECONDS" 'BEGIN {printf "%.1f", 100 * t / hz / s}')
  zone_args=()
  for name in "${names[@]}"; do zone_args+=(--zone "$name"); done
  "$BIN/agora-load" --funder "$dir/demo.key" --node http://127.0.0.1:18400 \
    --node http://127.0.0.1:18401 --node http://127.0.0.1:18402 \
    --clients $((CLIENTS / z)) --seconds "$LOAD_SECONDS" "${zone_args[@]}" --json \
    >"$WORK/load-$z.json" 2>"$WORK/load-$z.err"
  mem_load=$(rss_mib "$pids")
  total=$(python3 -c "import json; print(round(json.load(open('$WORK/load-$z.json'))['committed_per_second']))")
  per_zone=$(python3 -c "import json; print(', '.join(str(round(x['committed_per_second'])) for x in json.load(open('$WORK/load-$z.json'))['zones']))")
  # How many distinct nodes lead the zones at the end, as node 0 sees it (leaders spread
  # over the nodes: min(zones, 3) when they do).
  leading=$(for name in "${names[@]}"; do
    curl -sf "http://127.0.0.1:18400/v1/zones/$name/status" |
      python3 -c "import json, sys; print(json.load(sys.stdin).get('leader'))"
  done | sort -u | wc -l)
  printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$z" "$mem_start" "$idle" "$total" "$per_zone" "$mem_load" "$leading"
  kill -TERM "$devnet"
  wait "$devnet" || true
done
