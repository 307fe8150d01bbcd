"""ferry example: queue, storage, schedule and topic handlers on Python.

Every handler takes the AWS event shape (SQS, S3, EventBridge, SNS, API Gateway HTTP API 2.0),
which is also what `ferry dev` delivers. Where the services live comes from variables ferry
injects for each name a function `uses`:

    JOBS_QUEUE_URL          queue  `jobs`
    RESULTS_TABLE_NAME      table  `results`
    API_TOKEN_SECRET_ARN    secret `api-token`
    JOB_EVENTS_TOPIC_ARN    topic  `job-events`

When a variable is missing (a unit test, a quick local run) the handler logs what it would
have sent instead of calling AWS. Clients come from `client()`, which imports boto3 only on
first use; tests put fakes in with `set_clients()`.

Only the standard library is imported at module level.
"""

import base64
import hashlib
import hmac
import json
import logging
import os
import time
import uuid
from datetime import datetime, timezone
from urllib.parse import unquote_plus

log = logging.getLogger("queue-worker")
log.setLevel(os.environ.get("LOG_LEVEL", "INFO"))

# The jobs the worker knows how to run.
TASKS = ("process-upload", "sum", "heartbeat")

# Only objects under this prefix are ingested (the storage trigger filters on it too).
INCOMING_PREFIX = "incoming/"


# --- clients -------------------------------------------------------------------------------

_clients = {}


def set_clients(**clients):
    """Replaces AWS clients, e.g. `set_clients(sqs=FakeSqs())`; `set_clients()` clears them."""
    if not clients:
        _clients.clear()
    _clients.update(clients)


def client(service):
    """A boto3 client for `service` ("sqs", "dynamodb", ...), created once per process."""
    if service not in _clients:
        import boto3  # provided by the Lambda runtime; imported only when really needed

        _clients[service] = boto3.client(service)
    return _clients[service]


def _log(event, **fields):
    log.info(json.dumps({"event": event, **fields}, sort_keys=True, default=str))


def _now_ms():
    return int(time.time() * 1000)


# --- sending jobs --------------------------------------------------------------------------


def new_job(task, payload, job_id=None):
    """A job message: what the queue carries."""
    return {
        "id": job_id or str(uuid.uuid4()),
        "task": task,
        "payload": payload,
        "createdAt": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def send_jobs(jobs):
    """Puts jobs on the `jobs` queue, ten per request. Returns how many were sent."""
    queue_url = os.environ.get("JOBS_QUEUE_URL")
    if not queue_url:
        for job in jobs:
            _log("job-not-sent", reason="JOBS_QUEUE_URL is not set", job=job)
        return 0
    sqs = client("sqs")
    sent = 0
    for start in range(0, len(jobs), 10):
        chunk = jobs[start : start + 10]
        resp = sqs.send_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(i), "MessageBody": json.dumps(job)} for i, job in enumerate(chunk)
            ],
        )
        failed = resp.get("Failed") or []
        if failed:
            raise RuntimeError(f"SQS refused {len(failed)} message(s): {failed}")
        sent += len(chunk)
    return sent


# --- POST /jobs ----------------------------------------------------------------------------


def _http(status, body):
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(body),
    }


def enqueue(event, context=None):
    """HTTP API 2.0: `POST /jobs` with `{"task": "sum", "payload": {"numbers": [1, 2]}}`."""
    raw = event.get("body") or ""
    if event.get("isBase64Encoded"):
        raw = base64.b64decode(raw).decode("utf-8")
    try:
        body = json.loads(raw)
    except ValueError as e:
        return _http(400, {"error": f"body is not JSON: {e}"})
    if not isinstance(body, dict):
        return _http(400, {"error": "body must be a JSON object"})
    task = body.get("task")
    if task not in TASKS:
        return _http(400, {"error": f"task must be one of {', '.join(TASKS)}"})
    payload = body.get("payload") or {}
    if not isinstance(payload, dict):
        return _http(400, {"error": "payload must be a JSON object"})
    job = new_job(task, payload)
    queued = send_jobs([job]) == 1
    return _http(202, {"id": job["id"], "task": task, "queued": queued})


# --- storage: uploads/incoming/* -----------------------------------------------------------


def ingest(event, context=None):
    """S3 notification: one `process-upload` job per created object."""
    jobs = []
    for record in event.get("Records", []):
        s3 = record.get("s3", {})
        bucket = s3.get("bucket", {}).get("name")
        obj = s3.get("object", {})
        key = unquote_plus(obj.get("key", ""))  # S3 sends keys URL-encoded, spaces as `+`
        if not key.startswith(INCOMING_PREFIX) or key.endswith("/"):
            _log("upload-skipped", bucket=bucket, key=key)
            continue
        payload = {"bucket": bucket, "key": key, "size": obj.get("size", 0)}
        # S3 may deliver an event twice; an id derived from the object's key and sequencer
        # stays the same, so the duplicate result lands on the same `results` partition.
        tag = obj.get("sequencer") or obj.get("eTag")
        job_id = None
        if tag:
            digest = hashlib.sha256(f"{bucket}/{key}@{tag}".encode()).hexdigest()[:20]
            job_id = f"upload-{digest}"
        jobs.append(new_job("process-upload", payload, job_id))
    sent = send_jobs(jobs)
    _log("uploads-ingested", jobs=len(jobs), sent=sent)
    return {"jobs": len(jobs), "sent": sent}


