"""Handler tests: standard library only, no AWS calls.

Run from examples/queue-worker:  python3 -m unittest -v
"""

import base64
import hashlib
import hmac
import json
import os
import unittest
from unittest import mock

import worker

# Every variable ferry would inject; each test sets the ones it wants.
INJECTED = (
    "JOBS_QUEUE_URL",
    "RESULTS_TABLE_NAME",
    "API_TOKEN_SECRET_ARN",
    "JOB_EVENTS_TOPIC_ARN",
    "UPLOADS_BUCKET_NAME",
)


class FakeSqs:
    def __init__(self):
        self.batches = []

    def send_message_batch(self, QueueUrl, Entries):
        assert len(Entries) <= 10, "SQS takes at most 10 entries per batch"
        self.batches.append((QueueUrl, Entries))
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}

    def jobs(self):
        return [json.loads(e["MessageBody"]) for _, entries in self.batches for e in entries]


class FakeDynamo:
    def __init__(self):
        self.items = []

    def put_item(self, TableName, Item):
        self.items.append((TableName, Item))


class FakeSecrets:
    def __init__(self, value):
        self.value = value
        self.calls = 0

    def get_secret_value(self, SecretId):
        self.calls += 1
        return {"ARN": SecretId, "SecretString": self.value}


class FakeSns:
    def __init__(self):
        self.published = []

    def publish(self, TopicArn, Message):
        self.published.append((TopicArn, json.loads(Message)))


def sqs_record(body, message_id, receives="1"):
    return {
        "messageId": message_id,
        "receiptHandle": f"handle-{message_id}",
        "body": body if isinstance(body, str) else json.dumps(body),
        "attributes": {"ApproximateReceiveCount": receives},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:queue-worker-dev-jobs",
        "awsRegion": "us-east-1",
    }


def s3_record(key, size=2048, bucket="queue-worker-dev-uploads", sequencer="0055AED6DCD90281E5"):
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {"key": key, "size": size, "eTag": "d41d8cd9", "sequencer": sequencer},
        },
    }


class HandlerTest(unittest.TestCase):
    """Clears injected variables and clients around every test."""

    env = {}

    def setUp(self):
        clean = {k: v for k, v in os.environ.items() if k not in INJECTED}
        clean.update(self.env)
        patcher = mock.patch.dict(os.environ, clean, clear=True)
        patcher.start()
        self.addCleanup(patcher.stop)
        worker.set_clients()
        worker._token_cache.clear()
        self.addCleanup(worker.set_clients)
        # Any attempt to create a real client fails the test.
        no_boto = mock.patch.dict("sys.modules", {"boto3": None})
        no_boto.start()
        self.addCleanup(no_boto.stop)


class EnqueueTest(HandlerTest):
    env = {"JOBS_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/jobs"}

    def setUp(self):
        super().setUp()
        self.sqs = FakeSqs()
        worker.set_clients(sqs=self.sqs)

    def post(self, body, b64=False):
        raw = body if isinstance(body, str) else json.dumps(body)
        if b64:
            raw = base64.b64encode(raw.encode()).decode()
        event = {
            "version": "2.0",
            "routeKey": "POST /jobs",
            "rawPath": "/jobs",
            "headers": {"content-type": "application/json"},
            "body": raw,
            "isBase64Encoded": b64,
        }
        resp = worker.enqueue(event, None)
        return resp["statusCode"], json.loads(resp["body"])

    def test_queues_a_job(self):
        status, body = self.post({"task": "sum", "payload": {"numbers": [1, 2, 3]}})
        self.assertEqual(status, 202)
        self.assertTrue(body["queued"])
        (job,) = self.sqs.jobs()
        self.assertEqual(job["id"], body["id"])
        self.assertEqual(job["task"], "sum")
        self.assertEqual(job["payload"], {"numbers": [1, 2, 3]})
        self.assertEqual(self.sqs.batches[0][0], self.env["JOBS_QUEUE_URL"])

    def test_base64_body(self):
        status, _ = self.post({"task": "sum", "payload": {"numbers": [1]}}, b64=True)
        self.assertEqual(status, 202)

    def test_rejects_bad_requests(self):
        for body in ["not json", "[]", {"task": "explode"}, {"task": "sum", "payload": [1]}]:
            status, resp = self.post(body)
            self.assertEqual(status, 400, body)
            self.assertIn("error", resp)
        self.assertEqual(self.sqs.batches, [])


