"""ferry's provider-neutral Lambda layer for Python handlers written in the AWS Lambda shape.

A provider adapter (templates/azure/python/adapter.py, templates/gcp/python/main.py) imports
this module (shipped as `ferry/ferry_lambda.py`), calls `configure(...)` once with what only it
knows (where the app and `ferry/functions.json` are, the account and api ids, the log group and
stream names), turns the provider's invocation into neutral fields, and uses what is here to
build the event a handler gets on AWS Lambda and under `ferry dev` (API Gateway HTTP API 2.0 or
REST 1.0, the Serverless Framework's `lambda` template, SQS, EventBridge Scheduled Event, S3,
SNS), to call the handler with a Lambda-style context, and to map an HTTP result back by API
Gateway's rules.

Only the standard library is used.
"""

import base64
import hashlib
import importlib
import json
import os
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from urllib.parse import quote_plus, unquote, unquote_plus, urlsplit

# What the adapter configures. A value may be a callable, called each time it is needed.
_options = {
    "root": os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    "manifest_path": os.path.join(os.path.dirname(os.path.abspath(__file__)), "functions.json"),
    "account_id": "000000000000",
    "api_id": "local",
    "log_group_name": "/ferry/functions/local",
    "log_stream_name": "local",
}

_lock = threading.Lock()
_manifest = None
_handlers = {}


class HandlerFailed(Exception):
    """The handler reported a failure (an error, or `batchItemFailures` for a queue message)."""


def configure(**options):
    """Sets any of root, manifest_path, account_id, api_id, log_group_name, log_stream_name."""
    global _manifest
    unknown = set(options) - set(_options)
    if unknown:
        raise TypeError("unknown options: %s" % ", ".join(sorted(unknown)))
    with _lock:
        _options.update(options)
        _manifest = None
        _handlers.clear()


def option(name):
    v = _options[name]
    return v() if callable(v) else v


def manifest():
    global _manifest
    if _manifest is None:
        with open(option("manifest_path"), encoding="utf-8") as f:
            _manifest = json.load(f)
    return _manifest


def manifest_stage():
    return manifest().get("stage", "dev")


def load_handler(handler):
    """`worker.handle`, `pkg/mod.handle` or `pkg.mod.handle`, read as awslambdaric reads it."""
    with _lock:
        if handler in _handlers:
            return _handlers[handler]
        name = handler[2:] if handler.startswith("./") else handler
        modname, _, fname = name.rpartition(".")
        if not modname:
            raise RuntimeError("Bad handler '%s': no module" % handler)
        root = option("root")
        if root not in sys.path:
            sys.path.insert(0, root)
        module = importlib.import_module(modname.replace("/", "."))
        try:
            fn = getattr(module, fname)
        except AttributeError:
            raise RuntimeError("Handler '%s' missing on module '%s'" % (fname, modname))
        _handlers[handler] = fn
        return fn


class LambdaContext:
    """The `context` argument, with the attributes of awslambdaric's LambdaContext.

    fn: the function's functions.json entry (function, memory, timeout, optional id)."""

    def __init__(self, fn, request_id):
        self.aws_request_id = request_id
        self.function_name = fn["function"]
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = str(fn["memory"])
        self.invoked_function_arn = fn.get("id") or fn["function"]
        self.log_group_name = option("log_group_name")
        self.log_stream_name = option("log_stream_name")
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self._deadline_ms = int(time.time() * 1000) + int(fn["timeout"]) * 1000

    def get_remaining_time_in_millis(self):
        return max(0, self._deadline_ms - int(time.time() * 1000))

    def log(self, msg):
        sys.stdout.write(str(msg))


def invoke(fn, event, request_id):
    """Calls the handler of a functions.json entry with `event`; returns its result."""
    handler = load_handler(fn["handler"])
    return handler(event, LambdaContext(fn, request_id))


# --- HTTP ---------------------------------------------------------------------------------

_TEXT_TYPES = {
    "application/json",
    "application/xml",
    "application/javascript",
    "application/x-www-form-urlencoded",
    "application/graphql",
}


def is_text(content_type):
    """Content types whose bodies API Gateway passes as text; anything else is base64."""
    if content_type is None:
        return True
    ct = content_type.split(";")[0].strip().lower()
    return (
        ct == ""
        or ct.startswith("text/")
        or ct.endswith("+json")
        or ct.endswith("+xml")
        or ct in _TEXT_TYPES
    )


def parse_query(q):
    out = []
    for part in q.split("&"):
        if not part:
            continue
        k, _, v = part.partition("=")
        out.append((unquote_plus(k), unquote_plus(v)))
    return out


