"""End-to-end tests of ferry's Google Cloud adapters (templates/gcp/{node,python}).

Each test class assembles a function's source folder in a tempdir in the layout
`ferry package --provider gcp` deploys (the function's files, `ferry/functions.json`, the
shared Lambda layer from templates/adapters, and `ferry/index.js` with a root package.json, or
`main.py` at the root), starts Google's real Functions Framework on it, and sends HTTP
requests, Pub/Sub pushes, Cloud Scheduler posts and Eventarc CloudEvents over 127.0.0.1.
The handlers are tests/fixtures/echo-event's echo handlers (wrapped to record each event in a
file), examples/hello-http and examples/queue-worker. Standard library only:

    python -m unittest discover -s templates/gcp/tests

Node tests need `node` and $FERRY_GCP_FF_NODE (the path of the npm package
@google-cloud/functions-framework's build/src/main.js; scripts/test.sh installs it); Python
tests need the `functions_framework` module (PyPI functions-framework) in this interpreter.
Without them the tests are skipped.
"""

import base64
import http.client
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATES = os.path.dirname(os.path.dirname(HERE))
REPO = os.path.dirname(TEMPLATES)
NODE = os.environ.get("NODE") or shutil.which("node")
FF_NODE = os.environ.get("FERRY_GCP_FF_NODE")
HAS_FF_PYTHON = importlib.util.find_spec("functions_framework") is not None

ECHO = os.path.join(REPO, "tests", "fixtures", "echo-event")
HELLO = os.path.join(REPO, "examples", "hello-http")
QUEUE_WORKER = os.path.join(REPO, "examples", "queue-worker")

TIMEOUT = 30  # seconds for a framework to start or answer

# An echo handler that also appends its event to $RECORD, and fails a queue message whose body
# is "fail" (in batchItemFailures) or throws on a topic message "throw".
RECORDER_JS = """\
'use strict';
const fs = require('node:fs');
const echo = require('./echo.js');
exports.handler = async (event, context) => {
  fs.appendFileSync(process.env.RECORD, JSON.stringify({ event, context: { functionName: context.functionName, awsRequestId: context.awsRequestId, logGroupName: context.logGroupName, memoryLimitInMB: context.memoryLimitInMB } }) + '\\n');
  const r = (event.Records || [])[0] || {};
  if (r.body === 'fail') return { batchItemFailures: [{ itemIdentifier: r.messageId }] };
  if (r.Sns && r.Sns.Message === 'throw') throw new Error('thrown on purpose');
  return echo.handler(event, context);
};
"""

RECORDER_PY = """\
import json
import os

import echo


def handler(event, context):
    with open(os.environ["RECORD"], "a", encoding="utf-8") as f:
        f.write(json.dumps({"event": event, "context": {
            "functionName": context.function_name, "awsRequestId": context.aws_request_id,
            "logGroupName": context.log_group_name, "memoryLimitInMB": context.memory_limit_in_mb,
        }}) + "\\n")
    records = event.get("Records") or [{}]
    if records[0].get("body") == "fail":
        return {"batchItemFailures": [{"itemIdentifier": records[0]["messageId"]}]}
    if (records[0].get("Sns") or {}).get("Message") == "throw":
        raise RuntimeError("thrown on purpose")
    return echo.handler(event, context)
"""


def event_triggers():
    return {
        "queue0": {"kind": "queue", "queue": "jobs", "batchSize": 1,
                   "id": "projects/my-proj/topics/svc-dev-jobs"},
        "schedule0": {"kind": "schedule", "rule": "svc-dev-nightly-schedule0", "input": None},
        "storage0": {"kind": "storage", "bucket": "uploads", "events": ["created", "removed"],
                     "prefix": "in/", "suffix": ".csv", "id": "the-real-bucket-name"},
        "topic0": {"kind": "topic", "topic": "news", "id": "projects/my-proj/topics/svc-dev-news"},
    }


def http_trigger(method, path, payload="2.0", cors=False):
    return {"kind": "http", "method": method, "path": path, "payload": payload, "cors": cors}


