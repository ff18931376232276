#!/usr/bin/env bash
# Agora against etcd, side by side in one run on this machine (issue #10).
#
#   bash bench/compare-etcd.sh [--clients N] [--seconds S] [--kind ml-dsa-65] [--agora-only]
#                              [--cpu-split] [--batch N] [--target-cpu LEVEL]
#
# --cpu-split samples the three node processes with `perf` (call graphs) during the
# timed window and splits their CPU per committed transaction into verification,
# storage, apply, consensus, network, HTTP and other (bench/cpu_split.py says how).
#
# --target-cpu LEVEL builds Agora for that CPU level (RUSTFLAGS="-C target-cpu=LEVEL", in
# target/cpu-LEVEL/). The default, `auto`, is the highest x86-64 level this machine's CPU
# has (x86-64-v4 with AVX-512, x86-64-v3 with AVX2), as an operator who builds for their
# servers would: the compiler may then use those instructions everywhere, libcrux's
# ML-DSA included (1.5-1.9x faster verification with AVX-512, BENCHMARKS.md), and the
# binary refuses to start on a CPU without them. `--target-cpu portable` builds the
# portable release binary instead (target/release, what `cargo build --release` gives),
# which picks its AVX2/AVX-512 code at run time where the code offers it.
#
# AGORA_BENCH_KEEP=1 keeps the work directory (logs, perf.data). AGORA_BIN_DIR=dir runs
# the agora-node and agora-load found there instead of building (to compare two builds of
# Agora in the same conditions).
#
# 1. etcd: three members on loopback, `etcdctl check perf --load=xl` (60 s of writes),
#    then stopped and its data removed.
# 2. Agora: a release `agora-node devnet --nodes 3`, loaded by `agora-load` (transfers
#    signed before the timed window, committed with ?wait=commit), then stopped. Each
#    client signs 25 per second of the run ahead (9,600 tx/s at 384 clients): one that
#    ran out would sign inside the window, on the nodes' cores (the report counts them).
#    384 clients by default: each waits for its commit, so throughput is clients divided
#    by latency, and etcd's own check (`--load=xl`) runs 1,000 clients. 384 is the most
#    of the sweep in BENCHMARKS.md ("How many clients") whose p99 stays well under the
#    250 ms goal (118-182 ms; 512 clients reached 225-234 ms, 256 clients 129-135 ms at
#    about 10% less throughput).
# 3. Both numbers and the ratio, and each Agora node's CPU per committed transaction.
#
# Needs etcd and etcdctl (Debian: apt-get install etcd-server etcd-client). Every port
# is on loopback and below the kernel's ephemeral range.
set -euo pipefail
cd "$(dirname "$0")/.."

clients=384
seconds=20
kind=ml-dsa-65
agora_only=0
cpu_split=0
batch=1
target_cpu=auto
while [ $# -gt 0 ]; do
  case "$1" in
    --clients) clients="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --kind) kind="$2"; shift 2 ;;
    --agora-only) agora_only=1; shift ;;
    --cpu-split) cpu_split=1; shift ;;
    --batch) batch="$2"; shift 2 ;;
    --target-cpu) target_cpu="$2"; shift 2 ;;
    *) echo "usage: $0 [--clients N] [--seconds S] [--kind ml-dsa-44|ml-dsa-65|ml-dsa-87] [--agora-only] [--cpu-split] [--batch N] [--target-cpu LEVEL]" >&2; exit 2 ;;
  esac
done

tools="curl python3"
[ "$agora_only" = 1 ] || tools="etcd etcdctl $tools"
[ "$cpu_split" = 0 ] || tools="perf $tools"
for tool in $tools; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "$tool is not installed (Debian: apt-get install etcd-server etcd-client curl)" >&2
    exit 2
  fi
done

# Ports: a block of 16 below the ephemeral range (or the kernel's default if unreadable).
low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
base=$(( low > 24000 ? 21000 : low - 3000 ))
if [ "$base" -lt 1024 ]; then
  echo "no room below the ephemeral range (starts at $low)" >&2
  exit 2
