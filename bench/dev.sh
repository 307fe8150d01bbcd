#!/usr/bin/env bash
# Benchmark: `ferry dev` vs serverless-offline 14.8.2 (a plugin of osls@4.3.1, an open-source
# Serverless Framework v3 fork), the local runtime, side by side in one run.
#
# One generated service folder: a Serverless Framework v3 serverless.yml that both tools read,
# with a node function (nodejs20.x, GET /node) and a python function (python3.12, GET /py),
# each returning {statusCode: 200, body: '{"hello":"world"}'}. For each tool and route:
#   throughput  wrk -t2 -c10 -d10s --latency, after a 3 s warm-up (and 2 rounds of 10
#               requests at once, run to the end): requests/s, p50, p99
#   first 200   time from starting the server to the first 200 on the route (a poller that
#               retries every 5 ms, started with the server); a fresh server per sample
# and, for ferry only, GET /node throughput with `--concurrency 1`, `2` and `4` (the default
# is twice the CPUs, at most 8), to help pick the default on small machines.
# Targets (PASS/FAIL): ferry >= 2x serverless-offline's requests/s and <= 1/2 of its p99, on
# both routes; ferry's median first 200 <= 150 ms, on both routes.
# The tools never run at the same time: each server is killed (its whole process group)
# before the next one starts, and the script checks that no worker outlives it.
# Exits non-zero only when a tool fails to install, build, start or answer; a missed target
# is reported, not fatal.
#
# Usage: bash bench/dev.sh
# Environment (all optional):
#   CARGO_TARGET_DIR        cargo target dir (default: $HOME/.cache/ferry-target)
#   FERRY_BIN               use this ferry binary instead of building one (skips cargo build)
#   BENCH_DURATION          seconds of each timed wrk run (default: 10)
#   BENCH_WARMUP            seconds of wrk warm-up before each timed run (default: 3)
#   BENCH_STARTUP_RUNS      first-200 samples per tool and route (default: 5)
#   BENCH_ROUNDS            throughput rounds, the tools alternating in each (default: 3);
#                           the table reports each tool's median and the median of the
#                           per-round ratios, which decides PASS/FAIL
#   BENCH_CONCURRENCY       ferry --concurrency values for the GET /node sweep
#                           (default: "1 2 4"; empty skips the sweep)
#   BENCH_MAX_LOAD          wait until the 1-minute load average is below this before
#                           measuring (default: 1.5)
#   BENCH_LOAD_WAIT         seconds to wait for that at most; 0 does not wait (default: 300)
#   SERVER_TIMEOUT          seconds a server may take to answer its first 200 (default: 120)
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
# osls and the plugin get their own prefix: serverless-offline's dependency tree must not
# reshuffle the osls install that validate.sh and package.sh time (bench/.tools/node_modules).
TOOLS="$BENCH_DIR/.tools/dev"
RESULTS="$BENCH_DIR/results"
OSLS_VERSION="4.3.1"
OFFLINE_VERSION="14.8.2"

# log, die, apt_install: shared by every benchmark script.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# ---------------------------------------------------------------- prerequisites
command -v python3 >/dev/null || die "python3 is required"
command -v node >/dev/null || die "node is required (osls and the node function run on Node.js)"
command -v npm >/dev/null || die "npm is required to install osls and serverless-offline"
command -v wrk >/dev/null || apt_install wrk

# ---------------------------------------------------------------- osls + serverless-offline
OSLS="$TOOLS/node_modules/.bin/osls"
version_of() { node -p "require('$TOOLS/node_modules/$1/package.json').version" 2>/dev/null || true; }
if [ ! -x "$OSLS" ] || [ "$(version_of osls)" != "$OSLS_VERSION" ] \
    || [ "$(version_of serverless-offline)" != "$OFFLINE_VERSION" ]; then
    log "installing osls@$OSLS_VERSION and serverless-offline@$OFFLINE_VERSION into $TOOLS"
    mkdir -p "$TOOLS"
    # --legacy-peer-deps: serverless-offline 14 declares `serverless: ^4` as a peer; osls is
    # the framework here, and npm must not pull in serverless v4 next to it.
    npm install --prefix "$TOOLS" "osls@$OSLS_VERSION" "serverless-offline@$OFFLINE_VERSION" \
        --save-exact --legacy-peer-deps --no-audit --no-fund >&2 \
        || die "npm install of osls@$OSLS_VERSION serverless-offline@$OFFLINE_VERSION failed"
