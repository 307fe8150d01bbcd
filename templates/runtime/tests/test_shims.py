"""End-to-end tests of ferry's runtime shims (templates/runtime/{node,python}/bootstrap.*).

Each test starts a fake AWS Lambda Runtime API (2018-06-01) on 127.0.0.1, writes handler
fixtures to a temporary task root, runs a shim as a real subprocess against them and checks what
the shim posted back. Standard library only:

    python3 -m unittest discover -s templates/runtime/tests

Node tests need `node` (20+) on PATH, or its path in $NODE; without it they are skipped.
"""

import ast
import json
import os
import queue
import re
import shutil
import socket
import socketserver
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import unittest
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

HERE = os.path.dirname(os.path.abspath(__file__))
RUNTIME = os.path.dirname(HERE)
NODE_SHIM = os.path.join(RUNTIME, "node", "bootstrap.cjs")
PYTHON_SHIM = os.path.join(RUNTIME, "python", "bootstrap.py")
NODE = os.environ.get("NODE") or shutil.which("node")
PYTHON = sys.executable or shutil.which("python3")

TIMEOUT = 20  # seconds to wait for anything a shim should do
WINDOW_MS = 3000  # how far in the future each invocation's deadline lies
ARN = "arn:aws:lambda:us-east-1:123456789012:function:ferry-test"
API = "/2018-06-01/runtime"


class FakeRuntimeAPI:
    """Hands out queued events on GET /invocation/next (a long poll, with the real headers) and
    records every /response, /error and /init/error post."""

    def __init__(self, drop_connections=False, unix=False):
        self.drop_connections = drop_connections
        self.events = queue.Queue()
        self.cond = threading.Condition()
        self.results = {}  # request id -> (kind, headers, body); kind is "response" or "error"
        self.pushed = {}  # request id -> the headers it is handed out with
        self.extra_posts = []  # a second answer for one request id, or an unknown id
        self.init_errors = []  # (headers, body)
        self.next_calls = 0
        self.connections = set()  # one (host, port) per TCP connection a shim opened
        self.transports = set()  # "tcp", "unix": where requests arrived
        self.posts = 0  # answers (/response, /error) received
        self.pipelined = 0  # answers that arrived with the next request already behind them
        self.closed = False
        self.gone = False  # answer 410 Gone to /next, as ferry does when it shuts down
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                api._next(self)

            def do_POST(self):
                api._post(self)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                # A worker killed at the end of a test resets its connection; that is expected.
                if not isinstance(sys.exc_info()[1], ConnectionError):
                    super().handle_error(request, client_address)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.servers = [self.server]
        # The same API on a Unix socket, as `ferry dev` also serves it (_FERRY_RUNTIME_API_SOCKET).
        self.socket_dir = self.socket_path = None
        if unix:

            class UnixServer(socketserver.ThreadingUnixStreamServer):
                daemon_threads = True
                handle_error = Server.handle_error

            self.socket_dir = tempfile.mkdtemp(prefix="ferry-shim-sock-")
            self.socket_path = os.path.join(self.socket_dir, "api.sock")
            self.servers.append(UnixServer(self.socket_path, Handler))
        for server in self.servers:
            threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            ).start()

    @property
    def address(self):
        return "127.0.0.1:%d" % self.server.server_address[1]

    def close(self):
        self.closed = True
        for server in self.servers:
            server.shutdown()
            server.server_close()
        if self.socket_dir:
            shutil.rmtree(self.socket_dir, ignore_errors=True)

    def _seen(self, req):
        """Records where a request arrived (under self.cond)."""
        if req.server is self.server:
            self.connections.add(req.client_address)
            self.transports.add("tcp")
        else:
            self.transports.add("unix")

    def push(self, event=None, body=None, headers=None, request_id=None):
        """Queues one invocation; returns its request id."""
        request_id = request_id or str(uuid.uuid4())
        all_headers = {
            "Content-Type": "application/json",
            "Lambda-Runtime-Aws-Request-Id": request_id,
            "Lambda-Runtime-Deadline-Ms": str(int(time.time() * 1000) + WINDOW_MS),
            "Lambda-Runtime-Invoked-Function-Arn": ARN,
            "Lambda-Runtime-Trace-Id": "Root=1-%08x-%s;Parent=%s;Sampled=0"
            % (int(time.time()), uuid.uuid4().hex[:24], uuid.uuid4().hex[:16]),
        }
        all_headers.update(headers or {})
        all_headers = {k: v for k, v in all_headers.items() if v is not None}  # None: left out
        self.pushed[request_id] = all_headers
        if body is None:
            body = json.dumps(event).encode()
        self.events.put((request_id, all_headers, body))
        return request_id

    def wait(self, request_id, worker=None, timeout=TIMEOUT):
        """The (kind, headers, body) posted for request_id."""
        end = time.monotonic() + timeout
        with self.cond:
            while request_id not in self.results:
                left = end - time.monotonic()
                if left <= 0:
                    detail = worker.output() if worker else ""
                    raise AssertionError("no answer for %s within %ss%s" % (request_id, timeout, detail))
                self.cond.wait(min(left, 0.2))
            return self.results[request_id]

    def _next(self, req):
        if req.path != API + "/invocation/next":
            req.send_error(404)
            return
        with self.cond:
            self.next_calls += 1
            self._seen(req)
        while True:
            if self.gone:
                answer = b"shutting down"
                req.send_response(410)
                req.send_header("Content-Length", str(len(answer)))
                req.end_headers()
                req.wfile.write(answer)
                return
            # A shim pipelines GET /next behind its answer, so a worker a test has stopped can
            # leave one waiting here: it must not take the next test worker's event.
            if _peer_gone(req.connection):
                req.close_connection = True
                return
            try:
                request_id, headers, body = self.events.get(timeout=0.05)
            except queue.Empty:
                if self.closed:
                    req.close_connection = True
                    return
                continue
            if _peer_gone(req.connection):
                self.events.put((request_id, headers, body))
                req.close_connection = True
                return
            break
        req.send_response(200)
        for name, value in headers.items():
            req.send_header(name, value)
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)

    def _post(self, req):
        body = req.rfile.read(int(req.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in req.headers.items()}
        match = re.fullmatch(API + r"/invocation/([^/]+)/(response|error)", req.path)
        pipelined = _buffered(req)
        with self.cond:
            self._seen(req)
            if match:
                self.posts += 1
                self.pipelined += pipelined
            if req.path == API + "/init/error":
                self.init_errors.append((headers, body))
                status = 202
            elif match:
                request_id = unquote(match.group(1))
                if request_id in self.results:
                    self.extra_posts.append((req.path, body))
                    status = 400
                else:
                    self.results[request_id] = (match.group(2), headers, body)
                    status = 202
            else:
                self.extra_posts.append((req.path, body))
                status = 404
            self.cond.notify_all()
        answer = b'{"status":"OK"}' if status == 202 else b'{"errorType":"InvalidRequestID"}'
        req.send_response(status)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(answer)))
        req.end_headers()
        req.wfile.write(answer)
        if self.drop_connections:
            # Close without saying so, as a server whose keep-alive timeout expired would.
            req.close_connection = True