class EnqueueWithoutQueueTest(HandlerTest):
    def test_answers_without_sending(self):
        resp = worker.enqueue({"body": json.dumps({"task": "sum", "payload": {"numbers": []}})})
        self.assertEqual(resp["statusCode"], 202)
        self.assertFalse(json.loads(resp["body"])["queued"])


class IngestTest(HandlerTest):
    env = {"JOBS_QUEUE_URL": "https://sqs.example/jobs"}

    def setUp(self):
        super().setUp()
        self.sqs = FakeSqs()
        worker.set_clients(sqs=self.sqs)

    def test_one_job_per_incoming_object(self):
        event = {
            "Records": [
                s3_record("incoming/report+2024.csv", size=1536),
                s3_record("incoming/", size=0),  # a "folder" marker
                s3_record("elsewhere/x.txt"),
                s3_record("incoming/photo%C3%A9.JPG", size=3 * 1024 * 1024, sequencer="01"),
            ]
        }
        result = worker.ingest(event, None)
        self.assertEqual(result, {"jobs": 2, "sent": 2})
        jobs = self.sqs.jobs()
        self.assertEqual([j["payload"]["key"] for j in jobs],
                         ["incoming/report 2024.csv", "incoming/photo\u00e9.JPG"])
        self.assertTrue(all(j["task"] == "process-upload" for j in jobs))
        self.assertEqual(jobs[0]["payload"]["bucket"], "queue-worker-dev-uploads")

    def test_duplicate_delivery_keeps_the_job_id(self):
        event = {"Records": [s3_record("incoming/a.txt")]}
        worker.ingest(event)
        worker.ingest(event)
        first, second = self.sqs.jobs()
        self.assertEqual(first["id"], second["id"])

    def test_batches_of_ten(self):
        event = {"Records": [s3_record(f"incoming/{i}.bin", sequencer=str(i)) for i in range(23)]}
        self.assertEqual(worker.ingest(event)["sent"], 23)
        self.assertEqual([len(entries) for _, entries in self.sqs.batches], [10, 10, 3])


class NightlyTest(HandlerTest):
    env = {"JOBS_QUEUE_URL": "https://sqs.example/jobs"}

    def test_enqueues_a_heartbeat(self):
        sqs = FakeSqs()
        worker.set_clients(sqs=sqs)
        event = {
            "version": "0",
            "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": "123456789012",
            "time": "2024-05-01T03:00:00Z",
            "region": "us-east-1",
            "resources": ["arn:aws:events:us-east-1:123456789012:rule/queue-worker-dev-nightly-0"],
            "detail": {},
        }
        result = worker.nightly(event, None)
        (job,) = sqs.jobs()
        self.assertEqual(job["id"], result["id"])
        self.assertEqual(job["task"], "heartbeat")
        self.assertEqual(job["payload"]["scheduledAt"], "2024-05-01T03:00:00Z")

    def test_tolerates_an_empty_event(self):
        worker.set_clients(sqs=FakeSqs())
        self.assertEqual(worker.nightly({})["sent"], 1)


