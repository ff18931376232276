#!/usr/bin/env bash
# Fail-over time of a release devnet at its default 100 ms tick (issue #10, BENCHMARKS.md):
# kill -9 of the leader, then the time until a transfer submitted to a survivor with
# --wait is committed by the new leader. The killed node is restarted and given time to
# catch up before the next trial.
#
#   bash bench/failover.sh [--trials N] [--warmup S]
#
# --warmup (default 40 s) lets the first leader earn reputation first, as a long-running
# leader would have. Ports are on loopback, below the kernel's ephemeral range.
# AGORA_BIN_DIR=dir uses the agora-node and agora found there instead of building.
set -euo pipefail
cd "$(dirname "$0")/.."

trials=5
warmup=40
while [ $# -gt 0 ]; do
  case "$1" in
    --trials) trials="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    *) echo "usage: $0 [--trials N] [--warmup SECONDS]" >&2; exit 2 ;;
  esac
done

low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
base=$(( low > 24000 ? 21100 : low - 2900 ))
p2p=$base
http=$((base + 10))

bin=${AGORA_BIN_DIR:-target/release}
[ -n "${AGORA_BIN_DIR:-}" ] || cargo build --release --locked -q -p agora-node -p agora-cli
work=$(mktemp -d -t agora-failover.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  pkill -f "$work/devnet/node" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

url() { echo "http://127.0.0.1:$((http + $1))"; }
role() { curl -sf "$(url "$1")/v1/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["role"])' 2>/dev/null || echo down; }
wait_ready() {
  for _ in $(seq 1 300); do
    n=0
    for i in 0 1 2; do curl -sf "$(url $i)/ready" >/dev/null 2>&1 && n=$((n + 1)); done
    [ "$n" = 3 ] && return 0
    sleep 0.2
  done
  echo "the devnet did not become ready" >&2
  exit 1
}
# `agora-node devnet` writes the genesis, keys and configs; it stops every node when one
# exits (so nobody looks at a devnet with a node missing), which a kill -9 would do, so
# once the network exists it is stopped and its three nodes run here on their own.
"$bin/agora-node" devnet --nodes 3 --dir "$work/devnet" \
  --p2p-base-port "$p2p" --http-base-port "$http" >"$work/devnet.log" 2>&1 &
devnet=$!
wait_ready
kill -TERM "$devnet"
wait "$devnet" 2>/dev/null || true
run_node() {
  "$bin/agora-node" run --config "$work/devnet/node$1/node.toml" \
    >>"$work/devnet/node$1/node.log" 2>&1 &
  pids+=($!)
  disown "$!" # a kill -9 is the point: no "Killed" report from the shell
}
for i in 0 1 2; do run_node "$i"; done
wait_ready
key="$work/devnet/demo.key"
to=$("$bin/agora" --key "$key" --json keys show | python3 -c 'import json,sys; print(json.load(sys.stdin)["account"])')
echo "devnet ready; warming up ${warmup}s"
sleep "$warmup"

times=()
for t in $(seq 1 "$trials"); do
  leader=""
  for _ in $(seq 1 100); do
    for i in 0 1 2; do [ "$(role $i)" = leader ] && leader=$i; done
    [ -n "$leader" ] && break
    sleep 0.2
  done
  [ -n "$leader" ] || { echo "no leader" >&2; exit 1; }
  victim=$(pgrep -f "$work/devnet/node$leader/node.toml" | head -1)
  survivor=$(( (leader + 1) % 3 ))
  start=$(date +%s.%N)
  kill -9 "$victim"
  "$bin/agora" --node "$(url $survivor)" --key "$key" transfer "$to" 1 --wait >/dev/null
  end=$(date +%s.%N)
  took=$(python3 -c "print(f'{$end - $start:.2f}')")
  times+=("$took")
  echo "trial $t: killed node$leader (pid $victim); committed through node$survivor after ${took} s"
  if [ "$t" -lt "$trials" ]; then
    run_node "$leader"
    sleep 20
  fi
done
python3 -c "import statistics,sys; v=sorted(map(float,sys.argv[1:])); print(f'fail-over: {len(v)} trials, median {statistics.median(v):.2f} s, min {v[0]:.2f} s, max {v[-1]:.2f} s')" "${times[@]}"