def now():
    """(the current UTC datetime, epoch milliseconds)."""
    t = datetime.now(timezone.utc)
    return t, int(t.timestamp() * 1000)


def _body(headers, body):
    if not body:
        return None, False
    if is_text(headers.get("content-type")):
        try:
            return body.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(body).decode("ascii"), True


# `ferry dev`'s route table: segments split on `/` with empty ones dropped; literal segments beat
# `{param}` segments, which beat a final `{proxy+}` (which needs at least one segment); exact
# methods beat ANY.
def _segments(p):
    return [s for s in p.split("/") if s]


def _route_matches(template, path):
    """`/items/{id}` against `/items/a%20b` → {"id": "a b"} (decoded, `+` kept, as `ferry dev`
    gives them); None when it does not match."""
    segs = _segments(template)
    parts = _segments(path)
    params = {}
    for i, seg in enumerate(segs):
        if seg.startswith("{") and seg.endswith("+}"):
            if i >= len(parts):
                return None
            params[seg[1:-2]] = unquote("/".join(parts[i:]))
            return params
        if i >= len(parts):
            return None
        if seg.startswith("{") and seg.endswith("}"):
            params[seg[1:-1]] = unquote(parts[i])
        elif seg != parts[i]:
            return None
    return params if len(segs) == len(parts) else None


def _by_specificity(triggers):
    def key(t):
        segs = _segments(t["path"])
        greedy = any(s.startswith("{") and s.endswith("+}") for s in segs)
        lits = sum(1 for s in segs if not s.startswith("{"))
        return (greedy, -lits, -len(segs), t["method"] == "ANY")

    return sorted(triggers or [], key=key)


def find_route(triggers, method, path):
    """The http trigger a request goes to: (trigger, params) or None."""
    for t in _by_specificity(triggers):
        if t["method"] != method and t["method"] != "ANY":
            continue
        params = _route_matches(t["path"], path)
        if params is not None:
            return t, params
    return None


def message(status, text):
    """`{"message": ...}` as JSON, the gateway's own answers: (status, headers, body)."""
    body = json.dumps({"message": text}, separators=(",", ":")).encode()
    return status, [("content-type", "application/json")], body


def unrouted(triggers, method, path, headers):
    """What `ferry dev`'s gateway answers a request no route takes: a CORS preflight (an
    OPTIONS request whose path a route with `cors: true` has) or 404. headers: (name, value)
    pairs. Returns (status, [(name, value)], body bytes)."""
    if method == "OPTIONS":
        r = next((t for t in _by_specificity(triggers) if _route_matches(t["path"], path) is not None), None)
        if r is not None and r.get("cors"):
            allow = next((v for k, v in headers if k.lower() == "access-control-request-headers"), "*")
            methods = [t["method"] for t in triggers if t["path"] == r["path"]]
            return (
                204,
                [
                    ("access-control-allow-origin", "*"),
                    ("access-control-allow-methods", ",".join(methods) + ",OPTIONS"),
                    ("access-control-allow-headers", allow),
                    ("access-control-max-age", "600"),
                ],
                b"",
            )
    return message(404, "Not Found")


def handler_failed(trigger):
    """What the gateway answers when the handler failed (raised, or its runtime crashed)."""
    if trigger.get("payload") == "lambda":
        return message(500, "Internal server error")
    return message(502, "Internal Server Error")


def with_cors(trigger, response):
    """`ferry dev` adds `access-control-allow-origin: *` to the answers of a `cors: true` route."""
    status, headers, body = response
    if trigger.get("cors") and not any(k == "access-control-allow-origin" for k, _ in headers):
        headers = list(headers) + [("access-control-allow-origin", "*")]
    return status, headers, body