class WorkerTest(HandlerTest):
    env = {
        "RESULTS_TABLE_NAME": "queue-worker-dev-results",
        "API_TOKEN_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:api-token",
        "JOB_EVENTS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:job-events",
    }

    def setUp(self):
        super().setUp()
        self.dynamo, self.secrets, self.sns = FakeDynamo(), FakeSecrets("s3cr3t"), FakeSns()
        worker.set_clients(dynamodb=self.dynamo, secretsmanager=self.secrets, sns=self.sns)

    def test_partial_batch_failure(self):
        event = {
            "Records": [
                sqs_record(worker.new_job("sum", {"numbers": [1, 2, 3.5]}, "job-1"), "m1"),
                sqs_record("not json", "m2"),
                sqs_record({"task": "explode", "payload": {}}, "m3", receives="3"),
                sqs_record(worker.new_job("process-upload", {
                    "bucket": "b", "key": "incoming/data.CSV", "size": 1536}, "job-4"), "m4"),
                sqs_record({"task": "sum", "payload": {"numbers": ["x"]}}, "m5"),
            ]
        }
        with self.assertLogs("queue-worker", "WARNING") as logs:
            result = worker.process_jobs(event, None)
        self.assertEqual(result, {"batchItemFailures": [
            {"itemIdentifier": "m2"}, {"itemIdentifier": "m3"}, {"itemIdentifier": "m5"}]})
        self.assertEqual(len(logs.records), 3)
        self.assertIn("unknown task", logs.output[1])

        self.assertEqual(len(self.dynamo.items), 2)
        table, item = self.dynamo.items[0]
        self.assertEqual(table, "queue-worker-dev-results")
        self.assertEqual(item["id"], {"S": "job-1"})
        self.assertTrue(item["ts"]["N"].isdigit())
        output = json.loads(item["output"]["S"])
        self.assertEqual(output, {"count": 3, "sum": 6.5})
        canonical = json.dumps(output, sort_keys=True, separators=(",", ":"))
        expected = hmac.new(b"s3cr3t", canonical.encode(), hashlib.sha256).hexdigest()
        self.assertEqual(item["signature"], {"S": expected})

        upload = json.loads(self.dynamo.items[1][1]["output"]["S"])
        self.assertEqual(upload["object"], "s3://b/incoming/data.CSV")
        self.assertEqual(upload["extension"], "csv")
        self.assertEqual(upload["size"], "1.5 KiB")

        self.assertEqual(self.secrets.calls, 1, "the secret is fetched once")
        self.assertEqual([m["id"] for _, m in self.sns.published], ["job-1", "job-4"])

    def test_message_id_is_the_default_job_id(self):
        worker.process_jobs({"Records": [sqs_record({"task": "sum", "payload": {"numbers": []}}, "m9")]})
        self.assertEqual(self.dynamo.items[0][1]["id"], {"S": "m9"})

    def test_heartbeat(self):
        job = worker.new_job("heartbeat", {"scheduledAt": "2024-05-01T03:00:00Z"})
        result = worker.process_jobs({"Records": [sqs_record(job, "m1")]})
        self.assertEqual(result["batchItemFailures"], [])
        output = json.loads(self.dynamo.items[0][1]["output"]["S"])
        self.assertGreater(output["lagSeconds"], 0)


class WorkerWithoutServicesTest(HandlerTest):
    def test_runs_jobs_without_aws(self):
        result = worker.process_jobs({"Records": [
            sqs_record({"task": "sum", "payload": {"numbers": [2, 2]}}, "m1")]})
        self.assertEqual(result, {"batchItemFailures": []})

    def test_empty_batch(self):
        self.assertEqual(worker.process_jobs({"Records": []}), {"batchItemFailures": []})


class AuditTest(HandlerTest):
    def test_counts_messages(self):
        event = {"Records": [
            {"EventSource": "aws:sns", "Sns": {"MessageId": "1", "Message": json.dumps({"id": "a"})}},
            {"EventSource": "aws:sns", "Sns": {"MessageId": "2", "Message": "plain text"}},
        ]}
        self.assertEqual(worker.audit(event, None), {"seen": 2})


class TaskTest(unittest.TestCase):
    def test_sizes(self):
        self.assertEqual(worker._human(0), "0 B")
        self.assertEqual(worker._human(1023), "1023 B")
        self.assertEqual(worker._human(1024), "1.0 KiB")
        self.assertEqual(worker._human(5 * 1024**3), "5.0 GiB")

    def test_unknown_task(self):
        with self.assertRaises(ValueError):
            worker.run_task("explode", {})


if __name__ == "__main__":
    unittest.main()
