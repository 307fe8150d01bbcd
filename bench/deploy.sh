#!/usr/bin/env bash
# Benchmark: `ferry deploy --provider aws` of a generated 50-function service to moto_server,
# serial (`--parallelism 1`) and with the default parallelism, side by side in one run; then
# a no-op redeploy.
#
# The service (bench/gen_deploy_service.py): 50 node functions, each with an http route, its
# own queue (queue trigger) and a schedule: 9 resources per function (role, function,
# integration, route, 2 invoke permissions, queue, event source mapping, rule) plus the HTTP
# API and its stage, 452 in all. moto_server (PyPI moto[server], the version in
# tests/requirements.txt, in a venv under bench/.tools) runs on a free loopback port with
# Lambda's use_docker=false, and is reset between runs so each deploy starts from nothing.
#
# Rounds alternate serial and parallel deploys (BENCH_ROUNDS rounds, default 2), each into
# a fresh moto; the figures are medians. The whole set runs twice: against moto directly, and
# through a proxy that adds 25 ms to every request (real AWS API calls take 20-100 ms). Targets (PASS/FAIL): the default parallelism at least
# 4x faster than --parallelism 1; a no-op redeploy (plan with refresh + nothing to apply)
# under 1 s. Exits non-zero only when a tool fails; a missed target is reported.
#
# Usage: bash bench/deploy.sh
# Environment (all optional):
#   CARGO_TARGET_DIR   cargo target dir (default: $HOME/.cache/ferry-target)
#   FERRY_BIN          use this ferry binary instead of building one
#   BENCH_FUNCTIONS    functions in the generated service (default: 50)
#   BENCH_ROUNDS       serial/parallel rounds (default: 2)
#   BENCH_NOOP_RUNS    no-op redeploys timed (default: 5)
#   BENCH_LATENCY_MS   per-request delays to measure at, in ms (default: "0 25"); a delay other
#                      than 0 puts bench/latency_proxy.py between ferry and moto, because moto
#                      answers in a millisecond or two where AWS APIs take tens, and on moto
#                      alone the deploy is bound by moto's own CPU (reported as "moto CPU")
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
TOOLS="$BENCH_DIR/.tools"
RESULTS="$BENCH_DIR/results"
FUNCTIONS="${BENCH_FUNCTIONS:-50}"
ROUNDS="${BENCH_ROUNDS:-2}"
NOOP_RUNS="${BENCH_NOOP_RUNS:-5}"
LATENCIES="${BENCH_LATENCY_MS:-0 25}"

. "$BENCH_DIR/lib.sh"

command -v python3 >/dev/null || die "python3 is required"
build_ferry

