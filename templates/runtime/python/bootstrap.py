"""ferry's Python runtime shim.

Serves one function's handler in a warm worker process over the AWS Lambda Runtime API
(2018-06-01), the way AWS's own Python runtime (awslambdaric) does:

    python3 bootstrap.py            (cwd: the function's task root)

Environment: AWS_LAMBDA_RUNTIME_API (host:port, required), _HANDLER, LAMBDA_TASK_ROOT (default:
cwd), AWS_LAMBDA_FUNCTION_NAME / _VERSION / _MEMORY_SIZE, AWS_LAMBDA_LOG_GROUP_NAME /
_LOG_STREAM_NAME, AWS_LAMBDA_LOG_LEVEL; _FERRY_RUNTIME_API_SOCKET (optional: a Unix socket that
serves the same Runtime API, see the README). Standard library only, Python 3.9+. Handler resolution,
the context object, error shapes and logging follow awslambdaric; templates/runtime/README.md
lists each choice and where it departs from AWS.

The file is embedded in the ferry binary and must stay template-safe (see the README).
"""

import http.client
import socket
import importlib
import json
import json.scanner
import logging
import os
import re
import sys
import time
import traceback
from urllib.parse import quote

API = "/2018-06-01/runtime"
NEXT = API + "/invocation/next"
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
_SHIM_FILE = os.path.abspath(__file__)
_IMPORTLIB_FILE = os.path.abspath(importlib.__file__)

# The request id of the invocation in progress, for log records.
_request_id = None


class FaultException(Exception):
    """A failure the runtime names itself (errorType `Runtime.*`), as awslambdaric does."""

    IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
    HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
    MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
    BUILT_IN_MODULE_CONFLICT = "Runtime.BuiltInModuleConflict"
    USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
    UNMARSHAL_ERROR = "Runtime.UnmarshalError"
    MARSHAL_ERROR = "Runtime.MarshalError"
    CONTEXT_UNMARSHAL_ERROR = "Runtime.LambdaContextUnmarshalError"

    def __init__(self, error_type, msg, trace=None):
        super().__init__(msg)
        self.error_type = error_type
        self.msg = msg
        self.trace = trace


# --- the Runtime API client ----------------------------------------------------------------


class _Response(object):
    __slots__ = ("status", "headers")

    def __init__(self, status, headers):
        self.status = status
        self.headers = headers