fi
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in $(seq "$base" $((base + 15))); do
  port_free "$p" || { echo "port $p is in use; free $base-$((base + 15))" >&2; exit 2; }
done
etcd_client=$base      # 3 client ports
etcd_peer=$((base + 3)) # 3 peer ports
agora_p2p=$((base + 6))
agora_http=$((base + 9))

work=$(mktemp -d -t agora-vs-etcd.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${AGORA_BENCH_KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

# ---- etcd ------------------------------------------------------------------------------
etcd_rate=""
if [ "$agora_only" = 0 ]; then
cluster=""
for i in 0 1 2; do
  cluster+="e$i=http://127.0.0.1:$((etcd_peer + i)),"
done
cluster=${cluster%,}
endpoints=""
for i in 0 1 2; do
  etcd --name "e$i" --data-dir "$work/etcd-$i" \
    --listen-client-urls "http://127.0.0.1:$((etcd_client + i))" \
    --advertise-client-urls "http://127.0.0.1:$((etcd_client + i))" \
    --listen-peer-urls "http://127.0.0.1:$((etcd_peer + i))" \
    --initial-advertise-peer-urls "http://127.0.0.1:$((etcd_peer + i))" \
    --initial-cluster "$cluster" --initial-cluster-state new \
    --initial-cluster-token agora-bench >"$work/etcd-$i.log" 2>&1 &
  pids+=($!)
  endpoints+="http://127.0.0.1:$((etcd_client + i)),"
done
endpoints=${endpoints%,}
for _ in $(seq 1 100); do
  etcdctl --endpoints="$endpoints" endpoint health >/dev/null 2>&1 && break
  sleep 0.2
done
etcdctl --endpoints="$endpoints" endpoint health >/dev/null 2>&1 \
  || { echo "etcd did not become healthy; logs in $work" >&2; tail -5 "$work"/etcd-*.log >&2; exit 1; }
echo "== etcd $(etcd --version | head -1 | awk '{print $3}'): 3 members, etcdctl check perf --load=xl"
# Its verdict (PASS/FAIL against etcd's own thresholds) is printed as it is; the progress
# bar is not.
etcdctl --endpoints="$endpoints" check perf --load=xl 2>&1 | tr '\r' '\n' \
  | grep -v ' / 60 ' | tee "$work/etcd-perf.txt" || true
etcd_rate=$(grep -oE '[0-9]+ writes/s' "$work/etcd-perf.txt" | head -1 | awk '{print $1}')
for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
wait 2>/dev/null || true
pids=()
if [ -z "$etcd_rate" ]; then
  echo "etcdctl check perf reported no throughput" >&2
  exit 1
fi
fi

# ---- Agora -----------------------------------------------------------------------------
# The highest x86-64 level (psABI) whose features /proc/cpuinfo lists, or "portable".
cpu_level() {
  local flags
  flags=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
  has() { for f in "$@"; do [[ "$flags" == *" $f "* ]] || return 1; done; }
  if has avx2 bmi1 bmi2 fma movbe f16c abm xsave; then
    if has avx512f avx512bw avx512cd avx512dq avx512vl; then echo x86-64-v4; else echo x86-64-v3; fi
  else
    echo portable
  fi
}
[ "$target_cpu" = auto ] && target_cpu=$(cpu_level)
if [ -n "${AGORA_BIN_DIR:-}" ]; then
  bin=$AGORA_BIN_DIR
  echo "== Agora build: the binaries in $bin"
elif [ "$target_cpu" != portable ]; then
  # Its own target directory: other RUSTFLAGS would rebuild everything in target/.
  echo "== Agora build: release for $target_cpu (--target-cpu portable for the portable build)"
  CARGO_TARGET_DIR="target/cpu-$target_cpu" RUSTFLAGS="-C target-cpu=$target_cpu" \
    cargo build --release --locked -q -p agora-node -p agora-cli
  bin=target/cpu-$target_cpu/release
else
  echo "== Agora build: portable release"
  cargo build --release --locked -q -p agora-node -p agora-cli
  bin=target/release
fi
"$bin/agora-node" devnet --nodes 3 --dir "$work/devnet" \
  --p2p-base-port "$agora_p2p" --http-base-port "$agora_http" >"$work/devnet.log" 2>&1 &
devnet=$!
pids+=("$devnet")
nodes=()
for i in 0 1 2; do nodes+=(--node "http://127.0.0.1:$((agora_http + i))"); done
for _ in $(seq 1 300); do
  ready=0
  for i in 0 1 2; do
    curl -sf "http://127.0.0.1:$((agora_http + i))/ready" >/dev/null 2>&1 && ready=$((ready + 1))
  done
  [ "$ready" = 3 ] && break
  sleep 0.2
done
[ "$ready" = 3 ] || { echo "the devnet did not become ready; log: $work/devnet.log" >&2; cat "$work/devnet.log" >&2; exit 1; }
cpu=()
children=$(pgrep -P "$devnet" || true)
for pid in ${children:-$devnet}; do cpu+=(--cpu-pid "$pid"); done
echo "== Agora devnet (3 nodes), agora-load --clients $clients --seconds $seconds --kind $kind --batch $batch"
height() { curl -sf "http://127.0.0.1:$agora_http/v1/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["height"])'; }
"$bin/agora-load" --funder "$work/devnet/demo.key" "${nodes[@]}" \
  --clients "$clients" --seconds "$seconds" --per-client $((seconds * 25)) --kind "$kind" \
  --batch "$batch" "${cpu[@]}" --json \
  >"$work/load.json" 2>"$work/load.err" &
load=$!
# The timed window starts once the clients are funded and have signed.
until grep -q "loading for" "$work/load.err" 2>/dev/null; do
  kill -0 "$load" 2>/dev/null || break
  sleep 0.1
done
first_height=$(height)
if [ "$cpu_split" = 1 ]; then
  # Sample the nodes from the start of the timed window to a second before its end.
  perf record -q -o "$work/perf.data" -F 197 --call-graph dwarf,16384 \
    -p "$(echo ${children:-$devnet} | tr ' ' ',')" -- sleep $((seconds - 1)) 2>/dev/null || true
fi
wait "$load" || { cat "$work/load.err" >&2; exit 1; }
last_height=$(height)
cat "$work/load.err" >&2
python3 - "$work/load.json" "$etcd_rate" "$first_height" "$last_height" <<'EOF'
import json, sys
report = json.load(open(sys.argv[1]))
etcd = float(sys.argv[2]) if sys.argv[2] else None
blocks = int(sys.argv[4]) - int(sys.argv[3])
agora = report["committed_per_second"]
lat = report["latency_ms"]
print(f"agora: {report['committed']} committed in {report['seconds']:.1f} s = {agora:.0f} tx/s "
      f"({report['kind']}, {report['clients']} clients, batch {report['batch']}); latency ms p50 {lat['p50']:.0f} "
      f"p99 {lat['p99']:.0f} max {lat['max']:.0f}; errors {report['errors']}; "
      f"signed inside the window {report['signed_in_window']}")
if blocks > 0:
    print(f"  {blocks} heights during the load (about {blocks / report['seconds']:.0f} per second), "
          f"{report['committed'] / blocks:.1f} transactions per height")
for entry in report["cpu"]:
    if entry["cpu_seconds"] is not None and report["committed"]:
        print(f"  pid {entry['pid']}: {entry['cpu_seconds']:.1f} CPU s, "
              f"{entry['cpu_seconds'] * 1e6 / report['committed']:.0f} µs per committed transaction")
if etcd:
    print(f"etcd:  {etcd:.0f} writes/s (etcdctl check perf --load=xl)")
    print(f"ratio: agora / etcd = {agora / etcd:.2f}")
EOF
if [ "$cpu_split" = 1 ] && [ -s "$work/perf.data" ]; then
  node_cpu=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(sum(c["cpu_seconds"] or 0 for c in r["cpu"]), r["committed"])' "$work/load.json")
  echo "== where the three nodes' CPU went (perf, call graphs)"
  perf script -i "$work/perf.data" -F comm,tid,ip,sym,dso 2>/dev/null \
    | python3 bench/cpu_split.py $node_cpu
fi