# ---------------------------------------------------------------- moto in a venv
VENV="$TOOLS/moto-venv"
MOTO_REQ="$(grep -E '^moto' "$ROOT/tests/requirements.txt")"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/pip" freeze 2>/dev/null | grep -qi "^moto==${MOTO_REQ#*==}"; then
    log "installing $MOTO_REQ into $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "$MOTO_REQ" >&2 \
        || die "pip install $MOTO_REQ failed"
fi
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
MOTO_URL="http://127.0.0.1:$PORT"
WORK="$(mktemp -d)"
MOTO_PID=""
cleanup() {
    if [ -n "${PROXY_PID:-}" ]; then kill "$PROXY_PID" 2>/dev/null || true; fi
    if [ -n "$MOTO_PID" ]; then kill "$MOTO_PID" 2>/dev/null || true; wait "$MOTO_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
log "starting moto_server on $MOTO_URL"
(cd "$WORK" && exec "$VENV/bin/python" -m moto.server -H 127.0.0.1 -p "$PORT" >"$WORK/moto.log" 2>&1) &
MOTO_PID=$!
for _ in $(seq 1 300); do
    curl -fs "$MOTO_URL/moto-api/config" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fs "$MOTO_URL/moto-api/config" >/dev/null || die "moto_server did not start (see $WORK/moto.log)"

fresh_moto() {
    curl -fs -X POST "$MOTO_URL/moto-api/reset" >/dev/null || die "moto reset failed"
    curl -fs -X POST -H 'content-type: application/json' \
        -d '{"lambda": {"use_docker": false}}' "$MOTO_URL/moto-api/config" >/dev/null \
        || die "moto config failed"
}

export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1
unset AWS_PROFILE

SERVICE="$WORK/service"
python3 "$BENCH_DIR/gen_deploy_service.py" "$SERVICE" "$FUNCTIONS"
# Package once, outside the timings (every deploy uses the same cached zips).
(cd "$SERVICE" && AWS_ENDPOINT_URL="$MOTO_URL" "$FERRY" package --provider aws -q >/dev/null) \
    || die "ferry package failed"

now() { python3 -c 'import time; print(time.monotonic())'; }

# deploy PARALLELISM -> seconds on stdout
deploy() {
    local par="$1" t0 t1
    rm -rf "$SERVICE/.ferry/state"
    t0="$(now)"
    (cd "$SERVICE" && "$FERRY" deploy --provider aws --parallelism "$par" -q >/dev/null 2>"$WORK/deploy.err") \
        || { tail -20 "$WORK/deploy.err" >&2; die "ferry deploy --parallelism $par failed"; }
    t1="$(now)"
    python3 -c "print(f'{$t1 - $t0:.3f}')"
}

# CPU seconds moto_server has used so far (user + system).
moto_cpu() {
    python3 -c "import os; f=open('/proc/$MOTO_PID/stat').read().rsplit(')',1)[1].split(); print((int(f[11])+int(f[12]))/os.sysconf('SC_CLK_TCK'))"
}

DEFAULT_PAR="$("$FERRY" deploy --help | sed -n 's/.*\[default: \([0-9]*\)\].*/\1/p' | head -1)"
mkdir -p "$RESULTS"
OUT="$RESULTS/deploy-$(date -u +%Y%m%dT%H%M%SZ).txt"
: >"$OUT"
PROXY_PID=""
for LATENCY in $LATENCIES; do
    if [ "$LATENCY" = 0 ]; then
        export AWS_ENDPOINT_URL="$MOTO_URL"
    else
        PPORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
        python3 "$BENCH_DIR/latency_proxy.py" "$PPORT" "$MOTO_URL" "$LATENCY" >"$WORK/proxy.log" 2>&1 &
        PROXY_PID=$!
        for _ in $(seq 1 100); do grep -q ready "$WORK/proxy.log" 2>/dev/null && break; sleep 0.1; done
        export AWS_ENDPOINT_URL="http://127.0.0.1:$PPORT"
    fi
    SERIAL=()
    PARALLEL=()
    CPU_S=()
    CPU_P=()
    for r in $(seq 1 "$ROUNDS"); do
        fresh_moto
        c0="$(moto_cpu)"; s="$(deploy 1)"; c1="$(moto_cpu)"
        SERIAL+=("$s"); CPU_S+=("$(python3 -c "print(f'{$c1 - $c0:.2f}')")")
        fresh_moto
        c0="$(moto_cpu)"; p="$(deploy "$DEFAULT_PAR")"; c1="$(moto_cpu)"
        PARALLEL+=("$p"); CPU_P+=("$(python3 -c "print(f'{$c1 - $c0:.2f}')")")
        log "latency ${LATENCY} ms, round $r: --parallelism 1 ${s}s, default ($DEFAULT_PAR) ${p}s"
    done
    # No-op redeploys against the last (parallel) deployment.
    NOOP=()
    for _ in $(seq 1 "$NOOP_RUNS"); do
        t0="$(now)"
        out="$(cd "$SERVICE" && "$FERRY" deploy --provider aws -q 2>/dev/null)" || die "no-op deploy failed"
        t1="$(now)"
        echo "$out" | grep -q "0 to add, 0 to change, 0 to destroy" || die "the redeploy was not a no-op: $out"
        NOOP+=("$(python3 -c "print(f'{$t1 - $t0:.3f}')")")
    done
    RESOURCES="$(cd "$SERVICE" && "$FERRY" state list --provider aws -q | wc -l)"
    if [ -n "$PROXY_PID" ]; then kill "$PROXY_PID" 2>/dev/null || true; wait "$PROXY_PID" 2>/dev/null || true; PROXY_PID=""; fi

    python3 - "$FUNCTIONS" "$RESOURCES" "$DEFAULT_PAR" "$LATENCY" "${SERIAL[*]}" "${PARALLEL[*]}" "${NOOP[*]}" "${CPU_S[*]}" "${CPU_P[*]}" <<'EOF' | tee -a "$OUT"
import statistics, sys
functions, resources, par, latency = sys.argv[1:5]
serial, parallel, noop, cpu_s, cpu_p = ([float(x) for x in a.split()] for a in sys.argv[5:10])
s, p, n = statistics.median(serial), statistics.median(parallel), statistics.median(noop)
ratio = s / p
where = "moto_server directly" if latency == "0" else f"moto_server behind a {latency} ms-per-request proxy"
print(f"ferry deploy --provider aws, {functions} functions, {resources} resources, {where}:")
print(f"  --parallelism 1        median {s:7.2f} s   runs: {', '.join(f'{x:.2f}' for x in serial)}   (moto CPU {statistics.median(cpu_s):.1f} s)")
print(f"  --parallelism {par:<8} median {p:7.2f} s   runs: {', '.join(f'{x:.2f}' for x in parallel)}   (moto CPU {statistics.median(cpu_p):.1f} s)")
print(f"  speed-up               {ratio:7.2f}x  (target >= 4x: {'PASS' if ratio >= 4 else 'FAIL'})")
print(f"  no-op redeploy         median {n:7.3f} s   runs: {', '.join(f'{x:.3f}' for x in noop)}  (target < 1 s: {'PASS' if n < 1 else 'FAIL'})")
EOF
done
log "results in $OUT"