class RuntimeClient:
    """One persistent HTTP/1.1 connection to the Runtime API, reopened when it drops.

    A minimal exchange on a plain socket (request line, headers, Content-Length or chunked
    body): http.client costs several hundred microseconds per exchange, and every invocation
    needs two (GET /next, POST /response)."""

    def __init__(self, address, unix=None):
        self.address = address
        host, _, port = address.rpartition(":")
        self._hostport = (host.strip("[]") or "127.0.0.1", int(port or 80))
        # ferry dev also serves the Runtime API on a Unix socket, cheaper than loopback TCP.
        self._unix = unix or None
        self._sock = None
        self._buf = b""
        self._reused = False
        # The same bytes every time.
        self._next_request = ("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (NEXT, address)).encode("latin-1")

    def _close(self):
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
        self._sock = None
        self._buf = b""

    def _fill(self):
        chunk = self._sock.recv(65536)
        if not chunk:
            raise ConnectionError("the Runtime API closed the connection")
        self._buf += chunk

    def _read_response(self):
        """The next response: (status, headers with lower-case names, body)."""
        end = self._buf.find(b"\r\n\r\n")
        while end < 0:
            self._fill()
            end = self._buf.find(b"\r\n\r\n")
        lines = self._buf[:end].decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            # A name has no spaces (RFC 9110), so only the value needs trimming.
            name, _, value = line.partition(":")
            headers[name.lower()] = value.strip()
        pos = end + 4
        if "chunked" in headers.get("transfer-encoding", ""):
            parts = []
            while True:
                line_end = self._buf.find(b"\r\n", pos)
                while line_end < 0:
                    self._fill()
                    line_end = self._buf.find(b"\r\n", pos)
                size = int(self._buf[pos:line_end].split(b";")[0], 16)
                while len(self._buf) < line_end + 2 + size + 2:
                    self._fill()
                if size == 0:
                    self._buf = self._buf[line_end + 4:]
                    return status, headers, b"".join(parts)
                parts.append(self._buf[line_end + 2:line_end + 2 + size])
                pos = line_end + 2 + size + 2
        length = int(headers.get("content-length") or 0)
        while len(self._buf) < pos + length:
            self._fill()
        body = self._buf[pos:pos + length]
        self._buf = self._buf[pos + length:]
        return status, headers, body

    def _post_bytes(self, path, body, content_type, error_type=None):
        if isinstance(body, str):
            body = body.encode("utf-8")
        extra = "" if error_type is None else "%s: %s\r\n" % (ERROR_TYPE_HEADER, error_type)
        head = "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\n%sContent-Length: %d\r\n\r\n" % (
            path,
            self.address,
            content_type,
            extra,
            len(body),
        )
        return head.encode("latin-1") + body

    def _exchange(self, requests):
        """Sends the requests back to back (HTTP/1.1 pipelining) and reads their responses, in
        order: a list of (response, body)."""
        answers = []
        while True:
            if self._sock is None:
                # No timeout: GET /next is a long poll that lasts until an event arrives.
                if self._unix is not None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    try:
                        self._sock.connect(self._unix)
                    except OSError:
                        self._sock.close()
                        self._sock = None
                        raise
                else:
                    self._sock = socket.create_connection(self._hostport)
                    self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._reused = False
            reused, before = self._reused, len(answers)
            try:
                self._sock.sendall(b"".join(requests[len(answers):]))
                while len(answers) < len(requests):
                    status, response_headers, payload = self._read_response()
                    answers.append((_Response(status, response_headers), payload))
                    self._reused = True
            except (OSError, ValueError, IndexError) as e:
                self._close()
                # A request left unanswered when the connection closes was never processed
                # (responses come in order): a kept-alive connection the server closed while it
                # sat idle, or right after a response. Send it once more on a new connection. A
                # new one that answers nothing means the Runtime API is gone.
                if reused or len(answers) > before:
                    continue
                raise ConnectionError(str(e))
            return answers

    def _next_event(self, response, body):
        if response.status == 410:
            # ferry answers 410 Gone when it shuts the worker's Runtime API down: a normal end.
            raise SystemExit(0)
        if response.status != 200:
            raise RuntimeError(
                "GET /invocation/next answered %d: %r" % (response.status, body[:500])
            )
        return response.headers, body

    def next(self):
        """The next invocation: (headers, body)."""
        return self._next_event(*self._exchange([self._next_request])[0])

    def _post(self, path, body, content_type, error_type=None, then_next=False):
        if error_type is not None:
            error_type = _header_value(error_type)
        requests = [self._post_bytes(path, body, content_type, error_type)]
        if then_next:
            # The next GET /next goes out with the answer: one write and one wait fewer.
            requests.append(self._next_request)
        answers = self._exchange(requests)
        response, answer = answers[0]
        if not 200 <= response.status <= 299:
            sys.stderr.write(
                "ferry runtime: POST %s was refused with %d: %s\n"
                % (path, response.status, answer.decode("utf-8", "replace"))
            )
        return self._next_event(*answers[1]) if then_next else None

    def post_response(self, request_id, body, content_type):
        """Answers an invocation; returns the next one, (headers, body)."""
        path = API + "/invocation/" + _path_segment(request_id) + "/response"
        return self._post(path, body, content_type, then_next=True)

    def post_error(self, request_id, error):
        """Fails an invocation; returns the next one, (headers, body)."""
        path = API + "/invocation/" + _path_segment(request_id) + "/error"
        return self._post(path, _error_json(error), "application/json", "Unhandled", True)

    def post_init_error(self, error):
        self._post(API + "/init/error", _error_json(error), "application/json", error["errorType"])


# Characters a path segment carries as they are (RFC 3986 unreserved): request ids are UUIDs.
_UNRESERVED = re.compile(r"[A-Za-z0-9._~-]+\Z").match


def _path_segment(text):
    return text if _UNRESERVED(text) else quote(text, safe="")


def _header_value(text):
    clean = "".join(c for c in str(text) if " " <= c <= "~")
    return clean or "Unhandled"


# --- errors --------------------------------------------------------------------------------


def make_error(message, error_type, stack_trace, request_id=None):
    return {
        "errorMessage": message if message else "",
        "errorType": error_type if error_type else "",
        "requestId": request_id if request_id is not None else "",
        "stackTrace": stack_trace if stack_trace else [],
    }


def _is_runtime_frame(filename):
    # This shim's own frames, and importlib's when the module failed while it was imported.
    return (
        filename.startswith("<frozen importlib")
        or os.path.abspath(filename) in (_SHIM_FILE, _IMPORTLIB_FILE)
    )


def error_from_exception(exc, request_id=None):
    """The error body for an exception raised by user code, without this shim's frames."""
    frames = traceback.extract_tb(exc.__traceback__)
    start = 0
    while start < len(frames) and _is_runtime_frame(frames[start].filename):
        start += 1
    return make_error(
        str(exc), type(exc).__name__, traceback.format_list(frames[start:]), request_id
    )


def _error_json(error):
    try:
        return json.dumps(error).encode()
    except (TypeError, ValueError):
        return json.dumps({k: str(v) for k, v in error.items()}).encode()


def log_error(error):
    """Prints an error the way AWS's Python runtime logs it (lines joined by newlines)."""
    line = "[ERROR]"
    if error.get("errorType"):
        line += " " + error["errorType"]
    if error.get("errorMessage"):
        line += (":" if error.get("errorType") else "") + " " + error["errorMessage"]
    lines = [line]
    trace = error.get("stackTrace")
    if trace:
        lines.append("Traceback (most recent call last):")
        for element in trace:
            lines.extend(element.splitlines() or [""])
    sys.stderr.write("\n".join(lines) + "\n")


# --- the context ---------------------------------------------------------------------------


class CognitoIdentity:
    __slots__ = ["cognito_identity_id", "cognito_identity_pool_id"]

    def __repr__(self):
        return "CognitoIdentity([cognito_identity_id=%s,cognito_identity_pool_id=%s])" % (
            self.cognito_identity_id,
            self.cognito_identity_pool_id,
        )


class Client:
    __slots__ = [
        "installation_id",
        "app_title",
        "app_version_name",
        "app_version_code",
        "app_package_name",
    ]

    def __repr__(self):
        fields = ",".join("%s=%s" % (f, getattr(self, f)) for f in self.__slots__)
        return "Client([%s])" % fields


class ClientContext:
    __slots__ = ["custom", "env", "client"]

    def __repr__(self):
        return "ClientContext([custom=%s,env=%s,client=%s])" % (self.custom, self.env, self.client)


def _from_dict(cls, values):
    if values is None:
        return None
    obj = cls()
    for field in cls.__slots__:
        setattr(obj, field, values.get(field))
    return obj


def _parse_header_json(text, name):
    try:
        return json.loads(text)
    except ValueError as e:
        raise FaultException(
            FaultException.CONTEXT_UNMARSHAL_ERROR, "Unable to parse %s JSON: %s" % (name, e)
        )


# Read once: awslambdaric reads them per invocation, but nothing in a worker changes them.
_FUNCTION_NAME = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
_FUNCTION_VERSION = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
_MEMORY_SIZE = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")  # a string, as on AWS
_LOG_GROUP = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
_LOG_STREAM = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")


class LambdaContext:
    """The `context` argument, with the attributes of awslambdaric's LambdaContext."""

    def __init__(self, request_id, headers):
        self.aws_request_id = request_id
        self.log_group_name = _LOG_GROUP
        self.log_stream_name = _LOG_STREAM
        self.function_name = _FUNCTION_NAME
        self.memory_limit_in_mb = _MEMORY_SIZE
        self.function_version = _FUNCTION_VERSION
        self.invoked_function_arn = headers.get("lambda-runtime-invoked-function-arn")
        self.tenant_id = headers.get("lambda-runtime-aws-tenant-id")

        client_context = headers.get("lambda-runtime-client-context")
        if client_context:
            client_context = _parse_header_json(client_context, "Client Context")
        self.client_context = _from_dict(ClientContext, client_context or None)
        if self.client_context is not None:
            self.client_context.client = _from_dict(Client, self.client_context.client)

        identity = headers.get("lambda-runtime-cognito-identity")
        identity = _parse_header_json(identity, "Cognito Identity") if identity else {}
        self.identity = CognitoIdentity()
        self.identity.cognito_identity_id = identity.get("cognitoIdentityId")
        self.identity.cognito_identity_pool_id = identity.get("cognitoIdentityPoolId")

        try:
            self._deadline_ms = int(headers.get("lambda-runtime-deadline-ms") or 0)
        except ValueError:
            self._deadline_ms = 0

    def get_remaining_time_in_millis(self):
        remaining = self._deadline_ms - int(time.time() * 1000)
        return remaining if remaining > 0 else 0

    def log(self, msg):
        sys.stdout.write(str(msg))

    def __repr__(self):
        return (
            "LambdaContext([aws_request_id=%s,log_group_name=%s,log_stream_name=%s,"
            "function_name=%s,memory_limit_in_mb=%s,function_version=%s,"
            "invoked_function_arn=%s,client_context=%s,identity=%s,tenant_id=%s])"
            % (
                self.aws_request_id,
                self.log_group_name,
                self.log_stream_name,
                self.function_name,
                self.memory_limit_in_mb,
                self.function_version,
                self.invoked_function_arn,
                self.client_context,
                self.identity,
                self.tenant_id,
            )
        )


# --- events and results --------------------------------------------------------------------


def _json_default(value):
    # DynamoDB hands out Decimals; AWS's encoder writes them as numbers. Nothing can be a
    # Decimal unless `decimal` was imported, so this costs no import.
    decimal = sys.modules.get("decimal")
    if decimal is not None and isinstance(value, decimal.Decimal):
        if value.is_nan():
            return float("nan")
        if value == value.to_integral_value():
            return int(value)
        return float(value)
    raise TypeError("Object of type %s is not JSON serializable" % type(value).__name__)


# json.loads without its Python layers (encoding detection, decode(), raw_decode()): the C
# scanner json.loads ends up in, called directly. Anything it does not take whole (other
# encodings, surrounding whitespace, bad JSON) goes through json.loads as before.
_SCAN = json.scanner.make_scanner(json.JSONDecoder())


def unmarshal_event(body, content_type):
    # AWS passes anything that is not JSON through as bytes.
    if content_type and not content_type.startswith("application/json"):
        return body
    try:
        text = body.decode("utf-8")
        value, end = _SCAN(text, 0)
        if end == len(text):
            return value
    except (UnicodeDecodeError, StopIteration, ValueError, RecursionError):
        pass
    try:
        return json.loads(body)
    except ValueError as e:
        raise FaultException(FaultException.UNMARSHAL_ERROR, "Unable to unmarshal input: %s" % e)


# What json.dumps(result, default=_json_default) builds on every call, built once.
_ENCODER = json.JSONEncoder(default=_json_default)


def marshal_result(result):
    """The response body and its content type."""
    if isinstance(result, bytes):
        return result, "application/unknown"
    try:
        return _ENCODER.encode(result).encode(), "application/json"
    except (TypeError, ValueError, OverflowError) as e:
        raise FaultException(FaultException.MARSHAL_ERROR, "Unable to marshal response: %s" % e)


# --- loading the handler -------------------------------------------------------------------


def load_handler(handler):
    """`worker.handle`, `pkg/mod.handle` or `pkg.mod.handle`: the module is everything up to the
    last dot (slashes read as dots), the attribute what follows it, as awslambdaric reads it."""
    if handler.startswith("./"):
        handler = handler[2:]
    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError as e:
        raise FaultException(
            FaultException.MALFORMED_HANDLER_NAME, "Bad handler '%s': %s" % (handler, e)
        )
    try:
        if modname.split(".")[0] in sys.builtin_module_names:
            raise FaultException(
                FaultException.BUILT_IN_MODULE_CONFLICT,
                "Cannot use built-in module %s as a handler module" % modname,
            )
        module = importlib.import_module(modname.replace("/", "."))
    except ImportError as e:
        raise FaultException(
            FaultException.IMPORT_MODULE_ERROR,
            "Unable to import module '%s': %s" % (modname, e),
        )
    except SyntaxError as e:
        trace = ['  File "%s" Line %s\n    %s' % (e.filename, e.lineno, e.text)]
        raise FaultException(
            FaultException.USER_CODE_SYNTAX_ERROR,
            "Syntax error in module '%s': %s" % (modname, e),
            trace,
        )
    try:
        return getattr(module, fname)
    except AttributeError:
        raise FaultException(
            FaultException.HANDLER_NOT_FOUND,
            "Handler '%s' missing on module '%s'" % (fname, modname),
        )


# --- logging -------------------------------------------------------------------------------


class _RequestIdFilter(logging.Filter):
    def filter(self, record):
        record.aws_request_id = _request_id or ""
        return True


def setup_logging():
    """A root handler in AWS's text format, so `logging` output appears as it does on AWS
    (without one, records below WARNING would be dropped)."""
    handler = logging.StreamHandler(sys.stdout)
    formatter = logging.Formatter(
        "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
        "%Y-%m-%dT%H:%M:%S",
    )
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "").upper()
    level = {"TRACE": "DEBUG", "FATAL": "CRITICAL"}.get(level, level)
    if level in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        root.setLevel(level)