# --- schedule ------------------------------------------------------------------------------


def nightly(event, context=None):
    """EventBridge scheduled event (both schedules): enqueue a `heartbeat` job.

    The scheduled event carries `time` (when it was due) and `resources` (the rule).
    """
    due = event.get("time") or datetime.now(timezone.utc).isoformat(timespec="seconds")
    rule = (event.get("resources") or ["unknown"])[0]
    job = new_job("heartbeat", {"scheduledAt": due, "rule": rule})
    sent = send_jobs([job])
    _log("heartbeat-enqueued", id=job["id"], due=due, sent=sent)
    return {"id": job["id"], "sent": sent}


# --- queue: the worker ---------------------------------------------------------------------


def _human(size):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024


def run_task(task, payload):
    """Runs one job and returns its output. Raises on bad input."""
    if task == "process-upload":
        key = payload["key"]
        size = int(payload.get("size", 0))
        name = key.rsplit("/", 1)[-1]
        return {
            "object": f"s3://{payload['bucket']}/{key}",
            "name": name,
            "extension": name.rsplit(".", 1)[-1].lower() if "." in name else None,
            "sizeBytes": size,
            "size": _human(size),
        }
    if task == "sum":
        numbers = payload["numbers"]
        if not all(isinstance(n, (int, float)) and not isinstance(n, bool) for n in numbers):
            raise ValueError("numbers must all be numbers")
        return {"count": len(numbers), "sum": sum(numbers)}
    if task == "heartbeat":
        due = datetime.fromisoformat(payload["scheduledAt"].replace("Z", "+00:00"))
        lag = (datetime.now(timezone.utc) - due).total_seconds()
        return {"scheduledAt": payload["scheduledAt"], "lagSeconds": round(lag, 3)}
    raise ValueError(f"unknown task {task!r}")


_token_cache = {}


def api_token():
    """The `api-token` secret, fetched once per process; None when it is not configured."""
    arn = os.environ.get("API_TOKEN_SECRET_ARN")
    if not arn:
        return None
    if arn not in _token_cache:
        resp = client("secretsmanager").get_secret_value(SecretId=arn)
        _token_cache[arn] = resp["SecretString"]
    return _token_cache[arn]


def sign(output, token):
    """HMAC-SHA256 of the output's canonical JSON, so readers can check who wrote it."""
    if token is None:
        return None
    canonical = json.dumps(output, sort_keys=True, separators=(",", ":"))
    return hmac.new(token.encode(), canonical.encode(), hashlib.sha256).hexdigest()


def store_result(job, output, signature):
    """Writes one row to `results`: partition `id`, sort `ts` (epoch milliseconds)."""
    item = {
        "id": {"S": job["id"]},
        "ts": {"N": str(_now_ms())},
        "task": {"S": job["task"]},
        "output": {"S": json.dumps(output, sort_keys=True)},
    }
    if signature:
        item["signature"] = {"S": signature}
    table = os.environ.get("RESULTS_TABLE_NAME")
    if not table:
        _log("result-not-stored", reason="RESULTS_TABLE_NAME is not set", item=item)
        return item
    client("dynamodb").put_item(TableName=table, Item=item)
    return item


def announce(job, output):
    """Publishes `job-finished` on the `job-events` topic (when configured)."""
    topic = os.environ.get("JOB_EVENTS_TOPIC_ARN")
    message = {"type": "job-finished", "id": job["id"], "task": job["task"], "output": output}
    if not topic:
        _log("event-not-published", reason="JOB_EVENTS_TOPIC_ARN is not set", message=message)
        return
    client("sns").publish(TopicArn=topic, Message=json.dumps(message))


def process_jobs(event, context=None):
    """SQS batch. A job that fails is reported in `batchItemFailures`, so only it returns
    to the queue; after `deadLetter.maxReceives` receives it moves to the dead-letter queue.
    """
    failures = []
    token = None
    for record in event.get("Records", []):
        message_id = record.get("messageId")
        try:
            job = json.loads(record["body"])
            if not isinstance(job, dict) or "task" not in job:
                raise ValueError("message is not a job")
            job.setdefault("id", message_id)
            job.setdefault("payload", {})
            if token is None:
                token = api_token()
            output = run_task(job["task"], job["payload"])
            store_result(job, output, sign(output, token))
            announce(job, output)
            _log("job-done", id=job["id"], task=job["task"])
        except Exception as e:  # noqa: BLE001 - any failure retries this one message only
            receives = record.get("attributes", {}).get("ApproximateReceiveCount")
            log.warning(
                json.dumps(
                    {"event": "job-failed", "messageId": message_id, "receives": receives,
                     "error": f"{type(e).__name__}: {e}"}
                )
            )
            failures.append({"itemIdentifier": message_id})
    return {"batchItemFailures": failures}


# --- topic: job-events ---------------------------------------------------------------------


def audit(event, context=None):
    """SNS notification: log each finished job. Returns how many messages were seen."""
    seen = 0
    for record in event.get("Records", []):
        sns = record.get("Sns", {})
        try:
            message = json.loads(sns.get("Message", ""))
        except ValueError:
            message = {"raw": sns.get("Message")}
        _log("audit", messageId=sns.get("MessageId"), message=message)
        seen += 1
    return {"seen": seen}
