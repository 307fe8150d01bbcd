#!/usr/bin/env bash
# Benchmark: `ferry package` vs `osls package` (osls@4.3.1, an open-source Serverless
# Framework v3 fork) on the same generated 200-function Node.js service, in one run.
#
# The service (bench/gen_node_service.py) has 200 handlers under src/, a package.json with
# dependencies and devDependencies, a generated node_modules (32 production packages, 10
# development-only ones) and a matching package-lock.json, so both tools must leave the
# development dependencies out.
#
# Reports the mean wall time (hyperfine -N) of:
#   ferry cold   `ferry package` with its cache removed before every run (rm -rf .ferry)
#   ferry warm   `ferry package` again with nothing changed, cache kept
#   osls         `osls package --param=mode=single`: osls's default mode, one service zip
#   osls indiv.  `osls package` with `package.individually: true`: one zip per function
#                (slow: a minute or two a run, so few runs; BENCH_OSLS_INDIVIDUAL_RUNS=0
#                skips it)
# and the ratios, with PASS/FAIL against the targets: osls/ferry-cold >= 20,
# osls/ferry-warm >= 100. The targets are judged against osls's default mode; the
# individually ratios are shown too. bench/README.md says why.
# Exits non-zero only when a tool fails to install, build or run, or produces wrong
# artifacts; a missed target is reported, not fatal.
#
# Usage: bash bench/package.sh
# Environment (all optional):
#   CARGO_TARGET_DIR            cargo target dir (default: $HOME/.cache/ferry-target)
#   FERRY_BIN                   use this ferry binary instead of building one
#   BENCH_FUNCTIONS             functions in the generated service (default: 200)
#   BENCH_OSLS_INDIVIDUAL_RUNS  timed runs of osls with individually: true (default: 2;
#                               0 skips it)
#   HYPERFINE_ARGS              extra arguments for the main hyperfine run (e.g. "--runs 20")
#   OSLS_TIMEOUT                seconds before the osls sanity run is declared hung (default: 300)
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
TOOLS="$BENCH_DIR/.tools"
RESULTS="$BENCH_DIR/results"
OSLS_VERSION="4.3.1"
FUNCTIONS="${BENCH_FUNCTIONS:-200}"
INDIVIDUAL_RUNS="${BENCH_OSLS_INDIVIDUAL_RUNS:-2}"
OSLS_TIMEOUT="${OSLS_TIMEOUT:-300}"
TARGET_COLD=20
TARGET_WARM=100
STAGE=dev   # provider.stage in the generated manifest

# log, die, apt_install: shared by every benchmark script.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# ---------------------------------------------------------------- prerequisites
command -v python3 >/dev/null || die "python3 is required"
command -v node >/dev/null || die "node is required (osls runs on Node.js)"
command -v npm >/dev/null || die "npm is required (to install osls, and osls runs \`npm ls\`)"
command -v hyperfine >/dev/null || apt_install hyperfine

# ---------------------------------------------------------------- osls (cached)
ensure_osls   # sets OSLS (lib.sh)

# osls needs no setting to run offline: `osls package` makes no network call (no AWS call,
# no telemetry, no update check; the sanity run below runs in a network namespace with no
# network when `unshare -n` works). To find development dependencies it runs
# `npm ls --dev=true` and `npm ls --prod=true` in the service folder, which read
# node_modules only. These keep it deterministic and its files out of $HOME:
#   SLS_SCHEMA_CACHE_BASE_DIR  where osls caches its compiled config-schema validator.
#   SLS_TELEMETRY_DISABLED, SLS_NOTIFICATIONS_MODE  ignored by osls; they silence the
#                              upstream `serverless@3` CLI, should it be swapped in.
#   npm_config_update_notifier=false  npm's weekly version check, in the `npm ls` runs.
# NODE_ENV and npm's omit/include/production settings would change what `npm ls` lists.
export SLS_SCHEMA_CACHE_BASE_DIR="$TOOLS"
export SLS_TELEMETRY_DISABLED=1
export SLS_NOTIFICATIONS_MODE=off
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
unset NODE_ENV npm_config_omit npm_config_include npm_config_production npm_config_dev

# ---------------------------------------------------------------- ferry (release)
build_ferry   # sets FERRY (lib.sh)