def http_event(trigger, method, url, headers, body, fallback_params, request_id, source_ip=None):
    """The API Gateway event for a request.

    headers: (name, value) pairs; fallback_params: the route parameters the platform matched,
    used when the manifest's route does not match the raw path."""
    headers = [(k.lower(), v) for k, v in headers]
    parts = urlsplit(url)
    path, query = parts.path or "/", parts.query
    domain = next((v for k, v in headers if k == "host"), parts.netloc)
    single = {}
    for k, v in headers:
        single[k] = v if k not in single else single[k] + "," + v
    ip = source_ip or (single.get("x-forwarded-for") or "").split(",")[0].strip() or "127.0.0.1"
    # Path parameters come from the raw path, matched against the manifest's route (so they
    # decode exactly as under `ferry dev`); the platform's route values are the fallback.
    params = _route_matches(trigger["path"], path)
    if params is None:
        params = {k: v for k, v in (fallback_params or {}).items() if v is not None}
    route_key = "%s %s" % (trigger["method"], trigger["path"])
    t, epoch = now()
    text, b64 = _body(single, body)
    if trigger.get("payload") == "lambda":
        # The Serverless Framework's default request template for `integration: lambda`.
        try:
            parsed = json.loads(body) if body else {}
        except ValueError:
            parsed = body.decode("utf-8", "replace")
        return {
            "body": parsed,
            "method": method,
            "principalId": "",
            "stage": manifest_stage(),
            "cognitoPoolClaims": {"sub": ""},
            "enhancedAuthContext": {},
            "headers": dict(headers),
            "query": dict(parse_query(query)),
            "path": params,
            "identity": {"sourceIp": ip, "userAgent": single.get("user-agent")},
            "stageVariables": {},
            "requestPath": trigger["path"],
        }
    if trigger.get("payload") == "1.0":
        qs, mqs = {}, {}
        for k, v in parse_query(query):
            qs[k] = v
            mqs.setdefault(k, []).append(v)
        multi = {}
        last = {}
        for k, v in headers:
            last[k] = v
            multi.setdefault(k, []).append(v)
        return {
            "resource": trigger["path"],
            "path": path,
            "httpMethod": method,
            "headers": last or None,
            "multiValueHeaders": multi or None,
            "queryStringParameters": qs or None,
            "multiValueQueryStringParameters": mqs or None,
            "pathParameters": params or None,
            "stageVariables": None,
            "requestContext": {
                "accountId": option("account_id"),
                "apiId": option("api_id"),
                "domainName": domain,
                "httpMethod": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "requestId": request_id,
                "requestTime": t.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "requestTimeEpoch": epoch,
                "resourcePath": trigger["path"],
                "stage": manifest_stage(),
                "identity": {"sourceIp": ip, "userAgent": single.get("user-agent")},
            },
            "body": text,
            "isBase64Encoded": b64,
        }
    cookies = []
    for k, v in headers:
        if k == "cookie":
            cookies.extend(c.strip() for c in v.split(";") if c.strip())
    single.pop("cookie", None)
    qs = {}
    for k, v in parse_query(query):
        qs[k] = v if k not in qs else qs[k] + "," + v
    event = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": query,
        "headers": single,
        "requestContext": {
            "accountId": option("account_id"),
            "apiId": option("api_id"),
            "domainName": domain,
            "domainPrefix": domain.split(".")[0],
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": ip,
                "userAgent": single.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": route_key,
            "stage": "$default",
            "time": t.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": epoch,
        },
        "isBase64Encoded": b64,
    }
    if cookies:
        event["cookies"] = cookies
    if qs:
        event["queryStringParameters"] = qs
    if params:
        event["pathParameters"] = params
    if text is not None:
        event["body"] = text
    return event


def http_response(trigger, result):
    """(status, [(header, value)], body bytes) for a handler's result, by API Gateway's rules."""
    version = trigger.get("payload", "2.0")

    def error():
        return 502, [("content-type", "application/json")], b'{"message":"Internal Server Error"}'

    if isinstance(result, (bytes, bytearray)):
        try:
            result = json.loads(result)
        except ValueError:
            return error()
    if version == "lambda":
        return 200, [("content-type", "application/json")], json.dumps(result, separators=(",", ":")).encode()
    if not (isinstance(result, dict) and "statusCode" in result):
        if version == "1.0":
            return 502, [("content-type", "application/json")], b'{"message":"Internal server error"}'
        body = result if isinstance(result, str) else json.dumps(result, separators=(",", ":"))
        return 200, [("content-type", "application/json")], body.encode()
    try:
        status = int(result["statusCode"])
    except (TypeError, ValueError):
        status = 500
    headers = []
    for k, v in (result.get("headers") or {}).items():
        headers.append((k.lower(), _scalar(v)))
    for k, vs in (result.get("multiValueHeaders") or {}).items():
        for v in vs or []:
            headers.append((k.lower(), _scalar(v)))
    for c in result.get("cookies") or []:
        headers.append(("set-cookie", _scalar(c)))
    body = result.get("body")
    if body is None:
        data = b""
    elif isinstance(body, str) and result.get("isBase64Encoded") is True:
        try:
            data = base64.b64decode(body, validate=True)
        except ValueError:
            return error()
    elif isinstance(body, str):
        data = body.encode()
    else:
        data = json.dumps(body, separators=(",", ":")).encode()
    if data and not any(k == "content-type" for k, _ in headers):
        headers.append(("content-type", "application/json"))
    return status, headers, data