def _peer_gone(sock):
    """Whether the client closed its end of the connection (a read would see end of file)."""
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True


def _buffered(req):
    """Whether the client has already sent more than the request being handled (pipelining):
    bytes in the handler's read buffer or in the socket, looked at without blocking."""
    sock = req.connection
    sock.setblocking(False)
    try:
        return bool(req.rfile.peek(1))
    except (BlockingIOError, OSError):
        return False
    finally:
        sock.setblocking(True)


class Worker:
    """A shim running as a subprocess, its output captured in files."""

    def __init__(self, command, task_root, api, handler, env=None):
        self.stdout = tempfile.TemporaryFile()
        self.stderr = tempfile.TemporaryFile()
        full_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "AWS_LAMBDA_RUNTIME_API": api.address,
            **({"_FERRY_RUNTIME_API_SOCKET": api.socket_path} if api.socket_path else {}),
            "_HANDLER": handler,
            "LAMBDA_TASK_ROOT": task_root,
            "AWS_LAMBDA_FUNCTION_NAME": "ferry-test",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/ferry-test",
            "AWS_LAMBDA_LOG_STREAM_NAME": "2026/01/01/[$LATEST]0123456789abcdef",
            "AWS_REGION": "us-east-1",
        }
        full_env.update(env or {})
        self.proc = subprocess.Popen(
            command,
            cwd=task_root,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=self.stdout,
            stderr=self.stderr,
        )

    def wait(self, timeout=TIMEOUT):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("the shim did not exit within %ss%s" % (timeout, self.output()))

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.alive():
            self.proc.kill()
        self.proc.wait()
        if not self.stdout.closed:
            self.captured = (self._read(self.stdout), self._read(self.stderr))
            self.stdout.close()
            self.stderr.close()

    def _read(self, f):
        f.seek(0)
        return f.read().decode("utf-8", "replace")

    def out(self):
        return self.captured[0] if self.stdout.closed else self._read(self.stdout)

    def err(self):
        return self.captured[1] if self.stderr.closed else self._read(self.stderr)

    def output(self):
        return "\n--- stdout ---\n%s--- stderr ---\n%s" % (self.out(), self.err())


