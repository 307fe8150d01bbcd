#!/usr/bin/env bash
# Benchmark: `ferry validate` vs `osls print` (osls@4.3.1, an open-source Serverless
# Framework v3 fork) on the same generated 200-function serverless.yml, in one run.
#
# Reports the mean wall time of each (hyperfine), the ratio osls/ferry, and the peak RSS
# of each (/usr/bin/time -v), with PASS/FAIL against the targets:
#   ratio >= 50 (ferry at least 50x faster), ferry peak RSS < 20 MiB.
# Exits non-zero only when a tool fails to install, build or run; a missed target is
# reported, not fatal.
#
# Usage: bash bench/validate.sh
# Environment (all optional):
#   CARGO_TARGET_DIR   cargo target dir (default: $HOME/.cache/ferry-target)
#   FERRY_BIN          use this ferry binary instead of building one (skips cargo build)
#   BENCH_FUNCTIONS    functions in the generated manifest (default: 200)
#   BENCH_RSS_RUNS     runs per tool for peak RSS; the max is reported (default: 3)
#   HYPERFINE_ARGS     extra arguments for hyperfine (e.g. "--runs 20")
#   OSLS_TIMEOUT       seconds before the osls sanity run is declared hung (default: 120)
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
TOOLS="$BENCH_DIR/.tools"
RESULTS="$BENCH_DIR/results"
OSLS_VERSION="4.3.1"
FUNCTIONS="${BENCH_FUNCTIONS:-200}"
RSS_RUNS="${BENCH_RSS_RUNS:-3}"
TARGET_RATIO=50
TARGET_FERRY_RSS_MIB=20

# log, die, apt_install: shared by every benchmark script.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# ---------------------------------------------------------------- prerequisites
command -v python3 >/dev/null || die "python3 is required"
command -v node >/dev/null || die "node is required (osls runs on Node.js)"
command -v npm >/dev/null || die "npm is required to install osls"
command -v hyperfine >/dev/null || apt_install hyperfine
[ -x /usr/bin/time ] || apt_install time

# ---------------------------------------------------------------- osls (cached)
ensure_osls   # sets OSLS (lib.sh)

# osls runs offline without any setting: it has no telemetry, notifications or update
# check, and `print` makes no network call. These only keep it deterministic and its
# files out of $HOME:
#   SLS_SCHEMA_CACHE_BASE_DIR  where osls caches its compiled config-schema validator
#                              (<dir>/.serverless/artifacts); the warmup runs fill it.
#   SLS_TELEMETRY_DISABLED, SLS_NOTIFICATIONS_MODE  ignored by osls; they silence the
#                              upstream `serverless@3` CLI, should it be swapped in.
export SLS_SCHEMA_CACHE_BASE_DIR="$TOOLS"
export SLS_TELEMETRY_DISABLED=1
export SLS_NOTIFICATIONS_MODE=off
# The manifest's `${env:BENCH_UNSET, 'x'}` and `${env:BENCH_OWNER, ...}` test fallbacks.
unset BENCH_UNSET BENCH_OWNER

# ---------------------------------------------------------------- ferry (release)
build_ferry   # sets FERRY (lib.sh)

# ---------------------------------------------------------------- manifest
WORK="$(mktemp -d "${TMPDIR:-/tmp}/ferry-bench.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
python3 "$BENCH_DIR/gen_manifest.py" "$WORK" --functions "$FUNCTIONS" >/dev/null \
    || die "gen_manifest.py failed"
cd "$WORK"
log "manifest: $WORK/serverless.yml ($FUNCTIONS functions, $(wc -c <serverless.yml) bytes)"

# ---------------------------------------------------------------- sanity runs
# Each tool must accept the file before anything is timed; a failure here is fatal.
log "sanity run: ferry validate"
if ! "$FERRY" validate </dev/null >"$WORK/ferry.out" 2>"$WORK/ferry.err"; then
    cat "$WORK/ferry.out" "$WORK/ferry.err" >&2
    die "ferry validate failed on the generated manifest"
fi
log "sanity run: osls print (timeout ${OSLS_TIMEOUT:-120}s)"
rc=0
timeout "${OSLS_TIMEOUT:-120}" "$OSLS" print </dev/null >"$WORK/osls.out" 2>"$WORK/osls.err" || rc=$?
if [ "$rc" -ne 0 ]; then
    cat "$WORK/osls.err" >&2
    [ "$rc" -eq 124 ] && die "osls print hung (killed after ${OSLS_TIMEOUT:-120}s)"
    die "osls print failed (exit $rc) on the generated manifest"
fi
# Both must have resolved the variables, fallbacks included.
grep -q "FN_UNSET: x" "$WORK/osls.out" || die "osls print did not resolve \${env:BENCH_UNSET, 'x'}"

# ---------------------------------------------------------------- timing
mkdir -p "$RESULTS"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
HF_JSON="$RESULTS/validate-hyperfine-$STAMP.json"
SUMMARY_JSON="$RESULTS/validate-$STAMP.json"