# --- the loop ------------------------------------------------------------------------------


def serve(client, handler):
    global _request_id
    environ = os.environ
    headers, body = client.next()
    while True:
        request_id = headers.get("lambda-runtime-aws-request-id")
        if not request_id:
            raise RuntimeError("GET /invocation/next answered without Lambda-Runtime-Aws-Request-Id")
        _request_id = request_id
        trace_id = headers.get("lambda-runtime-trace-id")
        if trace_id:
            environ["_X_AMZN_TRACE_ID"] = trace_id
        else:
            environ.pop("_X_AMZN_TRACE_ID", None)

        try:
            context = LambdaContext(request_id, headers)
            event = unmarshal_event(body, headers.get("content-type"))
            payload, content_type = marshal_result(handler(event, context))
        except FaultException as e:
            error = make_error(e.msg, e.error_type, e.trace, request_id)
        except Exception as e:
            error = error_from_exception(e, request_id)
        else:
            headers, body = client.post_response(request_id, payload, content_type)
            continue
        log_error(error)
        headers, body = client.post_error(request_id, error)


def main():
    # Logs must appear as they are written, not when a buffer fills.
    for stream in (sys.stdout, sys.stderr):
        if stream is not None and hasattr(stream, "reconfigure"):
            stream.reconfigure(line_buffering=True)

    address = os.environ.get("AWS_LAMBDA_RUNTIME_API")
    if not address:
        sys.stderr.write("ferry runtime: AWS_LAMBDA_RUNTIME_API is not set\n")
        return 1
    task_root = os.environ.get("LAMBDA_TASK_ROOT") or os.getcwd()
    # The user's modules come from the task root, never from this shim's own folder.
    shim_dir = os.path.dirname(_SHIM_FILE)
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != shim_dir]
    sys.path.insert(0, task_root)

    # Removed from the environment before the function loads: it sees Lambda's.
    client = RuntimeClient(address, os.environ.pop("_FERRY_RUNTIME_API_SOCKET", None))
    setup_logging()
    try:
        handler = load_handler(os.environ.get("_HANDLER", ""))
    except FaultException as e:
        error = make_error(e.msg, e.error_type, e.trace)
    except Exception as e:  # the module's own code failed while it was imported
        error = error_from_exception(e)
    else:
        try:
            serve(client, handler)
        except (OSError, http.client.HTTPException, RuntimeError) as e:
            sys.stderr.write("ferry runtime: lost the Runtime API: %s\n" % e)
            return 1
        return 0
    log_error(error)
    try:
        client.post_init_error(error)
    except (OSError, http.client.HTTPException) as e:
        sys.stderr.write("ferry runtime: could not report the init error: %s\n" % e)
    return 1


if __name__ == "__main__":
    sys.exit(main())
