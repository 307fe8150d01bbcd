#!/usr/bin/env python3
"""Start-up of ferry's node runtime shim: from spawning `node <shim>` to its first
`GET /2018-06-01/runtime/invocation/next`, against a socket standing in for the Runtime API.

Usage: python3 bench/shim_start.py SHIM [SHIM ...] [--runs N]
Compare two versions, e.g. the committed one and an older one from git:
    git show REV:templates/runtime/node/bootstrap.mjs > /tmp/old.mjs
    python3 bench/shim_start.py /tmp/old.mjs templates/runtime/node/bootstrap.cjs
The shims run interleaved, with a CommonJS hello handler, without NODE_EXTRA_CA_CERTS (ferry
dev does not pass it to workers). Prints the median, min and max per shim, in ms.
"""
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def once(shim, task):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    env = {k: v for k, v in os.environ.items() if k != "NODE_EXTRA_CA_CERTS"}
    env.update(
        AWS_LAMBDA_RUNTIME_API="127.0.0.1:%d" % server.getsockname()[1],
        _HANDLER="handler.hello",
        LAMBDA_TASK_ROOT=task,
    )
    start = time.perf_counter()
    proc = subprocess.Popen(["node", shim], cwd=task, env=env)
    conn, _ = server.accept()
    request = conn.recv(4096)
    took = (time.perf_counter() - start) * 1000
    proc.kill()
    proc.wait()
    conn.close()
    server.close()
    if b"/invocation/next" not in request:
        sys.exit("unexpected first request: %r" % request)
    return took


def main():
    args = sys.argv[1:]
    runs = 25
    if "--runs" in args:
        i = args.index("--runs")
        runs = int(args[i + 1])
        del args[i : i + 2]
    if not args:
        sys.exit(__doc__)
    shims = [os.path.abspath(a) for a in args]
    with tempfile.TemporaryDirectory() as task:
        with open(os.path.join(task, "handler.js"), "w") as f:
            f.write('exports.hello = async () => ({statusCode: 200, body: "{}"});\n')
        times = {s: [] for s in shims}
        for _ in range(runs):
            for s in shims:
                times[s].append(once(s, task))
    for s, t in times.items():
        print("%-60s median %6.1f ms  min %6.1f  max %6.1f" % (s, statistics.median(t), min(t), max(t)))


if __name__ == "__main__":
    main()