fi
[ -x "$OSLS" ] || die "osls binary missing at $OSLS after install"
[ "$(version_of serverless-offline)" = "$OFFLINE_VERSION" ] \
    || die "serverless-offline@$OFFLINE_VERSION missing in $TOOLS after install"

# serverless-offline needs no setting to stay off the network: no telemetry, no update check,
# its "sponsor" banner is a no-op in 14.8.2, and it calls no AWS API for http events. All the
# measurements run in a network namespace with only loopback, when `unshare -n` works, so a
# network call would fail there. The flags (`osls offline start ...`, see bench/README.md):
#   --host 127.0.0.1  the default is `localhost`
#   --httpPort P      the gateway, on a free port chosen at run time
#   --lambdaPort L    its Lambda Invoke endpoint always listens too (default 3002): a free port
#   --noSponsor       no banner (a no-op in 14.8.2)
# No websocket or ALB listener starts: the service has no such events. Left at their defaults,
# like ferry's: function timeouts stay on (no --noTimeout; ferry enforces them too), node
# handlers run in worker threads (not --useInProcess), python ones in `python3` processes.
export SLS_SCHEMA_CACHE_BASE_DIR="$TOOLS"
export SLS_TELEMETRY_DISABLED=1
export SLS_NOTIFICATIONS_MODE=off
unset NODE_ENV VIRTUAL_ENV

# ---------------------------------------------------------------- ferry (release)
build_ferry   # sets FERRY (lib.sh)

# ---------------------------------------------------------------- service
WORK="$(mktemp -d "${TMPDIR:-/tmp}/ferry-bench-dev.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
SVC="$WORK/svc"
mkdir -p "$SVC" "$WORK/bin"
cat >"$SVC/serverless.yml" <<'YAML'
# Generated by bench/dev.sh; read by `ferry dev` and by `osls offline start`.
service: bench-dev
# osls 4.x refuses '3'; '>=3' suits Serverless Framework v3, osls and ferry alike.
frameworkVersion: '>=3'

# ferry warns that it does not run plugins (plugin-ignored) and goes on.
plugins:
  - serverless-offline

provider:
  name: aws
  runtime: nodejs20.x
  stage: dev
  region: us-east-1

functions:
  node:
    handler: handler.hello
    events:
      - httpApi:
          method: GET
          path: /node
  py:
    handler: handler_py.hello
    runtime: python3.12
    events:
      - httpApi:
          method: GET
          path: /py
YAML
cat >"$SVC/handler.js" <<'JS'
'use strict';

module.exports.hello = async () => ({
  statusCode: 200,
  body: JSON.stringify({ hello: 'world' }),
});
JS
cat >"$SVC/handler_py.py" <<'PY'
import json


def hello(event, context):
    return {"statusCode": 200, "body": json.dumps({"hello": "world"})}
PY

# Both tools start `python3` from PATH, whatever the runtime's minor version (serverless-offline
# runs `python3` for every python3.x runtime, through `/bin/sh -c`; ferry runs `python3` unless
# told otherwise). Put the real interpreter first on PATH, so that neither pays for a pyenv
# shim or similar wrapper on every worker start.
PYTHON_REAL="$(python3 -c 'import os, sys; print(os.path.realpath(sys.executable))')"
ln -s "$PYTHON_REAL" "$WORK/bin/python3"
export PATH="$WORK/bin:$PATH"
PYTHON_VERSION="$(python3 -c 'import platform; print(platform.python_version())')"
log "service: $SVC (python3 is $PYTHON_REAL, $PYTHON_VERSION; node $(node --version))"

# Everything below (servers, poller, wrk) runs in a network namespace of its own, with only
# loopback, where `unshare -n` works: a tool that reached for the network would fail.
NETNS=0
if unshare -n sh -c 'ip link set lo up' >/dev/null 2>&1; then NETNS=1; fi
IN_NETNS=()
if [ "$NETNS" = 1 ]; then
    IN_NETNS=(unshare -n sh -c 'ip link set lo up && exec "$@"' sh)
    log "running the servers in a network namespace with only loopback (unshare -n)"
else
    log "unshare -n does not work here: running on the host network"
fi