def _scalar(v):
    return v if isinstance(v, str) else json.dumps(v)


# --- other events -------------------------------------------------------------------------


def _md5(text):
    return hashlib.md5(text.encode()).hexdigest()


def queue_event(trigger, message_id, body, receive_count, sent_ms, sender_id, attributes=None):
    """The SQS event for one message (body: a string; attributes: an optional string map, the
    message attributes)."""
    message_attributes = {
        k: {"stringValue": str(v), "stringListValues": [], "binaryListValues": [], "dataType": "String"}
        for k, v in (attributes or {}).items()
    }
    return {
        "Records": [
            {
                "messageId": message_id,
                "receiptHandle": message_id,
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": str(receive_count),
                    "SentTimestamp": str(sent_ms),
                    "SenderId": sender_id,
                    "ApproximateFirstReceiveTimestamp": str(now()[1]),
                },
                "messageAttributes": message_attributes,
                "md5OfBody": _md5(body),
                "eventSource": "aws:sqs",
                "eventSourceARN": trigger.get("id") or trigger["queue"],
                "awsRegion": manifest().get("region", ""),
            }
        ]
    }


def schedule_event(trigger, request_id, when=None):
    """EventBridge's Scheduled Event (or the trigger's fixed input). when: the UTC datetime it
    was due (now by default)."""
    if trigger.get("input") is not None:
        return trigger["input"]
    return {
        "version": "0",
        "id": request_id,
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": option("account_id"),
        "time": (when or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": manifest().get("region", ""),
        "resources": [trigger.get("id") or trigger["rule"]],
        "detail": {},
    }


def encode_key(key):
    """S3 event keys are URL-encoded with spaces as `+`, slashes kept."""
    return "/".join(quote_plus(p, safe="") for p in key.split("/"))


def s3_event(
    trigger,
    key,
    created,
    size=0,
    e_tag="",
    sequencer="",
    time="",
    configuration_id="ferry",
    principal_id="",
):
    """The S3 notification for one object (key: not encoded; size and e_tag are only used for
    created objects)."""
    obj = {"key": encode_key(key), "sequencer": sequencer}
    if created:
        obj["size"] = size
        obj["eTag"] = e_tag
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": manifest().get("region", ""),
                "eventTime": time or "",
                "eventName": "ObjectCreated:Put" if created else "ObjectRemoved:Delete",
                "userIdentity": {"principalId": principal_id},
                "requestParameters": {"sourceIPAddress": ""},
                "responseElements": {},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": configuration_id or "ferry",
                    "bucket": {
                        "name": trigger["bucket"],
                        "ownerIdentity": {"principalId": ""},
                        "arn": trigger.get("id") or trigger["bucket"],
                    },
                    "object": obj,
                },
            }
        ]
    }


def storage_wants(trigger, key, created):
    """Whether a storage trigger takes an object: its `events`, `prefix` and `suffix`."""
    events = trigger.get("events") or ["created", "removed"]
    if ("created" if created else "removed") not in events:
        return False
    if trigger.get("prefix") is not None and not key.startswith(trigger["prefix"]):
        return False
    if trigger.get("suffix") is not None and not key.endswith(trigger["suffix"]):
        return False
    return True


def sns_event(trigger, id, subject, message, time, attributes=None, subscription=None):
    """The SNS notification for one message (message: a string; attributes: an optional string
    map; subscription: the EventSubscriptionArn, the trigger's id by default)."""
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": subscription or trigger.get("id") or trigger["topic"],
                "Sns": {
                    "Type": "Notification",
                    "MessageId": id or str(uuid.uuid4()),
                    "TopicArn": trigger.get("id") or trigger["topic"],
                    "Subject": subject or None,
                    "Message": message,
                    "Timestamp": time or "",
                    "SignatureVersion": "1",
                    "Signature": "",
                    "MessageAttributes": {
                        k: {"Type": "String", "Value": str(v)} for k, v in (attributes or {}).items()
                    },
                },
            }
        ]
    }


def check_queue_result(result):
    """Raises HandlerFailed when a queue handler reported its message in `batchItemFailures`."""
    failures = (result or {}).get("batchItemFailures") if isinstance(result, dict) else None
    if failures:
        raise HandlerFailed("the handler reported the message in batchItemFailures: %s" % failures)