class ShimTestCase(unittest.TestCase):
    drop_connections = False

    def setUp(self):
        self.api = FakeRuntimeAPI(drop_connections=self.drop_connections)
        self.root = tempfile.mkdtemp(prefix="ferry-shim-")
        self.workers = []

    def tearDown(self):
        for worker in self.workers:
            worker.stop()
        self.api.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def write(self, relpath, text):
        path = os.path.join(self.root, relpath)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(textwrap.dedent(text).lstrip())

    def start(self, handler, **env):
        """Starts a shim for handler; any earlier worker of the test is stopped first, so that
        no two of them poll for the same events."""
        for worker in self.workers:
            if worker.alive():
                worker.stop()
        worker = Worker(self.command, self.root, self.api, handler, env)
        self.workers.append(worker)
        return worker

    def invoke(self, worker, event=None, **push):
        """Pushes one event and returns (kind, headers, body, request id)."""
        request_id = self.api.push(event, **push)
        kind, headers, body = self.api.wait(request_id, worker)
        return kind, headers, body, request_id

    def respond(self, worker, event=None, **push):
        """Pushes one event and returns the decoded response; fails on an error."""
        kind, _, body, request_id = self.invoke(worker, event, **push)
        self.assertEqual(kind, "response", body.decode() + worker.output())
        return json.loads(body), request_id

    def fail_with(self, worker, event=None, **push):
        """Pushes one event and returns (error body, headers) of the /error post."""
        kind, headers, body, _ = self.invoke(worker, event, **push)
        self.assertEqual(kind, "error", body.decode() + worker.output())
        self.assertEqual(headers.get("lambda-runtime-function-error-type"), "Unhandled")
        return json.loads(body), headers

    def assert_init_error(self, worker, error_type):
        """The shim reported exactly one init error of error_type and exited non-zero."""
        code = worker.wait()
        self.assertNotEqual(code, 0, worker.output())
        self.assertEqual(len(self.api.init_errors), 1, self.api.init_errors)
        headers, body = self.api.init_errors[0]
        error = json.loads(body)
        self.assertEqual(error["errorType"], error_type, worker.output())
        self.assertEqual(headers.get("lambda-runtime-function-error-type"), error_type)
        self.assertIsInstance(error["errorMessage"], str)
        self.assertIsInstance(error["stackTrace"], list)
        self.assertEqual(self.api.next_calls, 0, "no invocation is fetched after a failed init")
        return error

    def trace_id(self, request_id):
        return self.api.pushed[request_id]["Lambda-Runtime-Trace-Id"]

    def assert_context(self, seen, request_id, trace_id):
        self.assertEqual(seen["requestId"], request_id)
        self.assertEqual(seen["arn"], ARN)
        self.assertEqual(seen["trace"], trace_id)
        self.assertEqual(seen["functionName"], "ferry-test")
        self.assertEqual(seen["version"], "$LATEST")
        self.assertEqual(seen["logGroup"], "/aws/lambda/ferry-test")
        self.assertEqual(seen["logStream"], "2026/01/01/[$LATEST]0123456789abcdef")
        # The deadline lies WINDOW_MS ahead when the event is queued.
        self.assertGreater(seen["remaining"], 0)
        self.assertLessEqual(seen["remaining"], WINDOW_MS)