def function(name, handler, http=(), events=None, memory=256, timeout=6):
    return {"function": name, "handler": handler, "memory": memory, "timeout": timeout,
            "http": list(http), "events": events or {}}


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def build_app(dest, runtime, files, functions, service="svc"):
    """The GCP source folder: `files` ({path in the app: source path or text}), the manifest and
    the adapter."""
    for rel, src in files.items():
        target = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if os.path.isfile(src):
            shutil.copyfile(src, target)
        else:
            write(target, src)
    manifest = {"service": service, "stage": "dev", "region": "europe-west1",
                "project": "my-proj", "functions": functions}
    write(os.path.join(dest, "ferry", "functions.json"), json.dumps(manifest, indent=2))
    if runtime == "node":
        shutil.copyfile(os.path.join(TEMPLATES, "adapters", "node", "lambda.js"),
                        os.path.join(dest, "ferry", "lambda.js"))
        shutil.copyfile(os.path.join(TEMPLATES, "gcp", "node", "index.js"),
                        os.path.join(dest, "ferry", "index.js"))
        pkg_path = os.path.join(dest, "package.json")
        pkg = {}
        if os.path.isfile(pkg_path):
            with open(pkg_path, encoding="utf-8") as f:
                pkg = json.load(f)
        pkg["main"] = "ferry/index.js"
        write(pkg_path, json.dumps(pkg, indent=2))
    else:
        shutil.copyfile(os.path.join(TEMPLATES, "adapters", "python", "ferry_lambda.py"),
                        os.path.join(dest, "ferry", "ferry_lambda.py"))
        shutil.copyfile(os.path.join(TEMPLATES, "gcp", "python", "main.py"),
                        os.path.join(dest, "main.py"))
    return dest


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Framework:
    """A Functions Framework serving `app` with FERRY_FUNCTION=`fn` on a free port."""

    def __init__(self, runtime, app, fn, env=None):
        self.port = free_port()
        if runtime == "node":
            cmd = [NODE, FF_NODE, "--target=ferry", "--source=" + app, "--port=%d" % self.port]
        else:
            cmd = [sys.executable, "-m", "functions_framework", "--target=ferry",
                   "--source=" + os.path.join(app, "main.py"), "--port=%d" % self.port]
        full_env = dict(os.environ, FERRY_FUNCTION=fn, **(env or {}))
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(cmd, cwd=app, env=full_env, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.time() + TIMEOUT
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("the framework exited: %s" % self.output())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("the framework did not listen in %d s: %s" % (TIMEOUT, self.output()))

    def output(self):
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def request(self, method, target, body=b"", headers=None):
        """(status, {lower-case header: [values]}, body bytes); `target` is sent as is."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
        try:
            c.putrequest(method, target, skip_accept_encoding=True)
            for k, v in (headers or {}).items():
                c.putheader(k, v)
            if body or method in ("POST", "PUT"):
                c.putheader("Content-Length", str(len(body)))
            c.endheaders(body)
            r = c.getresponse()
            got = {}
            for k, v in r.getheaders():
                got.setdefault(k.lower(), []).append(v)
            return r.status, got, r.read()
        finally:
            c.close()


def push(data, message_id="m-1", attributes=None, attempt=None):
    body = {"message": {"data": base64.b64encode(data.encode()).decode(),
                        "attributes": attributes or {}, "messageId": message_id,
                        "publishTime": "2026-12-02T10:00:00.123Z"},
            "subscription": "projects/my-proj/subscriptions/sub"}
    if attempt is not None:
        body["deliveryAttempt"] = attempt
    return json.dumps(body).encode()


def gcs_object(name, size=123):
    return {"kind": "storage#object", "bucket": "the-real-bucket-name", "name": name,
            "size": str(size), "etag": "CNiq4YfE9/ICEAE=", "generation": "1733133600123456",
            "md5Hash": base64.b64encode(bytes(range(16))).decode(),
            "contentType": "text/csv"}


def binary_cloud_event(name, kind="finalized", event_id="ce-1"):
    headers = {"ce-specversion": "1.0", "ce-type": "google.cloud.storage.object.v1." + kind,
               "ce-id": event_id, "ce-time": "2026-12-02T10:00:00.5Z",
               "ce-source": "//storage.googleapis.com/projects/_/buckets/the-real-bucket-name",
               "ce-subject": "objects/" + name, "content-type": "application/json"}
    return headers, json.dumps(gcs_object(name)).encode()


def structured_cloud_event(name, kind="deleted", event_id="ce-2"):
    body = {"specversion": "1.0", "type": "google.cloud.storage.object.v1." + kind,
            "id": event_id, "time": "2026-12-02T10:00:01Z",
            "source": "//storage.googleapis.com/projects/_/buckets/the-real-bucket-name",
            "subject": "objects/" + name, "datacontenttype": "application/json",
            "data": gcs_object(name)}
    return {"content-type": "application/cloudevents+json"}, json.dumps(body).encode()


class AdapterCases:
    """The cases both frameworks must pass; subclasses set RUNTIME and build `cls.app`."""

    RUNTIME = None
    ECHO_ROUTE = None  # (function, method, target, expected pathParameters)

    @classmethod
    def start(cls, fn, **env):
        f = Framework(cls.RUNTIME, cls.app, fn, env=dict(env, RECORD=cls.record))
        cls.servers.append(f)
        return f

    @classmethod
    def tearDownClass(cls):
        for s in cls.servers:
            s.stop()
        cls.tmp.cleanup()

    def recorded(self):
        if not os.path.exists(self.record):
            return []
        with open(self.record, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    def deliver(self, server, event_id, body, headers=None):
        before = len(self.recorded())
        status, got, out = server.request("POST", "/_ferry/events/" + event_id, body,
                                          dict({"content-type": "application/json"}, **(headers or {})))
        return status, out, self.recorded()[before:]

    # --- HTTP through the framework -------------------------------------------------------

    def test_http_route_builds_the_api_gateway_event(self):
        status, headers, body = self.echo.request(
            self.ECHO_ROUTE[1], self.ECHO_ROUTE[2], b'{"k":"\\u00e9"}',
            {"content-type": "application/json", "cookie": "a=1; b=2", "x-cloud-trace-context": "abc123/1;o=1"})
        self.assertEqual(status, 200, body)
        self.assertEqual(headers["content-type"], ["application/json"])
        event = json.loads(body)
        path, _, query = self.ECHO_ROUTE[2].partition("?")
        self.assertEqual(event["version"], "2.0")
        self.assertEqual(event["rawPath"], path)
        self.assertEqual(event["rawQueryString"], query)
        self.assertEqual(event["pathParameters"], self.ECHO_ROUTE[3])
        self.assertEqual(event["cookies"], ["a=1", "b=2"])
        self.assertNotIn("cookie", event["headers"])
        self.assertEqual(event["body"], '{"k":"\\u00e9"}')
        self.assertFalse(event["isBase64Encoded"])
        ctx = event["requestContext"]
        self.assertEqual((ctx["accountId"], ctx["apiId"], ctx["requestId"]),
                         ("my-proj", self.ECHO_ROUTE[0], "abc123"))
        self.assertEqual(ctx["http"]["sourceIp"], "127.0.0.1")

    def test_binary_body_is_base64(self):
        blob = bytes([0x89, 0x50, 0x4E, 0x47, 0, 0xFF])
        status, _, body = self.echo.request(self.ECHO_ROUTE[1], self.ECHO_ROUTE[2], blob,
                                            {"content-type": "image/png"})
        self.assertEqual(status, 200, body)
        event = json.loads(body)
        self.assertTrue(event["isBase64Encoded"])
        self.assertEqual(base64.b64decode(event["body"]), blob)

    def test_unmatched_route_is_ferry_devs_404(self):
        status, headers, body = self.echo.request("GET", "/no/such/route")
        self.assertEqual((status, headers.get("content-type"), body),
                         (404, ["application/json"], b'{"message":"Not Found"}'))

    def test_unknown_event_id_is_404(self):
        status, out, rec = self.deliver(self.events, "nope0", push("x"))
        self.assertEqual((status, rec), (404, []), out)

    # --- event deliveries -----------------------------------------------------------------

    def test_queue_push_that_succeeds_is_204(self):
        status, out, rec = self.deliver(self.events, "queue0", push("hello", "m-42", {"a": "b"}, 3))
        self.assertEqual(status, 204, out)
        self.assertEqual(len(rec), 1)
        r = rec[0]["event"]["Records"][0]
        self.assertEqual((r["messageId"], r["body"], r["eventSource"], r["eventSourceARN"], r["awsRegion"]),
                         ("m-42", "hello", "aws:sqs", "projects/my-proj/topics/svc-dev-jobs", "europe-west1"))
        self.assertEqual(r["attributes"]["ApproximateReceiveCount"], "3")
        self.assertEqual(r["attributes"]["SentTimestamp"], "1796205600123")
        self.assertEqual(r["messageAttributes"]["a"]["stringValue"], "b")
        self.assertEqual(rec[0]["context"]["awsRequestId"], "m-42")
        self.assertEqual(rec[0]["context"]["logGroupName"], "/gcp/functions/" + self.EVENTS_FN)

    def test_queue_push_that_fails_is_500(self):
        status, out, rec = self.deliver(self.events, "queue0", push("fail", "m-43"))
        self.assertEqual((status, len(rec)), (500, 1), out)
        self.assertEqual(rec[0]["event"]["Records"][0]["attributes"]["ApproximateReceiveCount"], "1")

    def test_topic_push_builds_the_sns_event(self):
        status, out, rec = self.deliver(self.events, "topic0", push("news!", "t-1", {"k": "v"}))
        self.assertEqual((status, len(rec)), (204, 1), out)
        sns = rec[0]["event"]["Records"][0]["Sns"]
        self.assertEqual((sns["Message"], sns["MessageId"], sns["TopicArn"], sns["Timestamp"]),
                         ("news!", "t-1", "projects/my-proj/topics/svc-dev-news", "2026-12-02T10:00:00.123Z"))
        self.assertEqual(sns["MessageAttributes"], {"k": {"Type": "String", "Value": "v"}})
        status, _, _ = self.deliver(self.events, "topic0", push("throw", "t-2"))
        self.assertEqual(status, 500)

    def test_schedule_builds_the_scheduled_event(self):
        status, out, rec = self.deliver(self.events, "schedule0", b"{}",
                                        {"x-cloudscheduler-scheduletime": "2026-12-02T03:00:00.000Z"})
        self.assertEqual((status, len(rec)), (204, 1), out)
        e = rec[0]["event"]
        self.assertEqual((e["detail-type"], e["source"], e["account"], e["time"], e["resources"], e["region"]),
                         ("Scheduled Event", "aws.events", "my-proj", "2026-12-02T03:00:00Z",
                          ["svc-dev-nightly-schedule0"], "europe-west1"))

    def test_storage_cloud_events_build_the_s3_event(self):
        headers, body = binary_cloud_event("in/a b.csv")
        status, out, rec = self.deliver(self.events, "storage0", body, headers)
        self.assertEqual((status, len(rec)), (204, 1), out)
        r = rec[0]["event"]["Records"][0]
        self.assertEqual((r["eventName"], r["eventTime"], r["s3"]["bucket"]["name"], r["s3"]["bucket"]["arn"]),
                         ("ObjectCreated:Put", "2026-12-02T10:00:00.5Z", "uploads", "the-real-bucket-name"))
        self.assertEqual(r["s3"]["object"], {"key": "in/a+b.csv", "size": 123,
                                             "eTag": bytes(range(16)).hex(),
                                             "sequencer": "%016X" % 1733133600123456})
        self.assertEqual(rec[0]["context"]["awsRequestId"], "ce-1")
        headers, body = structured_cloud_event("in/c.csv")
        status, out, rec = self.deliver(self.events, "storage0", body, headers)
        self.assertEqual((status, len(rec)), (204, 1), out)
        r = rec[0]["event"]["Records"][0]
        self.assertEqual((r["eventName"], r["s3"]["object"]["key"]), ("ObjectRemoved:Delete", "in/c.csv"))
        self.assertNotIn("size", r["s3"]["object"])

    def test_storage_object_the_trigger_filters_out_is_204_without_the_handler(self):
        for name in ("in/a.txt", "other/a.csv"):
            headers, body = binary_cloud_event(name)
            status, out, rec = self.deliver(self.events, "storage0", body, headers)
            self.assertEqual((status, rec), (204, []), (name, out))


@unittest.skipUnless(NODE and FF_NODE and os.path.isfile(FF_NODE or ""),
                     "needs node and $FERRY_GCP_FF_NODE (@google-cloud/functions-framework's "
                     "build/src/main.js; scripts/test.sh installs it)")
class NodeFrameworkTest(AdapterCases, unittest.TestCase):
    RUNTIME = "node"
    ECHO_ROUTE = ("node-v2", "PUT", "/n/a/b%20c?x=1&x=2&y=%C3%A9&z", {"proxy": "a/b c"})
    EVENTS_FN = "node-v2"

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.servers = []
        cls.record = os.path.join(cls.tmp.name, "record.jsonl")
        cls.app = build_app(os.path.join(cls.tmp.name, "app"), "node", {
            "echo.js": os.path.join(ECHO, "echo.js"),
            "recorder.js": RECORDER_JS,
            "src/handler.js": os.path.join(HELLO, "src", "handler.js"),
            "package.json": os.path.join(HELLO, "package.json"),
        }, {
            "node-v2": function("node-v2", "recorder.handler",
                                [http_trigger("ANY", "/n/{proxy+}", cors=True)], event_triggers()),
            "greet": function("greet", "src/handler.greet", [http_trigger("GET", "/greet/{name}")]),
        })
        try:
            cls.echo = cls.events = cls.start("node-v2")
            cls.greet = cls.start("greet", GREETING="Hello")
        except Exception:
            cls.tearDownClass()
            raise

    def test_hello_http_example(self):
        status, _, body = self.greet.request("GET", "/greet/Grace%20Hopper")
        self.assertEqual((status, json.loads(body)), (200, {"message": "Hello, Grace Hopper!"}))
        status, _, body = self.greet.request("POST", "/greet/x", b"{}")
        self.assertEqual((status, body), (404, b'{"message":"Not Found"}'))

    def test_cors_preflight_and_header(self):
        status, headers, body = self.echo.request(
            "OPTIONS", "/n/x", headers={"origin": "https://a.example", "access-control-request-method": "PUT"})
        # ANY takes OPTIONS too, as under ferry dev: the handler answers, with the CORS header.
        self.assertEqual(status, 200, body)
        self.assertEqual(headers["access-control-allow-origin"], ["*"])


@unittest.skipUnless(HAS_FF_PYTHON, "needs the functions_framework module (PyPI functions-framework)")
class PythonFrameworkTest(AdapterCases, unittest.TestCase):
    RUNTIME = "python"
    ECHO_ROUTE = ("python-v2", "POST", "/p/%E2%9C%93?q=a+b&r=%2F", {"id": "\u2713"})
    EVENTS_FN = "python-v2"

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.servers = []
        cls.record = os.path.join(cls.tmp.name, "record.jsonl")
        cls.app = build_app(os.path.join(cls.tmp.name, "app"), "python", {
            "echo.py": os.path.join(ECHO, "echo.py"),
            "recorder.py": RECORDER_PY,
            "worker.py": os.path.join(QUEUE_WORKER, "worker.py"),
        }, {
            "python-v2": function("python-v2", "recorder.handler",
                                  [http_trigger("POST", "/p/{id}", cors=True)], event_triggers()),
            "worker": function("worker", "worker.process_jobs", events={
                "queue0": {"kind": "queue", "queue": "jobs", "batchSize": 5,
                           "id": "projects/my-proj/topics/queue-worker-dev-jobs"}}, timeout=50),
        }, service="queue-worker")
        try:
            cls.echo = cls.events = cls.start("python-v2")
            cls.worker = cls.start("worker")
        except Exception:
            cls.tearDownClass()
            raise

    def test_queue_worker_example(self):
        job = json.dumps({"task": "sum", "payload": {"numbers": [1, 2, 3]}})
        status, _, out = self.worker.request("POST", "/_ferry/events/queue0", push(job),
                                             {"content-type": "application/json"})
        self.assertEqual(status, 204, out)
        status, _, out = self.worker.request("POST", "/_ferry/events/queue0",
                                             push(json.dumps({"task": "nope"})),
                                             {"content-type": "application/json"})
        self.assertEqual(status, 500, out)

    def test_cors_preflight(self):
        status, headers, body = self.echo.request(
            "OPTIONS", "/p/1", headers={"origin": "https://a.example",
                                        "access-control-request-method": "POST",
                                        "access-control-request-headers": "content-type"})
        self.assertEqual((status, body), (204, b""))
        self.assertEqual(headers["access-control-allow-methods"], ["POST,OPTIONS"])
        self.assertEqual(headers["access-control-allow-headers"], ["content-type"])
        self.assertEqual(headers["access-control-max-age"], ["600"])
        status, headers, _ = self.echo.request("POST", "/p/1", b"x", {"content-type": "text/plain"})
        self.assertEqual((status, headers["access-control-allow-origin"]), (200, ["*"]))


if __name__ == "__main__":
    unittest.main()