# wrk prints a machine-readable summary through this script's done().
cat >"$WORK/report.lua" <<'LUA'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"errors":{"connect":%d,"read":%d,' ..
    '"write":%d,"status":%d,"timeout":%d},"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
LUA

mkdir -p "$RESULTS"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
SUMMARY_JSON="$RESULTS/dev-$STAMP.json"
FERRY_VERSION="$("$FERRY" --version 2>/dev/null | head -n1 || echo unknown)"
# The source the binary was built from (a dirty tree is marked).
GIT_REV="$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)"

# ---------------------------------------------------------------- measure + report
cat >"$WORK/dev_bench.py" <<'PY'
"""Starts, measures and stops the two servers; prints the table and writes the JSON."""
import atexit, http.client, json, os, re, resource, shutil, signal, socket, subprocess, sys, time

cfg = {k[4:].lower(): v for k, v in os.environ.items() if k.startswith("DEV_")}
cfg["netns"] = cfg["netns"] == "1"
SVC, WORK = cfg["svc"], cfg["work"]
DURATION, WARMUP = int(cfg["duration"]), int(cfg["warmup"])
STARTUP_RUNS = int(cfg["startup_runs"])
ROUNDS = max(1, int(cfg["rounds"]))
SWEEP = [int(c) for c in cfg["concurrency"].split()]
MAX_LOAD, LOAD_WAIT = float(cfg["max_load"]), float(cfg["load_wait"])
SERVER_TIMEOUT = float(cfg["server_timeout"])
ROUTES = {"node": "/node", "py": "/py"}
TOOLS = ("ferry", "offline")
NAMES = {"ferry": "ferry dev", "offline": "serverless-offline"}
WRK = ["wrk", "-t2", "-c10", "--latency", "-s", os.path.join(WORK, "report.lua")]
problems = []   # anything odd that the lead should hear about


def log(msg):
    print(f"==> {msg}", file=sys.stderr, flush=True)


def die(msg):
    print(f"error: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load1():
    return os.getloadavg()[0]


# ------------------------------------------------------------------ processes
def proc_stat(pid):
    """(ppid, pgid, state, starttime) of a live process, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(rest[1]), int(rest[2]), rest[0], int(rest[19])


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def all_pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def family(leader, zombies=False):
    """{pid: (starttime, cmd)} of every live descendant of leader or member of its group."""
    stats = {p: s for p in all_pids() if (s := proc_stat(p)) and (zombies or s[2] != "Z")}
    kids, found, todo = {}, {}, [leader]
    for p, s in stats.items():
        kids.setdefault(s[0], []).append(p)
    while todo:
        p = todo.pop()
        for c in kids.get(p, []):
            if c not in found:
                found[c] = True
                todo.append(c)
    found.update({p: True for p, s in stats.items() if s[1] == leader and p != leader})
    return {p: (stats[p][3], cmdline(p)) for p in found}


def alive(pid, starttime):
    s = proc_stat(pid)
    return s is not None and s[2] != "Z" and s[3] == starttime


def near_service():
    """Live processes that run from, or name, the service folder (strays from any run)."""
    out = []
    for p in all_pids():
        if p == os.getpid() or not (s := proc_stat(p)) or s[2] == "Z":
            continue
        try:
            cwd = os.readlink(f"/proc/{p}/cwd")
        except OSError:
            cwd = ""
        c = cmdline(p)
        if cwd == SVC or cwd.startswith(SVC + "/") or SVC in c:
            out.append((p, c))
    return out


LIVE = set()   # servers not stopped yet; killed at exit, whatever ends the script


@atexit.register
def _kill_live():
    for s in list(LIVE):
        try:
            os.killpg(s.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class Server:
    def __init__(self, tool, extra=()):
        self.tool, self.port = tool, free_port()
        if tool == "ferry":
            argv = [cfg["ferry"], "dev", "--port", str(self.port), "--no-watch", *extra]
        else:
            argv = [cfg["osls"], "offline", "start", "--host", "127.0.0.1",
                    "--httpPort", str(self.port), "--lambdaPort", str(free_port()),
                    "--noSponsor", *extra]
        self.argv = argv
        self.logpath = os.path.join(WORK, f"{tool}-{time.monotonic_ns()}.log")
        self.logf = open(self.logpath, "wb")
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen(argv, cwd=SVC, stdin=subprocess.DEVNULL, stdout=self.logf,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        LIVE.add(self)

    def tail(self, n=30):
        try:
            return "\n".join(open(self.logpath, errors="replace").read().splitlines()[-n:])
        except OSError:
            return ""

    def get(self, path, timeout=30.0):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def first_200(self, path):
        """Seconds from Popen to the first 200 on path, retrying every 5 ms."""
        deadline = self.t0 + SERVER_TIMEOUT
        while True:
            try:
                status, _ = self.get(path, timeout=max(1.0, deadline - time.perf_counter()))
                if status == 200:
                    return time.perf_counter() - self.t0
            except (OSError, http.client.HTTPException):
                pass
            if self.proc.poll() is not None:
                self.stop()
                die(f"{NAMES[self.tool]} exited ({self.proc.returncode}) before answering "
                    f"{path}:\n{self.tail()}")
            if time.perf_counter() > deadline:
                self.stop()
                die(f"{NAMES[self.tool]} gave no 200 on {path} within {SERVER_TIMEOUT:.0f} s:\n"
                    f"{self.tail()}")
            time.sleep(0.005)

    def workers(self):
        return sorted(c for _, c in family(self.proc.pid).values())

    def stop(self):
        """SIGTERM to the server, then SIGKILL to its group; reports what outlived what."""
        fam = family(self.proc.pid)
        report = {"workers": len(fam), "left_after_sigterm": [], "left_after_sigkill": []}
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                report["ignored_sigterm"] = True
        # Give workers a moment to notice that their server is gone.
        end = time.monotonic() + 2
        while time.monotonic() < end and any(alive(p, st) for p, (st, _) in fam.items()):
            time.sleep(0.05)
        report["left_after_sigterm"] = [c for p, (st, c) in fam.items() if alive(p, st)]
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for p, (st, _) in fam.items():
            if alive(p, st):
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        time.sleep(0.1)
        report["left_after_sigkill"] = [c for p, (st, c) in fam.items() if alive(p, st)]
        report["left_after_sigkill"] += [c for p, c in near_service()
                                         if c not in report["left_after_sigkill"]]
        self.logf.close()
        LIVE.discard(self)
        for key, what in (("left_after_sigterm", "outlived SIGTERM to the server"),
                          ("left_after_sigkill", "outlived SIGKILL to its process group")):
            for c in report[key]:
                msg = f"{NAMES[self.tool]}: a worker {what}: {c}"
                if msg not in problems:
                    problems.append(msg)
                    log("WARNING: " + msg)
        if report.get("ignored_sigterm"):
            problems.append(f"{NAMES[self.tool]}: did not exit within 5 s of SIGTERM")
        for p, c in near_service():   # last resort: never leave a stray behind
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return report


TICK = os.sysconf("SC_CLK_TCK")


def cpu_ticks(leader):
    """{(pid, starttime): (role, ticks)} for the server and every worker, zombies included.

    A worker's ticks include those of its own reaped children; the server's reaped children
    (workers that exited) are a role of their own."""
    out = {}
    for p in [leader, *family(leader, zombies=True)]:
        try:
            with open(f"/proc/{p}/stat") as f:
                comm, rest = f.read().rsplit(")", 1)
            rest = rest.split()
        except (OSError, IndexError):
            continue
        own, kids = int(rest[11]) + int(rest[12]), int(rest[13]) + int(rest[14])
        if p == leader:
            out[(p, int(rest[19]))] = ("server", own)
            out[("reaped", p)] = ("exited workers", kids)
        else:
            out[(p, int(rest[19]))] = (comm.split("(", 1)[1], own + kids)
    return out


def busy_ticks():
    """CPU ticks the whole machine spent busy (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v[:3]) + sum(v[5:8])   # user nice system, irq softirq steal


def wrk(server, path, seconds):
    url = f"http://127.0.0.1:{server.port}{path}"
    before, busy0 = cpu_ticks(server.proc.pid), busy_ticks()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    r = subprocess.run(WRK + [f"-d{seconds}s", url], capture_output=True, text=True)
    wall = time.monotonic() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    after, busy1 = cpu_ticks(server.proc.pid), busy_ticks()
    m = re.search(r"^WRKJSON (.*)$", r.stdout, re.M)
    if r.returncode != 0 or not m:
        server.stop()
        die(f"wrk failed on {url} (exit {r.returncode}):\n{r.stdout}{r.stderr}")
    d = json.loads(m.group(1))
    d["rps"] = d["requests"] / (d["duration_us"] / 1e6)
    d["errors_total"] = sum(d["errors"].values())
    d["text"] = r.stdout.replace(m.group(0), "").strip()
    # CPU time of the server and its workers per request (a worker that exited during the run
    # is missed). Less sensitive to other load on the machine than requests/s.
    cpu = {}
    for key, (role, t) in after.items():
        cpu[role] = cpu.get(role, 0) + t - before.get(key, (role, 0))[1]
    for key, (role, t) in before.items():
        if key not in after:   # exited and reaped: its ticks moved to the server's children
            cpu["exited workers"] = cpu.get("exited workers", 0) - t
    cpu = {k: v for k, v in cpu.items() if v}
    d["cpu_s"] = {k: v / TICK for k, v in cpu.items()}
    # Worker processes that started during the run (each start delays a request); `sh` is
    # the shell that serverless-offline starts each python worker through.
    d["workers_started"] = sum(1 for k, (role, _) in after.items() if k not in before
                               and role not in ("server", "exited workers", "sh"))
    d["cpu_us_per_request"] = sum(cpu.values()) / TICK / max(d["requests"], 1) * 1e6
    # What else ran meanwhile: the machine's busy time less the server's and wrk's, in cores.
    wrk_s = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    d["wrk_cpu_s"] = wrk_s
    d["other_cores"] = max(0.0, ((busy1 - busy0 - sum(cpu.values())) / TICK - wrk_s) / wall)
    return d


def counts(cmds):
    """'8 node, 1 python3' from command lines."""
    n = {}
    for c in cmds:
        exe = os.path.basename(c.split()[0]) if c.split() else "?"
        n[exe] = n.get(exe, 0) + 1
    return ", ".join(f"{v} {k}" for k, v in sorted(n.items())) or "none"


def settle(server, path, n=10, rounds=2):
    """n requests at once, run to the end, `rounds` times.

    wrk ends every run, the warm-up too, with requests in flight. ferry dev drops a worker
    whose client went away, so without this the timed run would start with too few warm
    workers and time their starts. Complete requests from n clients fill the pool again."""
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(n) as ex:
        for _ in range(rounds):
            list(ex.map(lambda _: server.get(path), range(n)))


def throughput(tool, routes, extra=()):
    s = Server(tool, extra)
    for path in routes.values():
        s.first_200(path)
    out = {}
    for name, path in routes.items():
        if WARMUP > 0:
            wrk(s, path, WARMUP)
        settle(s, path)
        load = load1()
        d = wrk(s, path, DURATION)
        d["load1_before"] = load
        d["workers_after"] = s.workers()
        out[name] = d
        log(f"{NAMES[tool]} {' '.join(extra)} GET {path}: {d['rps']:.0f} req/s, "
            f"p50 {d['p50_us'] / 1000:.2f} ms, p99 {d['p99_us'] / 1000:.2f} ms, "
            f"{d['errors_total']} errors, {d['cpu_us_per_request']:.0f} us CPU/request "
            f"({', '.join(f'{k} {v:.2f} s' for k, v in sorted(d['cpu_s'].items()))}), "
            f"processes after: {counts(d['workers_after'])}, {d['workers_started']} started "
            f"during the run; load {load:.2f}, other processes used "
            f"{d['other_cores']:.2f} cores")
        if d["requests"] - d["errors"]["status"] <= 0:
            s.stop()
            die(f"{NAMES[tool]} answered no GET {path} with a 2xx under wrk:\n{d['text']}")
        if d["errors_total"]:
            problems.append(f"{NAMES[tool]} {' '.join(extra)} GET {path}: wrk counted "
                            f"errors {d['errors']}")
    out["stop"] = s.stop()
    return out


# ------------------------------------------------------------------ sanity
sanity = {}
for tool in TOOLS:
    log(f"sanity run: {NAMES[tool]}")
    s = Server(tool)
    for name, path in ROUTES.items():
        s.first_200(path)
        status, body = s.get(path)
        if status != 200 or json.loads(body) != {"hello": "world"}:
            s.stop()
            die(f"{NAMES[tool]} GET {path}: {status} {body!r}, expected 200 {{\"hello\":\"world\"}}")
    listen = ""
    if shutil.which("ss"):   # iproute2; without it the check is skipped
        listen = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True).stdout
    pids = {s.proc.pid, *family(s.proc.pid)}
    socks = sorted({ln.split()[3] for ln in listen.splitlines()
                    if any(f"pid={p}," in ln for p in pids)})
    sanity[tool] = {"listening": socks, "workers": s.workers()}
    if any(not a.startswith("127.") for a in socks):
        problems.append(f"{NAMES[tool]} listens beyond loopback: {socks}")
    sanity[tool]["stop"] = s.stop()
    log(f"  listening on {', '.join(socks)}")

# ------------------------------------------------------------------ wait for a quiet machine
waited, start_load = 0.0, load1()
if LOAD_WAIT > 0 and start_load >= MAX_LOAD:
    log(f"1-minute load average is {start_load:.2f}; waiting up to {LOAD_WAIT:.0f} s for "
        f"< {MAX_LOAD}")
    t = time.monotonic()
    while load1() >= MAX_LOAD and time.monotonic() - t < LOAD_WAIT:
        time.sleep(5)
    waited = time.monotonic() - t
    log(f"load average now {load1():.2f} after {waited:.0f} s")
load_at_start = list(os.getloadavg())

# ------------------------------------------------------------------ first 200
log(f"first 200: {STARTUP_RUNS} fresh starts per tool and route (interleaved)")
startup = {t: {r: [] for r in ROUTES} for t in TOOLS}
startup_workers = {t: {} for t in TOOLS}
for i in range(STARTUP_RUNS):
    for tool in TOOLS:
        for name, path in ROUTES.items():
            s = Server(tool)
            startup[tool][name].append(s.first_200(path))
            startup_workers[tool][name] = s.workers()
            s.stop()
    log(f"  run {i + 1}: " + ", ".join(
        f"{NAMES[t]} /{r} {startup[t][r][-1] * 1000:.0f} ms" for t in TOOLS for r in ROUTES))

# ------------------------------------------------------------------ throughput
log(f"throughput: wrk -t2 -c10 -d{DURATION}s --latency after a {WARMUP} s warm-up and 2 rounds "
    f"of 10 requests at once; {ROUNDS} round(s), the tools alternating")
# Rounds alternate the tools, so that a slow spell of the machine hits both; each round's
# ratio compares two runs a minute apart, and the median of the ratios decides.
rounds = []
for i in range(ROUNDS):
    if ROUNDS > 1:
        log(f"round {i + 1} of {ROUNDS}")
    rounds.append({tool: throughput(tool, ROUTES) for tool in TOOLS})


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def middle(tool, route):
    """The tool's run on the route with the median requests/s (its p50, p99, CPU with it)."""
    runs = sorted((rd[tool][route] for rd in rounds), key=lambda d: d["rps"])
    return runs[(len(runs) - 1) // 2]


tp = {tool: {r: middle(tool, r) for r in ROUTES} for tool in TOOLS}

sweep = {}
for c in SWEEP:
    sweep[c] = throughput("ferry", {"node": "/node"}, ("--concurrency", str(c)))
load_at_end = list(os.getloadavg())

# ------------------------------------------------------------------ report
def ms(us):
    return f"{us / 1000:.2f} ms"


def mark(ok):
    return "PASS" if ok else "FAIL"


passes, rows = {}, []
for r in ROUTES:
    f, o = tp["ferry"][r], tp["offline"][r]
    rps_ratios = [rd["ferry"][r]["rps"] / rd["offline"][r]["rps"] for rd in rounds]
    p99_ratios = [rd["ferry"][r]["p99_us"] / rd["offline"][r]["p99_us"] for rd in rounds]
    rps_ratio, p99_ratio = median(rps_ratios), median(p99_ratios)
    passes[f"{r}_rps"] = rps_ratio >= 2
    passes[f"{r}_p99"] = p99_ratio <= 0.5
    per_round = lambda xs, f: ", ".join(f.format(x) for x in xs)
    rows += [
        (f"GET /{r} req/s", f"{median([rd['ferry'][r]['rps'] for rd in rounds]):,.0f}",
         f"{median([rd['offline'][r]['rps'] for rd in rounds]):,.0f}", f"{rps_ratio:.2f}x",
         f"{mark(passes[f'{r}_rps'])} (>= 2x)"),
        (f"GET /{r} p50", ms(f["p50_us"]), ms(o["p50_us"]), f"{f['p50_us'] / o['p50_us']:.2f}x", ""),
        (f"GET /{r} p99", ms(median([rd["ferry"][r]["p99_us"] for rd in rounds])),
         ms(median([rd["offline"][r]["p99_us"] for rd in rounds])), f"{p99_ratio:.2f}x",
         f"{mark(passes[f'{r}_p99'])} (<= 0.5x)"),
        (f"GET /{r} CPU/request", f"{f['cpu_us_per_request']:.0f} us",
         f"{o['cpu_us_per_request']:.0f} us",
         f"{f['cpu_us_per_request'] / o['cpu_us_per_request']:.2f}x", ""),
        (f"GET /{r} worker starts", str(f["workers_started"]), str(o["workers_started"]), "", ""),
        (f"GET /{r} other load", f"{f['other_cores']:.2f} cores", f"{o['other_cores']:.2f} cores",
         "", ""),
        (f"GET /{r} errors", str(f["errors_total"]), str(o["errors_total"]), "", ""),
    ]
    if ROUNDS > 1:
        rows += [
            (f"GET /{r} req/s by round", per_round([rd["ferry"][r]["rps"] for rd in rounds], "{:,.0f}"),
             per_round([rd["offline"][r]["rps"] for rd in rounds], "{:,.0f}"),
             per_round(rps_ratios, "{:.2f}x"), ""),
            (f"GET /{r} p99 by round", per_round([rd["ferry"][r]["p99_us"] / 1000 for rd in rounds], "{:.2f}"),
             per_round([rd["offline"][r]["p99_us"] / 1000 for rd in rounds], "{:.2f}"),
             per_round(p99_ratios, "{:.2f}x"), ""),
        ]
for r in ROUTES:
    fm, om = median(startup["ferry"][r]), median(startup["offline"][r])
    passes[f"{r}_first_200"] = fm <= 0.150
    span = lambda xs: f"{min(xs) * 1000:.0f}-{max(xs) * 1000:.0f}"
    rows.append((f"first 200 /{r} (median)", f"{fm * 1000:.0f} ms", f"{om * 1000:,.0f} ms",
                 f"{fm / om:.3f}x", f"{mark(passes[f'{r}_first_200'])} (ferry <= 150 ms)"))
    rows.append((f"first 200 /{r} (min-max)", f"{span(startup['ferry'][r])} ms",
                 f"{span(startup['offline'][r])} ms", "", ""))

head = ("metric", "ferry dev", "serverless-offline", "ferry/so", "target")
w = [max(len(str(x[i])) for x in rows + [head]) for i in range(5)]
line = lambda x: "  ".join(f"{str(v):<{w[i]}}" for i, v in enumerate(x)).rstrip()
print(f"\nferry dev vs serverless-offline {cfg['offline_version']} (osls {cfg['osls_version']}), "
      f"hello handlers; wrk -t2 -c10 -d{DURATION}s, {ROUNDS} round(s); first 200 over "
      f"{STARTUP_RUNS} starts")
print(line(head))
print("  ".join("-" * n for n in w))
for x in rows:
    print(line(x))

if sweep:
    srow = lambda c, d: (c, f"{d['rps']:,.0f}", ms(d["p50_us"]), ms(d["p99_us"]),
                         f"{d['cpu_us_per_request']:.0f} us",
                         str(d["workers_started"]),
                         str(sum(1 for w in d["workers_after"] if w.startswith("node "))),
                         str(d["errors_total"]), f"{d['other_cores']:.2f} cores")
    srows = [srow(str(c), d["node"]) for c, d in sorted(sweep.items())]
    srows.append(srow(f"default ({min(8, 2 * (os.cpu_count() or 1))})", tp["ferry"]["node"]))
    sh = ("--concurrency", "req/s", "p50", "p99", "CPU/request", "worker starts",
          "node workers", "errors", "other load")
    sw = [max(len(x[i]) for x in srows + [sh]) for i in range(len(sh))]
    fmt = lambda x: "  ".join(f"{v:<{sw[i]}}" for i, v in enumerate(x)).rstrip()
    print(f"\nferry dev --concurrency N, GET /node (wrk -t2 -c10 -d{DURATION}s)")
    print(fmt(sh))
    print("  ".join("-" * n for n in sw))
    for x in srows:
        print(fmt(x))

print("\nreq/s and p99: medians over the rounds, and the median of the per-round ratios (PASS/FAIL);"
      "\np50, CPU/request, worker starts, other load, errors: of each tool's median-req/s run.")
print("p50/p99: wrk's, which corrects for coordinated omission: one stalled request adds "
      "synthetic samples,\nso a single worker start (seconds under load) can lift p99 a lot. "
      "CPU/request: CPU time of the server\nand its workers per request. worker starts: worker "
      "processes started during the timed run. other load:\nCPU that other processes used during "
      "the run, in cores (noise). node workers: alive after the run.")
print(f"load average: {start_load:.2f} before (waited {waited:.0f} s), "
      f"{load_at_start[0]:.2f} at the start, {load_at_end[0]:.2f} at the end; {os.cpu_count()} CPUs")
if problems:
    print("\nnotes:")
    for p in problems:
        print(f"  - {p}")

strip = lambda d: {k: v for k, v in d.items() if k != "text"}
summary = {
    "benchmark": "dev",
    "wrk": {"threads": 2, "connections": 10, "duration_s": DURATION, "warmup_s": WARMUP},
    "startup_runs": STARTUP_RUNS,
    "rounds": ROUNDS,
    "ferry": {"version": cfg["ferry_version"], "git": cfg["git"],
              "built_here": not cfg.get("ferry_bin"),
              "command": "ferry dev --port PORT --no-watch",
              "throughput": {r: strip(tp["ferry"][r]) for r in ROUTES},
              "throughput_rounds": [{r: strip(rd["ferry"][r]) for r in ROUTES} for rd in rounds],
              "stop": [rd["ferry"]["stop"] for rd in rounds],
              "first_200_s": startup["ferry"],
              "first_200_median_s": {r: median(v) for r, v in startup["ferry"].items()},
              "workers_after_first_200": startup_workers["ferry"]},
    "serverless_offline": {
        "version": cfg["offline_version"], "osls": cfg["osls_version"], "node": cfg["node"],
        "command": "osls offline start --host 127.0.0.1 --httpPort PORT --lambdaPort PORT2 "
                   "--noSponsor",
        "throughput": {r: strip(tp["offline"][r]) for r in ROUTES},
        "throughput_rounds": [{r: strip(rd["offline"][r]) for r in ROUTES} for rd in rounds],
        "stop": [rd["offline"]["stop"] for rd in rounds],
        "first_200_s": startup["offline"],
        "first_200_median_s": {r: median(v) for r, v in startup["offline"].items()},
        "workers_after_first_200": startup_workers["offline"]},
    "concurrency_sweep": {str(c): {**strip(d["node"]), "stop": d["stop"]} for c, d in sweep.items()},
    "python": {"path": cfg["python"], "version": cfg["python_version"]},
    "network_namespace": cfg["netns"],
    "sanity": sanity,
    "targets": {"rps_ratio_min": 2.0, "p99_ratio_max": 0.5, "ferry_first_200_s_max": 0.150},
    "pass": passes,
    "problems": problems,
    "machine": {"cpus": os.cpu_count(), "loadavg_before_wait": start_load,
                "waited_for_load_s": round(waited, 1), "max_load": MAX_LOAD,
                "loadavg": load_at_start, "loadavg_end": load_at_end},
}
json.dump(summary, open(cfg["out"], "w"), indent=2)
print(f"\nresults: {cfg['out']}")
PY

# Settings go to the Python part through the environment (DEV_*), so no quoting can break.
DEV_FERRY_BIN="${FERRY_BIN:-}" DEV_SVC="$SVC" DEV_WORK="$WORK" DEV_FERRY="$FERRY" DEV_OSLS="$OSLS" \
DEV_FERRY_VERSION="$FERRY_VERSION" DEV_GIT="$GIT_REV" DEV_OSLS_VERSION="$OSLS_VERSION" \
DEV_OFFLINE_VERSION="$OFFLINE_VERSION" DEV_NODE="$(node --version)" \
DEV_PYTHON="$PYTHON_REAL" DEV_PYTHON_VERSION="$PYTHON_VERSION" DEV_NETNS="$NETNS" \
DEV_OUT="$SUMMARY_JSON" DEV_DURATION="${BENCH_DURATION:-10}" DEV_WARMUP="${BENCH_WARMUP:-3}" \
DEV_STARTUP_RUNS="${BENCH_STARTUP_RUNS:-5}" DEV_ROUNDS="${BENCH_ROUNDS:-3}" DEV_CONCURRENCY="${BENCH_CONCURRENCY-1 2 4}" \
DEV_MAX_LOAD="${BENCH_MAX_LOAD:-1.5}" DEV_LOAD_WAIT="${BENCH_LOAD_WAIT:-300}" \
DEV_SERVER_TIMEOUT="${SERVER_TIMEOUT:-120}" \
    "${IN_NETNS[@]}" python3 "$WORK/dev_bench.py"
cp "$SUMMARY_JSON" "$RESULTS/dev-latest.json"