@unittest.skipUnless(NODE, "node is not installed (set $NODE)")
class NodeShimTest(ShimTestCase):
    @property
    def command(self):
        return [NODE, NODE_SHIM]

    CONTEXT_FIXTURE = """
        globalThis.loads = (globalThis.loads || 0) + 1;
        let calls = 0;

        function describe(event, context) {
          calls += 1;
          return {
            loads: globalThis.loads,
            calls,
            event,
            requestId: context.awsRequestId,
            arn: context.invokedFunctionArn,
            trace: process.env._X_AMZN_TRACE_ID,
            functionName: context.functionName,
            version: context.functionVersion,
            memory: context.memoryLimitInMB,
            logGroup: context.logGroupName,
            logStream: context.logStreamName,
            remaining: context.getRemainingTimeInMillis(),
            waits: context.callbackWaitsForEmptyEventLoop,
            clientContext: context.clientContext ?? null,
            identity: context.identity ?? null,
          };
        }
    """

    def test_commonjs_async_handler_stays_warm_and_fills_the_context(self):
        self.write(
            "src/handler.js",
            "'use strict';\n"
            + textwrap.dedent(self.CONTEXT_FIXTURE)
            + """
            exports.hello = async (event, context) => {
              console.log('hello from node', event.n);
              return describe(event, context);
            };
            """,
        )
        worker = self.start("src/handler.hello")
        cognito = {"cognitoIdentityId": "id-1", "cognitoIdentityPoolId": "pool-1"}
        client = {"client": {"app_title": "app"}, "custom": {"k": "v"}, "env": {}}
        for n in range(1, 4):
            headers = {
                "Lambda-Runtime-Cognito-Identity": json.dumps(cognito),
                "Lambda-Runtime-Client-Context": json.dumps(client),
            }
            request_id = self.api.push({"n": n}, headers=headers)
            trace_id = self.trace_id(request_id)
            kind, _, body = self.api.wait(request_id, worker)
            self.assertEqual(kind, "response", body)
            seen = json.loads(body)
            self.assert_context(seen, request_id, trace_id)
            self.assertEqual(seen["event"], {"n": n})
            self.assertEqual(seen["calls"], n, "one warm process serves every invocation")
            self.assertEqual(seen["loads"], 1, "the module is loaded once")
            self.assertEqual(seen["memory"], "256")
            self.assertIs(seen["waits"], True)
            self.assertEqual(seen["identity"], cognito)
            self.assertEqual(seen["clientContext"], client)
        # Without a trace header the previous trace id must not linger.
        seen, _ = self.respond(worker, {"n": 4}, headers={"Lambda-Runtime-Trace-Id": None})
        self.assertNotIn("trace", seen)
        self.assertEqual(seen["calls"], 4)
        self.assertTrue(worker.alive())
        self.assertEqual(len(self.api.connections), 1, "one kept-alive connection")
        self.assertIn("hello from node 1\nhello from node 2\nhello from node 3\n", worker.out())

    def test_commonjs_sync_handler_answers_with_its_return_value(self):
        self.write(
            "handler.js",
            """
            let calls = 0;
            module.exports.double = (event) => ({ doubled: event.n * 2, calls: ++calls });
            """,
        )
        worker = self.start("handler.double")
        self.assertEqual(self.respond(worker, {"n": 2})[0], {"doubled": 4, "calls": 1})
        self.assertEqual(self.respond(worker, {"n": 5})[0], {"doubled": 10, "calls": 2})
        # AWS would answer null here; the shim says so once.
        self.assertEqual(worker.err().count("AWS Lambda ignores it"), 1, worker.output())

    def test_esm_handler_in_mjs(self):
        self.write(
            "src/handler.mjs",
            textwrap.dedent(self.CONTEXT_FIXTURE)
            + """
            export async function hello(event, context) {
              await new Promise((resolve) => setTimeout(resolve, 5));
              return describe(event, context);
            }
            export const plain = (event) => Promise.resolve({ plain: event.n });
            """,
        )
        worker = self.start("src/handler.hello")
        for n in (1, 2):
            request_id = self.api.push({"n": n})
            trace_id = self.trace_id(request_id)
            kind, _, body = self.api.wait(request_id, worker)
            seen = json.loads(body)
            self.assertEqual(kind, "response", body)
            self.assert_context(seen, request_id, trace_id)
            self.assertEqual((seen["calls"], seen["loads"]), (n, 1))
            self.assertIsNone(seen["identity"])

        promise_worker = self.start("src/handler.plain")
        self.assertEqual(self.respond(promise_worker, {"n": 7})[0], {"plain": 7})

    def test_esm_js_in_a_type_module_package_with_dots_in_the_path_and_a_nested_export(self):
        self.write("lib/v1.2/package.json", '{"type": "module"}\n')
        self.write(
            "lib/v1.2/api.js",
            """
            export const routes = {
              get: async (event) => ({ route: 'get', id: event.id }),
            };
            """,
        )
        worker = self.start("lib/v1.2/api.routes.get")
        self.assertEqual(self.respond(worker, {"id": 42})[0], {"route": "get", "id": 42})

    def test_commonjs_exports_found_through_default(self):
        # Node's static analysis cannot see this export; it is on module.exports (`default`).
        self.write(
            "dyn.cjs",
            """
            Object.assign(module.exports, { ['h' + 'andler']: async () => 'via default' });
            """,
        )
        worker = self.start("dyn.handler")
        self.assertEqual(self.respond(worker, {})[0], "via default")

    def test_callback_handler(self):
        self.write(
            "cb.js",
            """
            exports.handler = function (event, context, callback) {
              if (event.fail) return callback(new Error('callback failure'));
              context.callbackWaitsForEmptyEventLoop = event.wait;
              const result = { echoed: event.n, timerRan: false };
              setTimeout(() => { result.timerRan = true; }, 50);
              callback(null, result);
            };
            """,
        )
        worker = self.start("cb.handler")
        # callbackWaitsForEmptyEventLoop = false: answered at once, before the timer ran.
        self.assertEqual(
            self.respond(worker, {"n": 1, "wait": False})[0], {"echoed": 1, "timerRan": False}
        )
        # The default (true): answered once the event loop is empty, so after the timer.
        self.assertEqual(
            self.respond(worker, {"n": 2, "wait": True})[0], {"echoed": 2, "timerRan": True}
        )
        error, _ = self.fail_with(worker, {"fail": True})
        self.assertEqual(error["errorType"], "Error")
        self.assertEqual(error["errorMessage"], "callback failure")
        self.assertEqual(self.respond(worker, {"n": 3, "wait": True})[0]["echoed"], 3)

    def test_undefined_and_unanswered_results_are_null(self):
        self.write(
            "quiet.js",
            """
            exports.nothing = async () => undefined;
            exports.silent = (event, context) => { setTimeout(() => {}, 10); };
            """,
        )
        self.assertEqual(self.respond(self.start("quiet.nothing"), {})[0], None)
        # Neither returns nor calls back: AWS answers null once the event loop is empty.
        self.assertEqual(self.respond(self.start("quiet.silent"), {})[0], None)

    def test_legacy_context_methods(self):
        self.write(
            "legacy.js",
            """
            exports.handler = (event, context) => {
              setTimeout(() => {
                if (event.fail) context.fail(new Error('legacy failure'));
                else context.succeed({ legacy: event.n });
                context.succeed('only the first answer counts');
              }, 5);
            };
            """,
        )
        worker = self.start("legacy.handler")
        self.assertEqual(self.respond(worker, {"n": 1})[0], {"legacy": 1})
        error, _ = self.fail_with(worker, {"fail": True})
        self.assertEqual(error["errorMessage"], "legacy failure")
        self.assertEqual(self.respond(worker, {"n": 2})[0], {"legacy": 2})
        self.assertEqual(self.api.extra_posts, [])

    def test_thrown_error_is_posted_to_error_and_the_worker_keeps_serving(self):
        self.write(
            "src/handler.js",
            """
            exports.handler = async (event) => {
              if (event.fail) throw new TypeError('bad input: ' + event.fail);
              return { ok: true };
            };
            """,
        )
        worker = self.start("src/handler.handler")
        error, _ = self.fail_with(worker, {"fail": "x"})
        self.assertEqual(error["errorType"], "TypeError")
        self.assertEqual(error["errorMessage"], "bad input: x")
        self.assertIsInstance(error["stackTrace"], list)
        self.assertEqual(error["stackTrace"][0], "TypeError: bad input: x")
        self.assertTrue(any("src/handler.js" in line for line in error["stackTrace"]), error)
        self.assertEqual(error["trace"], error["stackTrace"])
        self.assertFalse(any("bootstrap.cjs" in line for line in error["stackTrace"]), error)
        self.assertIn("Invoke Error", worker.err())
        self.assertEqual(self.respond(worker, {})[0], {"ok": True})
        self.assertTrue(worker.alive())

    def test_uncaught_exception_fails_the_invocation_and_exits(self):
        self.write(
            "boom.js",
            """
            exports.handler = async () => {
              setTimeout(() => { throw new RangeError('thrown from a timer'); }, 10);
              await new Promise((resolve) => setTimeout(resolve, 5000));
              return 'too late';
            };
            """,
        )
        worker = self.start("boom.handler")
        error, _ = self.fail_with(worker, {})
        self.assertEqual(error["errorType"], "RangeError")
        self.assertEqual(error["errorMessage"], "thrown from a timer")
        self.assertNotEqual(worker.wait(), 0)
        self.assertEqual(self.api.extra_posts, [])

    def test_unhandled_rejection_fails_the_invocation_and_exits(self):
        self.write(
            "reject.mjs",
            """
            export const handler = async () => {
              Promise.reject(new Error('nobody handles me'));
              await new Promise((resolve) => setTimeout(resolve, 5000));
              return 'too late';
            };
            """,
        )
        worker = self.start("reject.handler")
        error, _ = self.fail_with(worker, {})
        self.assertEqual(error["errorType"], "Runtime.UnhandledPromiseRejection")
        self.assertEqual(error["errorMessage"], "Error: nobody handles me")
        self.assertNotEqual(worker.wait(), 0)

    def test_async_handler_that_can_never_settle_fails_like_on_aws(self):
        self.write("hang.mjs", "export const handler = async () => new Promise(() => {});\n")
        worker = self.start("hang.handler")
        for _ in range(2):
            error, _ = self.fail_with(worker, {})
            self.assertEqual(error["errorType"], "Runtime.NodeJsExit")
        self.assertTrue(worker.alive())

    def test_gone_ends_the_worker_quietly(self):
        self.write("h.js", "exports.handler = async () => 'ok';\n")
        worker = self.start("h.handler")
        self.assertEqual(self.respond(worker, {})[0], "ok")
        self.api.gone = True
        self.assertEqual(worker.wait(), 0, worker.output())
        self.assertEqual(worker.err(), "")

    def test_bad_event_json_is_an_invocation_error(self):
        self.write("h.js", "exports.handler = async (e) => e;\n")
        worker = self.start("h.handler")
        error, _ = self.fail_with(worker, body=b"{not json")
        self.assertEqual(error["errorType"], "SyntaxError")
        self.assertEqual(self.respond(worker, [1, 2])[0], [1, 2])

    def test_unserializable_result_is_an_invocation_error(self):
        self.write("h.js", "exports.handler = async () => { const a = {}; a.self = a; return a; };\n")
        error, _ = self.fail_with(self.start("h.handler"), {})
        self.assertEqual(error["errorType"], "Runtime.JSONStringifyError")

    def test_missing_module_is_one_init_error(self):
        self.write("src/other.js", "exports.hello = async () => 1;\n")
        worker = self.start("src/handler.hello")
        error = self.assert_init_error(worker, "Runtime.ImportModuleError")
        self.assertIn("src/handler", error["errorMessage"])

    def test_missing_dependency_is_an_import_error(self):
        self.write("h.js", "require('left-pad-that-is-not-installed');\nexports.h = async () => 1;\n")
        error = self.assert_init_error(self.start("h.h"), "Runtime.ImportModuleError")
        self.assertIn("left-pad-that-is-not-installed", error["errorMessage"])

    def test_missing_export_is_one_init_error(self):
        self.write("src/handler.mjs", "export const other = async () => 1;\n")
        worker = self.start("src/handler.hello")
        error = self.assert_init_error(worker, "Runtime.HandlerNotFound")
        self.assertIn("src/handler.hello", error["errorMessage"])

    def test_export_that_is_not_a_function_is_handler_not_found(self):
        self.write("h.js", "exports.hello = 42;\n")
        self.assert_init_error(self.start("h.hello"), "Runtime.HandlerNotFound")

    def test_syntax_error_is_one_init_error(self):
        self.write("h.js", "exports.hello = async () => {;\n")
        self.assert_init_error(self.start("h.hello"), "Runtime.UserCodeSyntaxError")

    def test_module_that_throws_while_loading_is_one_init_error(self):
        self.write("h.mjs", "throw new Error('config missing');\n")
        error = self.assert_init_error(self.start("h.hello"), "Error")
        self.assertEqual(error["errorMessage"], "config missing")

    def test_malformed_handler_is_one_init_error(self):
        self.assert_init_error(self.start("nodot"), "Runtime.MalformedHandlerName")


