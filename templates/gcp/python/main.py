"""ferry's Google Cloud Functions adapter for Python handlers written in the AWS Lambda shape.

The function's source zip has this file as `main.py` at its root, with `ferry/functions.json`
(written by `ferry package --provider gcp`) and `ferry/ferry_lambda.py`
(templates/adapters/python/ferry_lambda.py) beside the function's own files. Google's Functions
Framework (PyPI `functions-framework`) calls `ferry(request)` (the HTTP signature: a Flask
request; a Flask response back) for every request:

    POST /_ferry/events/<id>   a delivery for the event trigger `<id>` of functions.json: a
                               Pub/Sub push (queue, topic), a Cloud Scheduler job (schedule) or
                               an Eventarc CloudEvent (storage); 204 when the handler succeeded,
                               500 when it failed, so that Pub/Sub or Eventarc redelivers
    anything else              an HTTP request, routed to the function's http triggers and
                               answered as `ferry dev`'s gateway answers it

The event the handler gets is the one it gets on AWS Lambda and under `ferry dev` (API Gateway
HTTP API 2.0 or REST 1.0, SQS, EventBridge Scheduled Event, S3, SNS).

Only the standard library and Flask (which the Functions Framework brings) are used.
"""

import base64
import binascii
import json
import os
import re
import sys
import threading
import traceback
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import quote, unquote

_ROOT = os.path.dirname(os.path.abspath(__file__))
_FERRY = os.path.join(_ROOT, "ferry")
# Appended, so that nothing in ferry/ shadows the function's own modules.
if _FERRY not in sys.path:
    sys.path.append(_FERRY)

import ferry_lambda  # noqa: E402

_EVENTS_PREFIX = "/_ferry/events/"
_lock = threading.Lock()
_selected = None


def current():
    """The functions.json entry this deployment runs: FERRY_FUNCTION, or the only one."""
    global _selected
    with _lock:
        if _selected is not None:
            return _selected
        functions = ferry_lambda.manifest().get("functions") or {}
        name = os.environ.get("FERRY_FUNCTION") or (next(iter(functions)) if len(functions) == 1 else None)
        if name is None:
            raise RuntimeError(
                "ferry: FERRY_FUNCTION is not set and ferry/functions.json has %d functions" % len(functions)
            )
        if name not in functions:
            raise RuntimeError(
                "ferry: %s is not in ferry/functions.json; the package is stale, run ferry deploy again" % name
            )
        _selected = functions[name]
        return _selected


def _service():
    return os.environ.get("K_SERVICE") or current()["function"]


ferry_lambda.configure(
    root=_ROOT,
    manifest_path=os.path.join(_FERRY, "functions.json"),
    account_id=lambda: ferry_lambda.manifest().get("project") or "000000000000",
    api_id=_service,
    log_group_name=lambda: "/gcp/functions/%s" % _service(),
    log_stream_name=lambda: os.environ.get("K_REVISION", "local"),
)


def _trace_id(request):
    """The trace id of `x-cloud-trace-context: TRACE/SPAN;o=1` or `traceparent`."""
    cloud = request.headers.get("x-cloud-trace-context") or ""
    if cloud.split("/")[0]:
        return cloud.split("/")[0]
    parent = (request.headers.get("traceparent") or "").split("-")
    if len(parent) >= 4 and parent[1]:
        return parent[1]
    return None


def _target(request):
    """The path (still percent-encoded) and query string as sent. Flask's `request.path` is
    decoded, so the WSGI server's raw request line is used when it gives one."""
    env = request.environ
    raw = env.get("RAW_URI") or env.get("REQUEST_URI")
    if raw:
        if "://" in raw:  # an absolute-form request target
            raw = "/" + raw.split("://", 1)[1].partition("/")[2]
        return raw
    path = quote(request.path, safe="/!$&'()*+,;=:@~")
    qs = request.query_string.decode("latin-1")
    return path + ("?" + qs if qs else "")


def _response(status, headers, body):
    import flask

    resp = flask.Response(body, status=status)
    # Only the handler's headers: not Flask's default content type.
    resp.headers.remove("Content-Type")
    for k, v in headers:
        resp.headers.add(k, v)
    return resp


