#!/usr/bin/env bash
# The long, coverage-guided fuzz run: AFL++ through cargo-afl (stable Rust).
#
#   bash fuzz/afl.sh [SECONDS_PER_TARGET] [TARGET…]     (default 600 s, every target)
#
# Installs cargo-afl if missing, builds the instrumented entry point, writes the seed
# corpora from the vectors, runs each target for the time given (one core each, one after
# the other), then prints executions, paths and crashes per target. Findings stay in
# $AGORA_FUZZ_OUT (default target/fuzz-out/<target>/default/crashes): replay one with
# `cargo run -p agora-fuzz --bin agora-fuzz -- replay TARGET FILE`, fix it, and add the
# file to fuzz/regressions/<target>/ so the CI run replays it for good.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-600}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(tx block peer snapshot stored genesis api)
fi
out=${AGORA_FUZZ_OUT:-target/fuzz-out}
target_dir=${AGORA_FUZZ_TARGET_DIR:-target/afl}

if ! cargo afl --version >/dev/null 2>&1; then
  cargo install --locked cargo-afl
fi
# Builds AFL++ itself once per toolchain; a no-op (and an error message) when it exists.
cargo afl config --build >/dev/null 2>&1 || true
CARGO_TARGET_DIR=$target_dir cargo afl build --release --locked -p agora-fuzz --features afl --bin agora-fuzz-afl
cargo run --quiet --locked -p agora-fuzz --bin agora-fuzz -- seeds --out "$out/seeds"

export AFL_SKIP_CPUFREQ=1 AFL_NO_UI=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_AFFINITY=1
for t in "${targets[@]}"; do
  echo "== $t: ${seconds}s"
  # -t: a Raft message steps a whole 3-node cluster; give each input 1 s.
  cargo afl fuzz -i "$out/seeds/$t" -o "$out/$t" -V "$seconds" -t 1000 \
    "$target_dir/release/agora-fuzz-afl" "$t" >"$out/$t.log" 2>&1 || {
    echo "afl-fuzz failed for $t; see $out/$t.log" >&2
    tail -20 "$out/$t.log" >&2
    exit 1
  }
done

printf '%-9s %10s %12s %9s %8s %7s\n' target seconds executions "execs/s" corpus crashes
for t in "${targets[@]}"; do
  stats="$out/$t/default/fuzzer_stats"
  get() { awk -F' *: *' -v k="$1" '$1==k {print $2}' "$stats"; }
  printf '%-9s %10s %12s %9s %8s %7s\n' "$t" "$(get run_time)" "$(get execs_done)" \
    "$(get execs_per_sec)" "$(get corpus_count)" "$(get saved_crashes)"
done
