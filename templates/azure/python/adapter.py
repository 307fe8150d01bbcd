"""ferry's Azure Functions adapter for Python handlers written in the AWS Lambda shape.

Every Azure function of the app points its `scriptFile` here with an entry point per trigger
kind (`http`, `queue`, `timer`, `event`). The adapter reads `ferry/functions.json` (written by
`ferry package --provider azure`) to learn which handler an Azure function runs and what its
trigger looks like in the manifest, turns the Azure invocation into the event the handler gets
on AWS Lambda and under `ferry dev` (API Gateway HTTP API 2.0 or REST 1.0, SQS, EventBridge
Scheduled Event, S3, SNS), calls the handler with a Lambda-style context, and maps the result
back: an HTTP response, or an exception so that Azure retries the message (a queue handler's
`batchItemFailures` fail the message, as on SQS with partial batch responses).

Only the standard library and `azure.functions` (which the Python worker provides) are used.
"""

import base64
import importlib
import json
import os
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from urllib.parse import quote_plus, unquote, unquote_plus, urlsplit

_APP_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_MANIFEST_PATH = os.path.join(_APP_ROOT, "ferry", "functions.json")

_lock = threading.Lock()
_manifest = None
_handlers = {}


class HandlerFailed(Exception):
    """The handler reported a failure (an error, or `batchItemFailures` for a queue message)."""


def manifest():
    global _manifest
    if _manifest is None:
        with open(_MANIFEST_PATH, encoding="utf-8") as f:
            _manifest = json.load(f)
    return _manifest


def entry(azure_name):
    try:
        return manifest()["functions"][azure_name]
    except KeyError:
        raise RuntimeError(
            "ferry: %s is not in ferry/functions.json; the package is stale, run ferry deploy again"
            % azure_name
        )


def load_handler(handler):
    """`worker.handle`, `pkg/mod.handle` or `pkg.mod.handle`, read as awslambdaric reads it."""
    with _lock:
        if handler in _handlers:
            return _handlers[handler]
        name = handler[2:] if handler.startswith("./") else handler
        modname, _, fname = name.rpartition(".")
        if not modname:
            raise RuntimeError("Bad handler '%s': no module" % handler)
        if _APP_ROOT not in sys.path:
            sys.path.insert(0, _APP_ROOT)
        module = importlib.import_module(modname.replace("/", "."))
        try:
            fn = getattr(module, fname)
        except AttributeError:
            raise RuntimeError("Handler '%s' missing on module '%s'" % (fname, modname))
        _handlers[handler] = fn
        return fn


class LambdaContext:
    """The `context` argument, with the attributes of awslambdaric's LambdaContext."""

    def __init__(self, fn, request_id):
        self.aws_request_id = request_id
        self.function_name = fn["function"]
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = str(fn["memory"])
        self.invoked_function_arn = fn.get("id") or fn["function"]
        self.log_group_name = "/azure/functions/%s" % os.environ.get("WEBSITE_SITE_NAME", "local")
        self.log_stream_name = os.environ.get("WEBSITE_INSTANCE_ID", "local")
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self._deadline_ms = int(time.time() * 1000) + int(fn["timeout"]) * 1000

    def get_remaining_time_in_millis(self):
        return max(0, self._deadline_ms - int(time.time() * 1000))

    def log(self, msg):
        sys.stdout.write(str(msg))


# --- events -------------------------------------------------------------------------------

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


def _now():
    now = datetime.now(timezone.utc)
    return now, int(now.timestamp() * 1000)


def _body(headers, body):
    if not body:
        return None, False
    if is_text(headers.get("content-type")):
        try:
            return body.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(body).decode("ascii"), True