def _message(status, text):
    return _response(*ferry_lambda.message(status, text))


def _no_content():
    return _response(204, [], b"")


# --- HTTP ---------------------------------------------------------------------------------


def _http(fn, request):
    method = request.method.upper()
    target = _target(request)
    path = target.split("?", 1)[0] or "/"
    headers = list(request.headers.items())
    triggers = fn.get("http") or []
    found = ferry_lambda.find_route(triggers, method, path)
    if found is None:
        return _response(*ferry_lambda.unrouted(triggers, method, path, headers))
    trigger, params = found
    rid = _trace_id(request) or str(uuid.uuid4())
    forwarded = (request.headers.get("x-forwarded-for") or "").split(",")[0].strip()
    ip = forwarded or request.environ.get("REMOTE_ADDR") or None
    event = ferry_lambda.http_event(
        trigger, method, target, headers, request.get_data(cache=True), params, rid, ip
    )
    try:
        out = ferry_lambda.http_response(trigger, ferry_lambda.invoke(fn, event, rid))
    except Exception:  # noqa: BLE001 - the handler's failure is the gateway's 502
        sys.stderr.write("ferry: %s failed: %s" % (fn["function"], traceback.format_exc()))
        out = ferry_lambda.handler_failed(trigger)
    return _response(*ferry_lambda.with_cors(trigger, out))


# --- event deliveries ---------------------------------------------------------------------


def _json(data):
    try:
        return json.loads(data)
    except ValueError:
        return None


def _push_message(request):
    """A Pub/Sub push body: {"message": {data, attributes, messageId, publishTime},
    "subscription", "deliveryAttempt"}."""
    push = _json(request.get_data(cache=True))
    if not isinstance(push, dict) or not isinstance(push.get("message"), dict):
        return None
    m = push["message"]
    try:
        data = base64.b64decode(m.get("data") or "").decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    return {
        "id": str(m.get("messageId") or m.get("message_id") or ""),
        "data": data,
        "attributes": m.get("attributes") or {},
        "publish_time": m.get("publishTime") or m.get("publish_time") or "",
        "subscription": push.get("subscription"),
        "delivery_attempt": push.get("deliveryAttempt"),
    }


_RFC3339 = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):?(\d{2}))?$"
)