q() { printf "'%s'" "${1//\'/\'\\\'\'}"; }   # single-quote for hyperfine's -N word splitting
log "hyperfine (--warmup 2); osls takes a few seconds a run, so this takes a minute or two"
# -N: no intermediate shell, so ferry's few milliseconds are not dominated by sh startup.
# shellcheck disable=SC2086
hyperfine -N --warmup 2 --export-json "$HF_JSON" ${HYPERFINE_ARGS:-} \
    --command-name "ferry validate" "$(q "$FERRY") validate" \
    --command-name "osls print" "$(q "$OSLS") print" >&2 \
    || die "hyperfine failed (a command exited non-zero)"

# ---------------------------------------------------------------- peak RSS
peak_rss_kib() {   # max "Maximum resident set size" over RSS_RUNS runs of "$@"
    local max=0 kib i
    for ((i = 0; i < RSS_RUNS; i++)); do
        /usr/bin/time -v -o "$WORK/time.txt" "$@" </dev/null >/dev/null 2>&1 \
            || die "$* failed under /usr/bin/time"
        kib="$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time.txt")"
        [ -n "$kib" ] || die "no peak RSS in /usr/bin/time output"
        if [ "$kib" -gt "$max" ]; then max="$kib"; fi
    done
    echo "$max"
}
log "peak RSS (/usr/bin/time -v, max of $RSS_RUNS runs each)"
FERRY_RSS_KIB="$(peak_rss_kib "$FERRY" validate)"
OSLS_RSS_KIB="$(peak_rss_kib "$OSLS" print)"

# ---------------------------------------------------------------- report
FERRY_VERSION="$("$FERRY" --version 2>/dev/null | head -n1 || echo unknown)"
python3 - "$HF_JSON" "$SUMMARY_JSON" "$FERRY_RSS_KIB" "$OSLS_RSS_KIB" "$TARGET_RATIO" \
    "$TARGET_FERRY_RSS_MIB" "$FUNCTIONS" "$FERRY_VERSION" "$OSLS_VERSION" "$(node --version)" <<'PY'
import json, os, sys
hf, out, ferry_kib, osls_kib, t_ratio, t_rss, n, ferry_v, osls_v, node_v = sys.argv[1:]
res = {r["command"]: r for r in json.load(open(hf))["results"]}
f, o = res["ferry validate"], res["osls print"]
ratio = o["mean"] / f["mean"]
ferry_mib, osls_mib = int(ferry_kib) / 1024, int(osls_kib) / 1024
ratio_ok, rss_ok = ratio >= float(t_ratio), ferry_mib < float(t_rss)

def ms(s): return f"{s * 1000:.1f} ms"
def mark(ok): return "PASS" if ok else "FAIL"
rows = [
    ("ferry validate mean", f"{ms(f['mean'])} ± {ms(f['stddev'] or 0)} ({len(f['times'])} runs)", ""),
    ("osls print mean", f"{ms(o['mean'])} ± {ms(o['stddev'] or 0)} ({len(o['times'])} runs)", ""),
    ("ratio osls/ferry", f"{ratio:.1f}x", f"{mark(ratio_ok)} (target >= {t_ratio}x)"),
    ("ferry peak RSS", f"{ferry_mib:.1f} MiB", f"{mark(rss_ok)} (target < {t_rss} MiB)"),
    ("osls peak RSS", f"{osls_mib:.1f} MiB", ""),
]
w0 = max(len(r[0]) for r in rows); w1 = max(len(r[1]) for r in rows)
print(f"\nferry validate vs osls print, {n}-function serverless.yml")
print(f"{'metric':<{w0}}  {'value':<{w1}}  target")
print(f"{'-' * w0}  {'-' * w1}  {'-' * 24}")
for a, b, c in rows:
    print(f"{a:<{w0}}  {b:<{w1}}  {c}".rstrip())
summary = {
    "benchmark": "validate",
    "functions": int(n),
    "ferry": {"version": ferry_v, "mean_s": f["mean"], "stddev_s": f["stddev"],
              "median_s": f["median"], "runs": len(f["times"]), "peak_rss_kib": int(ferry_kib)},
    "osls": {"version": osls_v, "node": node_v, "mean_s": o["mean"], "stddev_s": o["stddev"],
             "median_s": o["median"], "runs": len(o["times"]), "peak_rss_kib": int(osls_kib)},
    "ratio": ratio,
    "targets": {"ratio_min": float(t_ratio), "ferry_rss_mib_max": float(t_rss)},
    "pass": {"ratio": ratio_ok, "ferry_rss": rss_ok},
    "machine": {"cpus": os.cpu_count(), "loadavg": list(os.getloadavg())},
    "hyperfine_json": os.path.basename(hf),
}
json.dump(summary, open(out, "w"), indent=2)
print(f"\nresults: {out}\n         {hf}")
PY
cp "$SUMMARY_JSON" "$RESULTS/validate-latest.json"
