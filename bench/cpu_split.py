#!/usr/bin/env python3
"""Splits sampled CPU time of Agora nodes into components, from `perf script` output.

Each sample is charged to the first component, in the order listed below, that any frame
of its call stack belongs to: a SHA3 called by the SQLite store's checksums is storage, a
memcpy under the ledger's apply is apply, a syscall made by libp2p is network. Samples
with no recognizable frame are "other" (the async runtime's own scheduling, allocator
work reached only through it).

Usage: perf script -F comm,tid,ip,sym,dso | python3 bench/cpu_split.py CPU_SECONDS COMMITTED
(the nodes' CPU seconds and the transactions committed in the sampled window, from
agora-load's report: the shares are turned into microseconds per transaction.)
"""
import re
import sys
from collections import Counter

# In priority order: the first component with a matching frame anywhere in the stack wins.
COMPONENTS = [
    ("verification", re.compile(r"libcrux_ml_dsa|ml_dsa|signature_verifies|verify_job|VerifyJob|prefetch_verdicts")),
    ("storage", re.compile(r"sqlite3|sqlx|agora_node::sqlite|SqliteStore|StoreReader")),
    ("apply", re.compile(r"agora_core::ledger|agora_core::state_tree|agora_core::tx_root|apply_prepared|prepare_with|apply_entry")),
    ("consensus", re.compile(r"agora_consensus::|agora_core::")),
    ("network", re.compile(r"libp2p|yamux|snow::|noise|multistream|quinn|agora_node::network")),
    ("http", re.compile(r"hyper|axum|agora_node::api|serde_json|h2::|http_body")),
]


def classify(frames):
    """The component and the frame that decided it."""
    for name, pattern in COMPONENTS:
        for frame in frames:
            if pattern.search(frame):
                return name, frame
    return "other", frames[0] if frames else "?"


def symbol(frame):
    """A frame line's function name, without address, hash suffix and library."""
    parts = frame.split(" ", 1)
    name = parts[1] if len(parts) == 2 else frame
    name = re.sub(r" \(.*\)$", "", name)
    name = re.sub(r"::h[0-9a-f]{16}$", "", name)
    return re.sub(r"\+0x[0-9a-f]+$", "", name)


def samples(lines):
    frames = []
    for line in lines:
        if not line.strip():
            if frames:
                yield frames
            frames = []
        elif line.startswith((" ", "\t")):
            frames.append(line.strip())
        # a header line (comm tid ...) starts a sample: nothing to keep from it
    if frames:
        yield frames


def main():
    cpu_seconds = float(sys.argv[1])
    committed = int(sys.argv[2])
    detail = Counter()
    counts = Counter()
    for frames in samples(sys.stdin):
        name, frame = classify(frames)
        counts[name] += 1
        detail[(name, symbol(frame))] += 1
    total = sum(counts.values())
    if total == 0 or committed == 0:
        sys.exit("no samples or nothing committed")
    per_tx = cpu_seconds * 1e6 / committed
    print(f"{total} samples; {cpu_seconds:.1f} node CPU s for {committed} committed = {per_tx:.0f} µs per transaction (three nodes)")
    print(f"{'component':<13} {'share':>6} {'µs/tx':>7}")
    for name in [c[0] for c in COMPONENTS] + ["other"]:
        share = counts[name] / total
        print(f"{name:<13} {100.0 * share:5.1f}% {share * per_tx:7.0f}")
    print("\nthe functions that decided most samples:")
    for (name, frame), n in detail.most_common(25):
        print(f"  {100.0 * n / total:5.1f}%  {name:<13} {frame[:110]}")


if __name__ == "__main__":
    main()