def _rfc3339(text):
    """An RFC 3339 time (any number of fractional digits) as an aware datetime, or None."""
    m = _RFC3339.match(text or "")
    if not m:
        return None
    date, clock, frac, _, sign, hours, minutes = m.groups()
    try:
        t = datetime.strptime(date + "T" + clock, "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None
    t = t.replace(microsecond=int((frac or "").ljust(6, "0")[:6]), tzinfo=timezone.utc)
    if sign:
        offset = timedelta(hours=int(hours), minutes=int(minutes))
        t = t - offset if sign == "+" else t + offset
    return t


def _cloud_event(request):
    """An Eventarc CloudEvent in binary mode (ce-* headers, the GCS object as the body) or
    structured mode (application/cloudevents+json)."""
    ct = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if ct == "application/cloudevents+json":
        e = _json(request.get_data(cache=True))
        if not isinstance(e, dict):
            return None
        data = e.get("data")
        if data is None and isinstance(e.get("data_base64"), str):
            data = _json(base64.b64decode(e["data_base64"]))
        return {
            "type": e.get("type"),
            "id": e.get("id"),
            "time": e.get("time"),
            "subject": e.get("subject"),
            "data": data if isinstance(data, dict) else {},
        }
    if not request.headers.get("ce-type"):
        return None
    data = _json(request.get_data(cache=True))
    return {
        "type": request.headers.get("ce-type"),
        "id": request.headers.get("ce-id"),
        "time": request.headers.get("ce-time"),
        "subject": request.headers.get("ce-subject"),
        "data": data if isinstance(data, dict) else {},
    }


def _sequencer(generation):
    """GCS's generation (microseconds, decimal) as S3's sequencer (16 upper-case hex digits)."""
    try:
        return "%016X" % int(str(generation))
    except ValueError:
        return ""


def _e_tag(data):
    """S3's eTag is the hex MD5 of the object; GCS gives it in base64 (md5Hash), else its etag."""
    md5 = data.get("md5Hash")
    if isinstance(md5, str) and md5:
        try:
            return base64.b64decode(md5).hex()
        except (binascii.Error, ValueError):
            pass
    return str(data.get("etag") or "")


class _Skip(Exception):
    """A storage object the trigger does not take."""


class _BadRequest(Exception):
    pass


def _delivery(event_id, trigger, request):
    """(event, request id, whether it is a queue message) for a delivery."""
    kind = trigger.get("kind")
    if kind in ("queue", "topic"):
        m = _push_message(request)
        if m is None:
            raise _BadRequest("not a Pub/Sub push request")
        rid = m["id"] or str(uuid.uuid4())
        if kind == "queue":
            sent = _rfc3339(m["publish_time"])
            event = ferry_lambda.queue_event(
                trigger,
                rid,
                m["data"],
                m["delivery_attempt"] or 1,
                int(sent.timestamp()) * 1000 + sent.microsecond // 1000 if sent else ferry_lambda.now()[1],
                "google-cloud-pubsub",
                m["attributes"],
            )
            return event, rid, True
        event = ferry_lambda.sns_event(
            trigger,
            id=rid,
            subject=None,
            message=m["data"],
            time=m["publish_time"],
            attributes=m["attributes"],
        )
        return event, rid, False
    if kind == "schedule":
        rid = _trace_id(request) or str(uuid.uuid4())
        due = _rfc3339(request.headers.get("x-cloudscheduler-scheduletime"))
        return ferry_lambda.schedule_event(trigger, rid, due), rid, False
    if kind == "storage":
        e = _cloud_event(request)
        if e is None:
            raise _BadRequest("not a CloudEvent")
        kind_of = str(e.get("type") or "")
        if kind_of.endswith(".finalized"):
            created = True
        elif kind_of.endswith(".deleted"):
            created = False
        else:
            raise _Skip()
        data = e["data"]
        subject = str(e.get("subject") or "")
        name = data.get("name")
        if not isinstance(name, str):
            name = subject[len("objects/"):] if subject.startswith("objects/") else subject
        if not ferry_lambda.storage_wants(trigger, name, created):
            raise _Skip()
        rid = e.get("id") or str(uuid.uuid4())
        try:
            size = int(data.get("size") or 0)
        except (TypeError, ValueError):
            size = 0
        event = ferry_lambda.s3_event(
            trigger,
            key=name,
            created=created,
            size=size,
            e_tag=_e_tag(data),
            sequencer=_sequencer(data.get("generation")),
            time=e.get("time") or "",
            configuration_id=event_id,
            principal_id="",
        )
        return event, rid, False
    raise RuntimeError("ferry: event trigger %s has an unknown kind %s" % (event_id, kind))


def _event(fn, event_id, request):
    events = fn.get("events") or {}
    trigger = events.get(event_id)
    if trigger is None:
        return _message(404, "Not Found")
    try:
        event, rid, is_queue = _delivery(event_id, trigger, request)
    except _Skip:
        return _no_content()
    except _BadRequest as e:
        return _message(400, str(e))
    try:
        result = ferry_lambda.invoke(fn, event, rid)
        if is_queue:
            ferry_lambda.check_queue_result(result)
    except Exception:  # noqa: BLE001 - any failure is a redelivery
        sys.stderr.write(
            "ferry: %s failed on %s (%s): %s" % (fn["function"], event_id, rid, traceback.format_exc())
        )
        return _message(500, "the handler failed; the event is delivered again")
    return _no_content()


# --- the Functions Framework's entry point (--target=ferry) -------------------------------


def ferry(request):
    try:
        fn = current()
        path = _target(request).split("?", 1)[0]
        if request.method == "POST" and path.startswith(_EVENTS_PREFIX):
            return _event(fn, unquote(path[len(_EVENTS_PREFIX):]), request)
        return _http(fn, request)
    except Exception:  # noqa: BLE001 - answered, and logged for the platform's logs
        sys.stderr.write("ferry: %s" % traceback.format_exc())
        return _message(500, "Internal Server Error")