@unittest.skipUnless(NODE, "node is not installed (set $NODE)")
class NodeShimDroppedConnectionTest(ShimTestCase):
    drop_connections = True

    @property
    def command(self):
        return [NODE, NODE_SHIM]

    def test_reconnects_when_the_server_closes_the_connection(self):
        self.write("h.js", "let n = 0;\nexports.handler = async () => ++n;\n")
        worker = self.start("h.handler")
        self.assertEqual([self.respond(worker, {})[0] for _ in range(4)], [1, 2, 3, 4])
        self.assertGreater(len(self.api.connections), 1)


class PythonShimTest(ShimTestCase):
    command = [PYTHON, PYTHON_SHIM]

    WORKER = '''
        import builtins
        import logging
        import os

        builtins.ferry_loads = getattr(builtins, "ferry_loads", 0) + 1
        CALLS = 0
        log = logging.getLogger("worker")
        log.setLevel(logging.INFO)


        def handle(event, context):
            global CALLS
            CALLS += 1
            print("hello from python", event.get("n"))
            log.info("logged %s", event.get("n"))
            client = context.client_context
            return {
                "loads": builtins.ferry_loads,
                "calls": CALLS,
                "event": event,
                "requestId": context.aws_request_id,
                "arn": context.invoked_function_arn,
                "trace": os.environ.get("_X_AMZN_TRACE_ID"),
                "functionName": context.function_name,
                "version": context.function_version,
                "memory": context.memory_limit_in_mb,
                "logGroup": context.log_group_name,
                "logStream": context.log_stream_name,
                "remaining": context.get_remaining_time_in_millis(),
                "identity": [context.identity.cognito_identity_id,
                             context.identity.cognito_identity_pool_id],
                "client": None if client is None else [client.custom, client.client.app_title],
            }


        def fail(event, context):
            def inner():
                raise ValueError("bad value: %s" % event.get("v"))
            if event.get("v"):
                inner()
            return {"ok": True}
    '''

    def test_handler_stays_warm_and_fills_the_context(self):
        self.write("worker.py", self.WORKER)
        worker = self.start("worker.handle")
        cognito = {"cognitoIdentityId": "id-1", "cognitoIdentityPoolId": "pool-1"}
        client = {"client": {"app_title": "app"}, "custom": {"k": "v"}, "env": {}}
        request_ids = []
        for n in range(1, 4):
            headers = {}
            if n == 3:
                headers = {
                    "Lambda-Runtime-Cognito-Identity": json.dumps(cognito),
                    "Lambda-Runtime-Client-Context": json.dumps(client),
                }
            request_id = self.api.push({"n": n}, headers=headers)
            trace_id = self.trace_id(request_id)
            kind, _, body = self.api.wait(request_id, worker)
            self.assertEqual(kind, "response", body.decode() + worker.output())
            seen = json.loads(body)
            self.assert_context(seen, request_id, trace_id)
            self.assertEqual(seen["event"], {"n": n})
            self.assertEqual(seen["calls"], n, "one warm process serves every invocation")
            self.assertEqual(seen["loads"], 1, "the module is imported once")
            # A string, as awslambdaric gives it (AWS_LAMBDA_FUNCTION_MEMORY_SIZE as is).
            self.assertEqual(seen["memory"], "256")
            if n == 3:
                self.assertEqual(seen["identity"], ["id-1", "pool-1"])
                self.assertEqual(seen["client"], [{"k": "v"}, "app"])
            else:
                self.assertEqual(seen["identity"], [None, None])
                self.assertIsNone(seen["client"])
            request_ids.append(request_id)
        seen, _ = self.respond(worker, {"n": 4}, headers={"Lambda-Runtime-Trace-Id": None})
        self.assertIsNone(seen["trace"], "without a trace header the previous id must not linger")
        self.assertTrue(worker.alive())
        self.assertEqual(len(self.api.connections), 1, "one kept-alive connection")
        out = worker.out()
        self.assertIn("hello from python 1\n", out)
        # logging goes through a root handler in AWS's format, with the request id.
        self.assertRegex(
            out, r"\[INFO\]\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\t%s\tlogged 2\n" % request_ids[1]
        )

    def test_module_paths_with_slashes_or_dots(self):
        self.write("pkg/__init__.py", "")
        self.write("pkg/mod.py", "def handle(event, context):\n    return {'mod': __name__}\n")
        for handler in ("pkg/mod.handle", "pkg.mod.handle"):
            worker = self.start(handler)
            self.assertEqual(self.respond(worker, {})[0], {"mod": "pkg.mod"}, handler)

    def test_task_root_defaults_to_the_working_directory(self):
        self.write("app.py", "def handle(event, context):\n    return event\n")
        worker = self.start("app.handle", LAMBDA_TASK_ROOT="")
        self.assertEqual(self.respond(worker, {"a": [1, "b"]})[0], {"a": [1, "b"]})

    def test_raised_error_is_posted_to_error_and_the_worker_keeps_serving(self):
        self.write("worker.py", self.WORKER)
        worker = self.start("worker.fail")
        request_id = self.api.push({"v": 7})
        kind, headers, body = self.api.wait(request_id, worker)
        self.assertEqual(kind, "error", body)
        self.assertEqual(headers.get("lambda-runtime-function-error-type"), "Unhandled")
        error = json.loads(body)
        self.assertEqual(sorted(error), ["errorMessage", "errorType", "requestId", "stackTrace"])
        self.assertEqual(error["errorType"], "ValueError")
        self.assertEqual(error["errorMessage"], "bad value: 7")
        self.assertEqual(error["requestId"], request_id)
        frames = error["stackTrace"]
        self.assertEqual(len(frames), 2, frames)  # fail -> inner; no frames of the shim
        self.assertTrue(frames[0].startswith('  File "%s' % os.path.join(self.root, "worker.py")))
        self.assertIn(", in fail\n", frames[0])
        self.assertIn(", in inner\n", frames[1])
        self.assertIn('raise ValueError("bad value: %s" % event.get("v"))', frames[1])
        self.assertFalse(any("bootstrap.py" in f for f in frames))
        self.assertIn("[ERROR] ValueError: bad value: 7\nTraceback (most recent call last):", worker.err())
        self.assertEqual(self.respond(worker, {})[0], {"ok": True})
        self.assertTrue(worker.alive())

    def test_results_are_json(self):
        self.write(
            "r.py",
            """
            from decimal import Decimal

            def handle(event, context):
                kind = event["kind"]
                if kind == "none":
                    return None
                if kind == "decimal":
                    return {"price": Decimal("1.5"), "count": Decimal("10")}
                if kind == "bytes":
                    return b"raw"
                return {1, 2}
            """,
        )
        worker = self.start("r.handle")
        self.assertIsNone(self.respond(worker, {"kind": "none"})[0])
        self.assertEqual(self.respond(worker, {"kind": "decimal"})[0], {"price": 1.5, "count": 10})
        kind, headers, body, _ = self.invoke(worker, {"kind": "bytes"})
        self.assertEqual((kind, body, headers["content-type"]), ("response", b"raw", "application/unknown"))
        error, _ = self.fail_with(worker, {"kind": "set"})
        self.assertEqual(error["errorType"], "Runtime.MarshalError")
        self.assertIn("set", error["errorMessage"])

    def test_gone_ends_the_worker_quietly(self):
        self.write("h.py", "def handle(event, context):\n    return 'ok'\n")
        worker = self.start("h.handle")
        self.assertEqual(self.respond(worker, {})[0], "ok")
        self.api.gone = True
        self.assertEqual(worker.wait(), 0, worker.output())
        self.assertEqual(worker.err(), "")

    def test_bad_event_json_is_an_unmarshal_error(self):
        self.write("h.py", "def handle(event, context):\n    return event\n")
        worker = self.start("h.handle")
        error, _ = self.fail_with(worker, body=b"{not json")
        self.assertEqual(error["errorType"], "Runtime.UnmarshalError")
        self.assertEqual(self.respond(worker, [1])[0], [1])

    def test_events_and_request_ids_off_the_fast_path(self):
        # The shim parses a plain UTF-8 JSON event with the C scanner directly; anything else
        # goes through json.loads, and a request id that is not a UUID is percent-encoded.
        self.write("h.py", "def handle(event, context):\n    return [event, context.aws_request_id]\n")
        worker = self.start("h.handle")
        for body, event in [
            (b' {"a": 1}\n', {"a": 1}),
            (b'{"a": "\xc3\xa9"}  ', {"a": "\u00e9"}),
            ('{"a": [1, 2]}'.encode("utf-16"), {"a": [1, 2]}),
            (b"7", 7),
        ]:
            result, request_id = self.respond(worker, body=body)
            self.assertEqual(result, [event, request_id], body)
        for body in [b'{"a": 1} x', b"", b"{"]:
            error, _ = self.fail_with(worker, body=body)
            self.assertEqual(error["errorType"], "Runtime.UnmarshalError", body)
        odd = "req/with space?and%"
        self.assertEqual(self.respond(worker, {"b": 2}, request_id=odd)[0], [{"b": 2}, odd])

    def test_missing_module_is_one_init_error(self):
        worker = self.start("nowhere.handle")
        error = self.assert_init_error(worker, "Runtime.ImportModuleError")
        self.assertIn("Unable to import module 'nowhere'", error["errorMessage"])
        self.assertEqual(error["requestId"], "")
        self.assertIn("[ERROR] Runtime.ImportModuleError: Unable to import module", worker.err())

    def test_missing_dependency_is_an_import_error(self):
        self.write("h.py", "import requests_that_are_not_installed\n\ndef handle(e, c):\n    return 1\n")
        error = self.assert_init_error(self.start("h.handle"), "Runtime.ImportModuleError")
        self.assertIn("requests_that_are_not_installed", error["errorMessage"])

    def test_missing_attribute_is_one_init_error(self):
        self.write("worker.py", "def other(event, context):\n    return 1\n")
        error = self.assert_init_error(self.start("worker.handle"), "Runtime.HandlerNotFound")
        self.assertEqual(error["errorMessage"], "Handler 'handle' missing on module 'worker'")

    def test_syntax_error_is_one_init_error(self):
        self.write("worker.py", "def handle(event, context)\n    return 1\n")
        self.assert_init_error(self.start("worker.handle"), "Runtime.UserCodeSyntaxError")

    def test_module_that_raises_while_importing_is_one_init_error(self):
        self.write("worker.py", "raise KeyError('CONFIG')\n")
        error = self.assert_init_error(self.start("worker.handle"), "KeyError")
        self.assertEqual(error["errorMessage"], "'CONFIG'")
        self.assertTrue(error["stackTrace"][0].startswith('  File "%s' % os.path.join(self.root, "worker.py")))

    def test_malformed_handler_and_builtin_module_are_init_errors(self):
        self.assert_init_error(self.start("nodot"), "Runtime.MalformedHandlerName")
        self.api.init_errors.clear()
        self.assert_init_error(self.start("sys.handle"), "Runtime.BuiltInModuleConflict")


