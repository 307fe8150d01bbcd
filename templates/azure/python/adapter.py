"""ferry's Azure Functions adapter for Python handlers written in the AWS Lambda shape.

Every Azure function of the app points its `scriptFile` here with an entry point per trigger
kind (`http`, `queue`, `timer`, `event`). The adapter reads `ferry/functions.json` (written by
`ferry package --provider azure`) to learn which handler an Azure function runs and what its
trigger looks like in the manifest, turns the Azure invocation into neutral fields, and hands
them to `ferry/ferry_lambda.py` (templates/adapters/python/ferry_lambda.py, shared with the
other providers), which builds the event the handler gets on AWS Lambda and under `ferry dev`
(API Gateway HTTP API 2.0 or REST 1.0, SQS, EventBridge Scheduled Event, S3, SNS) and calls the
handler with a Lambda-style context. The result is mapped back: an HTTP response, or an
exception so that Azure retries the message (a queue handler's `batchItemFailures` fail the
message, as on SQS with partial batch responses).

Only the standard library and `azure.functions` (which the Python worker provides) are used.
"""

import json
import os
import sys
import uuid

# The worker imports this file as a module of the app (scriptFile), not with ferry/ on the path:
# the shared module is found next to it. Appended, so that nothing in ferry/ shadows app modules.
_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.append(_HERE)

import ferry_lambda  # noqa: E402
from ferry_lambda import (  # noqa: E402,F401 - the names the replay drivers and tests use
    HandlerFailed,
    LambdaContext,
    check_queue_result,
    http_event,
    http_response,
    is_text,
    load_handler,
    manifest,
    manifest_stage,
    parse_query,
    schedule_event,
)

_APP_ROOT = os.path.dirname(_HERE)


def _account():
    # WEBSITE_OWNER_NAME is `<subscription>+<resource group>-<region>webspace`.
    return (os.environ.get("WEBSITE_OWNER_NAME") or "").split("+")[0] or "000000000000"


def _site():
    return os.environ.get("WEBSITE_SITE_NAME", "local")


ferry_lambda.configure(
    root=_APP_ROOT,
    manifest_path=os.path.join(_APP_ROOT, "ferry", "functions.json"),
    account_id=_account,
    api_id=_site,
    log_group_name=lambda: "/azure/functions/%s" % _site(),
    log_stream_name=lambda: os.environ.get("WEBSITE_INSTANCE_ID", "local"),
)


def entry(azure_name):
    try:
        return manifest()["functions"][azure_name]
    except KeyError:
        raise RuntimeError(
            "ferry: %s is not in ferry/functions.json; the package is stale, run ferry deploy again"
            % azure_name
        )


def run(azure_name, event, request_id):
    """Calls the handler of `azure_name` with `event`; returns its result."""
    return ferry_lambda.invoke(entry(azure_name), event, request_id)


# --- Azure events -> neutral fields -------------------------------------------------------


def queue_event(fn, trigger, message_id, body, dequeue_count, inserted_ms):
    """The SQS event for one Azure Storage queue message."""
    return ferry_lambda.queue_event(
        trigger, message_id, body, dequeue_count, inserted_ms, "azure-storage-queue"
    )


def storage_event(trigger, ev):
    """The S3 notification for an Event Grid Microsoft.Storage.Blob* event (a dict)."""
    data = ev.get("data") or {}
    subject = ev.get("subject") or ""
    marker = "/blobs/"
    return ferry_lambda.s3_event(
        trigger,
        key=subject[subject.index(marker) + len(marker):] if marker in subject else "",
        created=ev.get("eventType", "").endswith("BlobCreated"),
        size=data.get("contentLength", 0),
        e_tag=(data.get("eTag") or "").strip('"'),
        sequencer=data.get("sequencer", ""),
        time=ev.get("eventTime") or "",
        configuration_id=ev.get("topic") or "ferry",
        principal_id=data.get("clientRequestId", ""),
    )


def topic_event(trigger, ev):
    """The SNS notification for an Event Grid event published on the topic (a dict)."""
    data = ev.get("data")
    return ferry_lambda.sns_event(
        trigger,
        id=ev.get("id"),
        subject=ev.get("subject"),
        message=data if isinstance(data, str) else json.dumps(data, separators=(",", ":")),
        time=ev.get("eventTime") or "",
    )


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
        int(inserted.timestamp() * 1000) if inserted else ferry_lambda.now()[1],
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