def match_path(template, path):
    """`/items/{id}` against `/items/a%20b` → {"id": "a b"} (decoded, `+` kept, as the local
    runtime gives them); None when it does not match."""
    want = [p for p in template.strip("/").split("/")]
    got = path.strip("/").split("/")
    out = {}
    for i, seg in enumerate(want):
        if seg.startswith("{") and seg.endswith("+}"):
            out[seg[1:-2]] = unquote("/".join(got[i:]))
            return out
        if i >= len(got):
            return None
        if seg.startswith("{") and seg.endswith("}"):
            out[seg[1:-1]] = unquote(got[i])
        elif seg != got[i]:
            return None
    return out if len(got) == len(want) else None


def http_event(trigger, method, url, headers, body, params_azure, request_id, source_ip=None):
    """The API Gateway event for a request.

    headers: (name, value) pairs; params: the route parameters Azure matched."""
    headers = [(k.lower(), v) for k, v in headers]
    parts = urlsplit(url)
    path, query = parts.path or "/", parts.query
    domain = next((v for k, v in headers if k == "host"), parts.netloc)
    single = {}
    for k, v in headers:
        single[k] = v if k not in single else single[k] + "," + v
    ip = source_ip or (single.get("x-forwarded-for") or "").split(",")[0].strip() or "127.0.0.1"
    # Path parameters come from the raw path, matched against the manifest's route (so they
    # decode exactly as under `ferry dev`); Azure's route values are the fallback (`{*proxy}`
    # is `proxy` there too).
    params = match_path(trigger["path"], path)
    if params is None:
        params = {k: v for k, v in (params_azure or {}).items() if v is not None}
    route_key = "%s %s" % (trigger["method"], trigger["path"])
    now, epoch = _now()
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
                "accountId": _account(),
                "apiId": _site(),
                "domainName": domain,
                "httpMethod": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "requestId": request_id,
                "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
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
            "accountId": _account(),
            "apiId": _site(),
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
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
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


def queue_event(fn, trigger, message_id, body, dequeue_count, inserted_ms):
    """The SQS event for one Azure Storage queue message."""
    region = manifest().get("region", "")
    return {
        "Records": [
            {
                "messageId": message_id,
                "receiptHandle": message_id,
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": str(dequeue_count),
                    "SentTimestamp": str(inserted_ms),
                    "SenderId": "azure-storage-queue",
                    "ApproximateFirstReceiveTimestamp": str(_now()[1]),
                },
                "messageAttributes": {},
                "md5OfBody": _md5(body),
                "eventSource": "aws:sqs",
                "eventSourceARN": trigger.get("id") or trigger["queue"],
                "awsRegion": region,
            }
        ]
    }


def _md5(text):
    import hashlib

    return hashlib.md5(text.encode()).hexdigest()


def schedule_event(trigger, request_id):
    """EventBridge's Scheduled Event (or the trigger's fixed input)."""
    if trigger.get("input") is not None:
        return trigger["input"]
    return {
        "version": "0",
        "id": request_id,
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": _account(),
        "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": manifest().get("region", ""),
        "resources": [trigger.get("id") or trigger["rule"]],
        "detail": {},
    }


def _encode_key(key):
    # S3 event keys are URL-encoded with spaces as `+`, slashes kept.
    return "/".join(quote_plus(p, safe="") for p in key.split("/"))


def storage_event(trigger, ev):
    """The S3 notification for an Event Grid Microsoft.Storage.Blob* event (a dict)."""
    data = ev.get("data") or {}
    subject = ev.get("subject") or ""
    marker = "/blobs/"
    key = subject[subject.index(marker) + len(marker):] if marker in subject else ""
    created = ev.get("eventType", "").endswith("BlobCreated")
    obj = {"key": _encode_key(key), "sequencer": data.get("sequencer", "")}
    if created:
        obj["size"] = data.get("contentLength", 0)
        obj["eTag"] = (data.get("eTag") or "").strip('"')
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": manifest().get("region", ""),
                "eventTime": ev.get("eventTime") or "",
                "eventName": "ObjectCreated:Put" if created else "ObjectRemoved:Delete",
                "userIdentity": {"principalId": data.get("clientRequestId", "")},
                "requestParameters": {"sourceIPAddress": ""},
                "responseElements": {},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": ev.get("topic") or "ferry",
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