# ---------------------------------------------------------------- service
WORK="$(mktemp -d "${TMPDIR:-/tmp}/ferry-bench-pkg.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
SVC="$WORK/svc"
python3 "$BENCH_DIR/gen_node_service.py" "$SVC" --functions "$FUNCTIONS" >"$WORK/service.json" \
    || die "gen_node_service.py failed"
cd "$SVC"
log "service: $SVC ($FUNCTIONS functions, $(find . -type f | wc -l) files," \
    "$(du -sk node_modules | cut -f1) KiB of node_modules)"

# Checks one zip: dev-only packages absent, production samples present. Prints its entries.
check_zip() {   # check_zip ZIP LABEL
    python3 - "$1" "$2" "$WORK/service.json" <<'PY'
import json, sys, zipfile
path, label, info = sys.argv[1], sys.argv[2], json.load(open(sys.argv[3]))
names = zipfile.ZipFile(path).namelist()
bad = [n for n in names for d in info["dev_only"] if n.startswith(d + "/")]
if bad:
    sys.exit(f"{label}: {path} holds development-only files, e.g. {bad[0]} ({len(bad)} in all)")
missing = [s for s in info["prod_samples"] if s not in names]
if missing:
    sys.exit(f"{label}: {path} lacks {', '.join(missing)}")
print("\n".join(sorted(names)))
PY
}

# ---------------------------------------------------------------- sanity runs
# Each tool must produce the expected artifacts before anything is timed.
log "sanity run: ferry package (cold)"
rm -rf .ferry
if ! "$FERRY" package </dev/null >"$WORK/ferry.out" 2>"$WORK/ferry.err"; then
    cat "$WORK/ferry.out" "$WORK/ferry.err" >&2
    die "ferry package failed on the generated service"
fi
FERRY_OUT=".ferry/build/$STAGE"
n="$(find "$FERRY_OUT" -maxdepth 1 -name '*.zip' | wc -l)"
[ "$n" -eq "$FUNCTIONS" ] || die "ferry package wrote $n zips to $FERRY_OUT, expected $FUNCTIONS"
check_zip "$FERRY_OUT/f1.zip" "ferry" >"$WORK/ferry-f1.txt" || die "ferry's artifact is wrong"
FERRY_UNIQUE="$(find .ferry/cache/zips -name '*.zip' | wc -l)"
log "  $n zips ($FERRY_UNIQUE distinct: functions that ship the same files share one)," \
    "$(wc -l <"$WORK/ferry-f1.txt") files in f1.zip, no dev-only package"
log "sanity run: ferry package (warm)"
"$FERRY" package </dev/null >"$WORK/ferry.out" 2>"$WORK/ferry.err" \
    || { cat "$WORK/ferry.err" >&2; die "ferry package failed on its second run"; }
grep -q "($FUNCTIONS from cache)" "$WORK/ferry.out" \
    || die "the second ferry run did not take every function from the cache: $(tail -n1 "$WORK/ferry.out")"

OFFLINE=()
if unshare -n true 2>/dev/null; then
    OFFLINE=(unshare -n)
    log "sanity run: osls package --param=mode=single, with no network (unshare -n; timeout ${OSLS_TIMEOUT}s)"
else
    log "sanity run: osls package --param=mode=single (unshare -n unavailable; timeout ${OSLS_TIMEOUT}s)"
fi
rm -rf .serverless
rc=0
timeout "$OSLS_TIMEOUT" "${OFFLINE[@]}" "$OSLS" package --param=mode=single </dev/null \
    >"$WORK/osls.out" 2>"$WORK/osls.err" || rc=$?
if [ "$rc" -ne 0 ]; then
    cat "$WORK/osls.out" "$WORK/osls.err" >&2
    [ "$rc" -eq 124 ] && die "osls package hung (killed after ${OSLS_TIMEOUT}s)"
    die "osls package failed (exit $rc) on the generated service"
fi
n="$(find .serverless -maxdepth 1 -name '*.zip' | wc -l)"
[ "$n" -eq 1 ] && [ -f .serverless/bench-node.zip ] \
    || die "osls package --param=mode=single wrote $n zips, expected .serverless/bench-node.zip alone"
