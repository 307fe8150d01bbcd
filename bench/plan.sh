#!/usr/bin/env bash
# Benchmark: plan 1,000 resources with 100 changes through the engine (in-memory provider,
# local state file), then render it. Prints median wall times and peak RSS (VmHWM).
# Usage: bash bench/plan.sh   (BENCH_RESOURCES, BENCH_CHANGES, BENCH_RUNS to change the size)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ferry-target}"
cargo bench --bench plan -j "${BENCH_JOBS:-1}" 2>/dev/null
