"""Replays Azure-shaped invocations through ferry's Python adapter in an unpacked app folder.

Usage: python replay.py APP_DIR < cases.json > results.json

Each case is {"function": <azure function>, "kind": "http"|"queue", ...}. Requests and queue
messages are decoded by the converters of `azure.functions` (PyPI, the library the Azure
Functions Python worker uses to turn the host's RPC data into the objects a function gets), and
HTTP results are encoded by its HttpResponseConverter, so the adapter sees and returns exactly
what it would under the worker. What is not reproduced: the host itself (routing, the RPC
channel, retries).
"""

import base64
import importlib.util
import json
import sys
import types
import uuid

import azure.functions as func
from azure.functions import http as func_http
from azure.functions import queue as func_queue
from azure.functions.meta import Datum


def load_adapter(app_dir):
    spec = importlib.util.spec_from_file_location("ferry_adapter", f"{app_dir}/ferry/adapter.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def context(name):
    return types.SimpleNamespace(
        invocation_id=str(uuid.uuid4()), function_name=name, function_directory=name
    )


def http_case(adapter, case):
    body = base64.b64decode(case.get("body_b64", ""))
    headers = {k.lower(): v for k, v in case.get("headers", {}).items()}
    query = {}
    if "?" in case["url"]:
        for part in case["url"].split("?", 1)[1].split("&"):
            if part:
                k, _, v = part.partition("=")
                query[k] = v
    datum = Datum(
        type="http",
        value={
            "method": Datum(type="string", value=case["method"]),
            "url": Datum(type="string", value=case["url"]),
            "headers": {k: Datum(type="string", value=v) for k, v in headers.items()},
            "query": {k: Datum(type="string", value=v) for k, v in query.items()},
            "params": {k: Datum(type="string", value=v) for k, v in case.get("params", {}).items()},
            "body": Datum(type="bytes", value=body),
        },
    )
    req = func_http.HttpRequestConverter.decode(datum, trigger_metadata={})
    resp = adapter.http(req, context(case["function"]))
    out = func_http.HttpResponseConverter.encode(resp, expected_type=func.HttpResponse).value
    return {
        "status": int(out["status_code"].value),
        "headers": {k.lower(): d.value for k, d in out["headers"].items()},
        "cookies": [c.output(header="").strip() for c in out["cookies"] or []],
        "body_b64": base64.b64encode(out["body"].value).decode(),
    }


def queue_case(adapter, case):
    meta = {
        "Id": Datum(type="string", value=case.get("id", str(uuid.uuid4()))),
        "DequeueCount": Datum(type="int", value=case.get("dequeueCount", 1)),
        "InsertionTime": Datum(type="string", value="2026-12-02T10:00:00+00:00"),
        "PopReceipt": Datum(type="string", value="pop"),
    }
    msg = func_queue.QueueMessageInConverter.decode(
        Datum(type="string", value=case["body"]), trigger_metadata=meta
    )
    try:
        adapter.queue(msg, context(case["function"]))
        return {"ok": True}
    except Exception as e:  # noqa: BLE001 - the outcome is what is compared
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}


def main():
    adapter = load_adapter(sys.argv[1])
    results = []
    for case in json.load(sys.stdin):
        run = http_case if case["kind"] == "http" else queue_case
        results.append(run(adapter, case))
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