check_zip .serverless/bench-node.zip "osls" >"$WORK/osls-zip.txt" || die "osls's artifact is wrong"
# Same files? osls also ships package-lock.json, node_modules/.bin and npm's hidden lockfile.
EXTRA_OSLS="$(LC_ALL=C comm -23 "$WORK/osls-zip.txt" "$WORK/ferry-f1.txt" | tr '\n' ' ')"
EXTRA_FERRY="$(LC_ALL=C comm -13 "$WORK/osls-zip.txt" "$WORK/ferry-f1.txt" | tr '\n' ' ')"
log "  1 zip, $(wc -l <"$WORK/osls-zip.txt") files, no dev-only package"
log "  only in osls's zip: ${EXTRA_OSLS:-nothing}"
log "  only in ferry's f1.zip: ${EXTRA_FERRY:-nothing}"
unexpected="$(LC_ALL=C comm -3 "$WORK/osls-zip.txt" "$WORK/ferry-f1.txt" | tr -d '\t' \
    | grep -Ev '^(package-lock\.json|node_modules/\.bin/.*|node_modules/\.package-lock\.json)$' || true)"
[ -z "$unexpected" ] || log "  WARNING: the two tools package different files: $(echo "$unexpected" | tr '\n' ' ')"

# ---------------------------------------------------------------- timing
mkdir -p "$RESULTS"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
HF_JSON="$RESULTS/package-hyperfine-$STAMP.json"
HF_IND_JSON="$RESULTS/package-hyperfine-individually-$STAMP.json"
SUMMARY_JSON="$RESULTS/package-$STAMP.json"

q() { printf "'%s'" "${1//\'/\'\\\'\'}"; }   # single-quote for hyperfine's -N word splitting
# -N: no intermediate shell (prepare commands too), so ferry's milliseconds are not
# dominated by shell startup. Per-command --prepare, in command order:
#   cold: remove ferry's cache and output before every run (and every warmup run);
#   warm: nothing; the warmup run fills the cache the cold runs left empty;
#   osls: remove .serverless (osls cleans it itself anyway) and .ferry, so osls never
#         walks ferry's files (ferry skips .serverless without walking it).
log "hyperfine (--warmup 1): ferry cold, ferry warm, osls package (one service zip);" \
    "osls takes several seconds a run, so this takes a minute or two"
# shellcheck disable=SC2086
hyperfine -N --warmup 1 --export-json "$HF_JSON" ${HYPERFINE_ARGS:-} \
    --prepare "rm -rf .ferry" --command-name "ferry package (cold)" "$(q "$FERRY") package" \
    --prepare "true" --command-name "ferry package (warm)" "$(q "$FERRY") package" \
    --prepare "rm -rf .serverless .ferry" --command-name "osls package" \
        "$(q "$OSLS") package --param=mode=single" >&2 \
    || die "hyperfine failed (a command exited non-zero)"

if [ "$INDIVIDUAL_RUNS" -gt 0 ]; then
    log "hyperfine (--runs $INDIVIDUAL_RUNS): osls package with individually: true;" \
        "a minute or two a run"
    hyperfine -N --runs "$INDIVIDUAL_RUNS" --export-json "$HF_IND_JSON" \
        --prepare "rm -rf .serverless .ferry" --command-name "osls package (individually)" \
        "$(q "$OSLS") package" >&2 \
        || die "hyperfine failed (osls package with individually: true exited non-zero)"
    n="$(find .serverless -maxdepth 1 -name '*.zip' | wc -l)"
    [ "$n" -eq "$FUNCTIONS" ] \
        || die "osls package (individually) wrote $n zips, expected $FUNCTIONS"
    check_zip .serverless/f1.zip "osls (individually)" >/dev/null \
        || die "osls's individually artifact is wrong"
    log "  $n zips, no dev-only package in f1.zip"
else
    HF_IND_JSON=""
fi

# ---------------------------------------------------------------- report
FERRY_VERSION="$("$FERRY" --version 2>/dev/null | head -n1 || echo unknown)"
python3 - "$HF_JSON" "$HF_IND_JSON" "$SUMMARY_JSON" "$TARGET_COLD" "$TARGET_WARM" \
    "$FUNCTIONS" "$FERRY_VERSION" "$OSLS_VERSION" "$(node --version)" "$(npm --version)" \
    "$FERRY_UNIQUE" "$WORK/service.json" "${#OFFLINE[@]}" <<'PY'