def topic_event(trigger, ev):
    """The SNS notification for an Event Grid event published on the topic (a dict)."""
    data = ev.get("data")
    message = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": trigger.get("id") or trigger["topic"],
                "Sns": {
                    "Type": "Notification",
                    "MessageId": ev.get("id") or str(uuid.uuid4()),
                    "TopicArn": trigger.get("id") or trigger["topic"],
                    "Subject": ev.get("subject") or None,
                    "Message": message,
                    "Timestamp": ev.get("eventTime") or "",
                    "SignatureVersion": "1",
                    "Signature": "",
                    "MessageAttributes": {},
                },
            }
        ]
    }


def _account():
    # WEBSITE_OWNER_NAME is `<subscription>+<resource group>-<region>webspace`.
    return (os.environ.get("WEBSITE_OWNER_NAME") or "").split("+")[0] or "000000000000"


def _site():
    return os.environ.get("WEBSITE_SITE_NAME", "local")


def manifest_stage():
    return manifest().get("stage", "dev")


# --- running a handler --------------------------------------------------------------------


def run(azure_name, event, request_id):
    """Calls the handler of `azure_name` with `event`; returns its result."""
    fn = entry(azure_name)
    handler = load_handler(fn["handler"])
    return handler(event, LambdaContext(fn, request_id))


def check_queue_result(result):
    failures = (result or {}).get("batchItemFailures") if isinstance(result, dict) else None
    if failures:
        raise HandlerFailed("the handler reported the message in batchItemFailures: %s" % failures)


# --- Azure entry points (names match function.json's entryPoint and binding names) --------


def _invocation_id(context):
    return getattr(context, "invocation_id", None) or str(uuid.uuid4())


def http(req, context):
    import azure.functions as func

    name = context.function_name
    trigger = entry(name)["trigger"]
    rid = _invocation_id(context)
    event = http_event(
        trigger,
        req.method.upper(),
        req.url,
        list(req.headers.items()),
        req.get_body(),
        dict(req.route_params),
        rid,
    )
    status, headers, body = http_response(trigger, run(name, event, rid))
    merged = {}
    resp = func.HttpResponse(body=body, status_code=status)
    for k, v in headers:
        if k == "set-cookie":
            resp.headers.add(k, v)
        else:
            merged[k] = merged[k] + ", " + v if k in merged else v
    for k, v in merged.items():
        resp.headers[k] = v
    return resp


def queue(message, context):
    name = context.function_name
    fn = entry(name)
    rid = _invocation_id(context)
    inserted = message.insertion_time
    event = queue_event(
        fn,
        fn["trigger"],
        message.id,
        message.get_body().decode("utf-8"),
        message.dequeue_count or 1,
        int(inserted.timestamp() * 1000) if inserted else _now()[1],
    )
    check_queue_result(run(name, event, rid))


def timer(timer, context):
    name = context.function_name
    rid = _invocation_id(context)
    run(name, schedule_event(entry(name)["trigger"], rid), rid)


def event(event, context):
    name = context.function_name
    trigger = entry(name)["trigger"]
    rid = _invocation_id(context)
    # Event Grid schema (EventGridEvent) or CloudEvents 1.0 (CloudEvent), whichever the
    # subscription delivers.
    when = getattr(event, "event_time", None) or getattr(event, "time", None)
    ev = {
        "id": event.id,
        "topic": getattr(event, "topic", None) or getattr(event, "source", None),
        "subject": event.subject,
        "eventType": getattr(event, "event_type", None) or getattr(event, "type", None),
        "eventTime": when.isoformat().replace("+00:00", "Z") if when else "",
        "data": event.get_json(),
    }
    built = storage_event(trigger, ev) if trigger["kind"] == "storage" else topic_event(trigger, ev)
    run(name, built, rid)