class PythonShimDroppedConnectionTest(ShimTestCase):
    drop_connections = True
    command = [PYTHON, PYTHON_SHIM]

    def test_reconnects_when_the_server_closes_the_connection(self):
        self.write("h.py", "N = [0]\n\ndef handle(event, context):\n    N[0] += 1\n    return N[0]\n")
        worker = self.start("h.handle")
        self.assertEqual([self.respond(worker, {})[0] for _ in range(4)], [1, 2, 3, 4])
        self.assertGreater(len(self.api.connections), 1)


class ShimSourceTest(unittest.TestCase):
    def test_files_are_template_safe(self):
        # templates/ may be rendered with tera; these sequences would start a tag or comment.
        paths = [
            os.path.join(folder, name)
            for folder, _, names in os.walk(RUNTIME)
            for name in names
            if not name.endswith(".pyc")
        ]
        self.assertIn(NODE_SHIM, paths)
        self.assertIn(PYTHON_SHIM, paths)
        for path in paths:
            with open(path) as f:
                text = f.read()
            for tag in ("{" + "{", "{" + "%", "{" + "#"):
                self.assertNotIn(tag, text, "%s contains %r" % (path, tag))

    def test_python_shim_is_python_3_9_syntax(self):
        with open(PYTHON_SHIM) as f:
            ast.parse(f.read(), PYTHON_SHIM, feature_version=(3, 9))


