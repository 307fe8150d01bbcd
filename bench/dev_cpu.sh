#!/usr/bin/env bash
# Where a `ferry dev` request's CPU goes, per process: the CPU time (utime + stime from
# /proc/<pid>/stat) that the ferry process and each of its workers used during a wrk run,
# divided by the requests served. Linux only.
#
# Usage: bash bench/dev_cpu.sh URL [SECONDS]
#   with `ferry dev` already serving URL (e.g. bench/dev.sh's service, or any example:
#   `ferry dev --port 3999 --no-watch` in examples/hello-http, then
#   `bash bench/dev_cpu.sh http://127.0.0.1:3999/hello`).
# Prints wrk's requests/s and p50/p99, then one line per process: pid, name, µs of CPU per
# request, and how much of it was user and how much system (kernel) time.
set -euo pipefail
url="${1:?usage: bench/dev_cpu.sh URL [SECONDS]}"
secs="${2:-10}"
command -v wrk >/dev/null || { echo "wrk is required" >&2; exit 1; }
port="$(python3 -c 'import sys, urllib.parse; print(urllib.parse.urlsplit(sys.argv[1]).port)' "$url")"
# The ferry process listening on the port, and its children (the workers).
ferry_pid="$(ss -ltnpH "sport = :$port" | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -n1)"
[ -n "$ferry_pid" ] || { echo "nothing listens on port $port" >&2; exit 1; }
wrk -t2 -c10 -d3s "$url" >/dev/null # warm-up: the pool grows to what the load needs
pids="$ferry_pid $(pgrep -P "$ferry_pid" | tr '\n' ' ')"
tick="$(getconf CLK_TCK)"
# utime and stime (fields 14 and 15) of each process, in clock ticks.
snap() { for p in $pids; do awk -v p="$p" '{print p, $14, $15}' "/proc/$p/stat" 2>/dev/null || true; done; }
before="$(snap)"
out="$(wrk -t2 -c10 -d"${secs}s" --latency "$url")"
after="$(snap)"
echo "$out" | grep -E "Requests/sec| 50%| 99%"
reqs="$(echo "$out" | awk '/requests in/ {print $1}')"
join <(echo "$before" | sort) <(echo "$after" | sort) | while read -r p u1 s1 u2 s2; do
    user=$(( (u2 - u1) * 1000000 / tick / reqs ))
    sys=$(( (s2 - s1) * 1000000 / tick / reqs ))
    if [ $((user + sys)) -gt 0 ]; then
        echo "pid $p $(cat "/proc/$p/comm" 2>/dev/null) $((user + sys)) us/request (user ${user}, system ${sys})"
    fi
done