import json, os, sys
(hf, hf_ind, out, t_cold, t_warm, n, ferry_v, osls_v, node_v, npm_v, unique, svc,
 offline) = sys.argv[1:]
t_cold, t_warm = float(t_cold), float(t_warm)
res = {r["command"]: r for r in json.load(open(hf))["results"]}
cold, warm, osls = res["ferry package (cold)"], res["ferry package (warm)"], res["osls package"]
ind = json.load(open(hf_ind))["results"][0] if hf_ind else None

def ms(s): return f"{s * 1000:.1f} ms" if s < 1 else f"{s:.2f} s"
def mark(ok): return "PASS" if ok else "FAIL"
def timing(r): return f"{ms(r['mean'])} ± {ms(r['stddev'] or 0)} ({len(r['times'])} runs)"

ratios = {
    "cold": osls["mean"] / cold["mean"],
    "warm": osls["mean"] / warm["mean"],
}
passed = {"cold": ratios["cold"] >= t_cold, "warm": ratios["warm"] >= t_warm}
rows = [
    ("ferry package, cold (rm -rf .ferry)", timing(cold), ""),
    ("ferry package, warm (cache kept)", timing(warm), ""),
    ("osls package (one service zip)", timing(osls), ""),
    ("ratio osls / ferry cold", f"{ratios['cold']:.1f}x",
     f"{mark(passed['cold'])} (target >= {t_cold:g}x)"),
    ("ratio osls / ferry warm", f"{ratios['warm']:.1f}x",
     f"{mark(passed['warm'])} (target >= {t_warm:g}x)"),
]
if ind:
    ratios["individually_cold"] = ind["mean"] / cold["mean"]
    ratios["individually_warm"] = ind["mean"] / warm["mean"]
    rows += [
        ("osls package (individually: true)", timing(ind), ""),
        ("ratio osls individually / ferry cold", f"{ratios['individually_cold']:.1f}x",
         f"({mark(ratios['individually_cold'] >= t_cold)} against >= {t_cold:g}x)"),
        ("ratio osls individually / ferry warm", f"{ratios['individually_warm']:.1f}x",
         f"({mark(ratios['individually_warm'] >= t_warm)} against >= {t_warm:g}x)"),
    ]
w0 = max(len(r[0]) for r in rows); w1 = max(len(r[1]) for r in rows)
print(f"\nferry package vs osls package, {n}-function node service "
      f"(ferry: {n} zips, {unique} distinct)")
print(f"{'metric':<{w0}}  {'value':<{w1}}  target")
print(f"{'-' * w0}  {'-' * w1}  {'-' * 24}")
for a, b, c in rows:
    print(f"{a:<{w0}}  {b:<{w1}}  {c}".rstrip())
if ind:
    print("targets are judged against osls's default mode (one service zip); see bench/README.md")

def stats(r):
    return {"mean_s": r["mean"], "stddev_s": r["stddev"], "median_s": r["median"],
            "min_s": r["min"], "max_s": r["max"], "runs": len(r["times"])}
summary = {
    "benchmark": "package",
    "functions": int(n),
    "service": {k: v for k, v in json.load(open(svc)).items() if k != "prod_samples"},
    "ferry": {"version": ferry_v, "cold": stats(cold), "warm": stats(warm),
              "distinct_zips": int(unique)},
    "osls": {"version": osls_v, "node": node_v, "npm": npm_v,
             "single": stats(osls), "individually": stats(ind) if ind else None,
             "sanity_run_without_network": offline != "0"},
    "ratios": ratios,
    "targets": {"cold_min": t_cold, "warm_min": t_warm, "against": "osls single"},
    "pass": passed,
    "machine": {"cpus": os.cpu_count(), "loadavg": list(os.getloadavg())},
    "hyperfine_json": [os.path.basename(p) for p in (hf, hf_ind) if p],
}
json.dump(summary, open(out, "w"), indent=2)
print(f"\nresults: {out}")
for p in (hf, hf_ind):
    if p:
        print(f"         {p}")
PY
cp "$SUMMARY_JSON" "$RESULTS/package-latest.json"