class UnixSocketTest(ShimTestCase):
    """`ferry dev` serves each shim's Runtime API on a Unix socket as well: the shims use it, hide
    it from the handler, and send each answer with the next GET /next behind it."""

    def setUp(self):
        super().setUp()
        self.api.close()
        self.api = FakeRuntimeAPI(unix=True)

    def check(self, worker):
        for n in (1, 2, 3):
            seen, _ = self.respond(worker, {"n": n})
            self.assertEqual(seen, {"n": n, "socket": None, "api": self.api.address})
        self.assertEqual(self.api.transports, {"unix"}, worker.output())
        self.assertEqual(self.api.posts, 3)
        self.assertEqual(self.api.pipelined, 3, "each answer is followed by GET /next at once")

    @unittest.skipUnless(NODE, "node is not installed (set $NODE)")
    def test_node_uses_the_socket_and_hides_it(self):
        self.command = [NODE, NODE_SHIM]
        self.write(
            "h.js",
            """
            exports.handler = async (event) => ({
              n: event.n,
              socket: process.env._FERRY_RUNTIME_API_SOCKET ?? null,
              api: process.env.AWS_LAMBDA_RUNTIME_API,
            });
            """,
        )
        self.check(self.start("h.handler"))

    def test_python_uses_the_socket_and_hides_it(self):
        self.command = [PYTHON, PYTHON_SHIM]
        self.write(
            "h.py",
            """
            import os

            def handler(event, context):
                return {
                    "n": event["n"],
                    "socket": os.environ.get("_FERRY_RUNTIME_API_SOCKET"),
                    "api": os.environ["AWS_LAMBDA_RUNTIME_API"],
                }
            """,
        )
        self.check(self.start("h.handler"))


if __name__ == "__main__":
    unittest.main()
