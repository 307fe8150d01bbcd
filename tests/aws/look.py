"""An independent look at what ferry deployed, through boto3, for tests/aws.rs.

    look.py ENDPOINT deployed SERVICE     everything tagged ferry:service=SERVICE, as JSON
    look.py ENDPOINT mutations            the mutating AWS calls in moto's recording
    look.py ENDPOINT set-memory NAME MB   changes a function's memory behind ferry's back
    look.py ENDPOINT put-object BUCKET KEY

Every listing goes through the service's own API (no resource-groups shortcut), and a
resource counts as the service's when its tags say so (or, for what cannot be tagged, when it
hangs off something that is).
"""

import base64
import json
import sys
import urllib.parse
import urllib.request

import boto3
from botocore.config import Config

ENDPOINT = sys.argv[1]


def client(name):
    cfg = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2})
    return boto3.client(
        name,
        endpoint_url=ENDPOINT,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=cfg,
    )


def ours(tags, service):
    if isinstance(tags, list):
        tags = {t["Key"]: t["Value"] for t in tags}
    return (tags or {}).get("ferry:service") == service


def deployed(service):
    lam, iam, apigw = client("lambda"), client("iam"), client("apigatewayv2")
    sqs, events, s3 = client("sqs"), client("events"), client("s3")
    sns, ddb, sm = client("sns"), client("dynamodb"), client("secretsmanager")
    out = {}

    functions = {}
    for page in lam.get_paginator("list_functions").paginate():
        for f in page["Functions"]:
            tags = lam.list_tags(Resource=f["FunctionArn"]).get("Tags", {})
            if not ours(tags, service):
                continue
            policy = None
            try:
                policy = json.loads(lam.get_policy(FunctionName=f["FunctionName"])["Policy"])
            except lam.exceptions.ResourceNotFoundException:
                pass
            functions[f["FunctionName"]] = {
                "runtime": f.get("Runtime"),
                "handler": f.get("Handler"),
                "memory": f.get("MemorySize"),
                "timeout": f.get("Timeout"),
                "role": f.get("Role"),
                "architectures": f.get("Architectures"),
                "environment": f.get("Environment", {}).get("Variables", {}),
                "codeSha256": f.get("CodeSha256"),
                "permissions": sorted(
                    s["Principal"]["Service"] if isinstance(s["Principal"], dict) else s["Principal"]
                    for s in (policy or {}).get("Statement", [])
                ),
                "tags": tags,
            }
    out["functions"] = functions

    roles = {}
    for page in iam.get_paginator("list_roles").paginate():
        for r in page["Roles"]:
            tags = iam.list_role_tags(RoleName=r["RoleName"]).get("Tags", [])
            if not ours(tags, service):
                continue
            names = iam.list_role_policies(RoleName=r["RoleName"])["PolicyNames"]
            docs = {}
            for n in names:
                doc = iam.get_role_policy(RoleName=r["RoleName"], PolicyName=n)["PolicyDocument"]
                docs[n] = doc if isinstance(doc, dict) else json.loads(urllib.parse.unquote(doc))
            roles[r["RoleName"]] = {"arn": r["Arn"], "policies": docs}
    out["roles"] = roles

    apis = {}
    for a in apigw.get_apis().get("Items", []):
        if not ours(a.get("Tags"), service):
            continue
        routes = apigw.get_routes(ApiId=a["ApiId"]).get("Items", [])
        integrations = {
            i["IntegrationId"]: i for i in apigw.get_integrations(ApiId=a["ApiId"]).get("Items", [])
        }
        stages = apigw.get_stages(ApiId=a["ApiId"]).get("Items", [])
        apis[a["Name"]] = {
            "cors": a.get("CorsConfiguration"),
            "routes": {
                r["RouteKey"]: integrations.get(r.get("Target", "").split("/")[-1], {}).get(
                    "IntegrationUri"
                )
                for r in routes
            },
            "payloads": sorted({i.get("PayloadFormatVersion") for i in integrations.values()}),
            "stages": {s["StageName"]: s.get("AutoDeploy") for s in stages},
        }
    out["apis"] = apis

    queues = {}
    for url in sqs.list_queues().get("QueueUrls", []):
        tags = sqs.list_queue_tags(QueueUrl=url).get("Tags", {})
        if not ours(tags, service):
            continue
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        queues[url.rsplit("/", 1)[-1]] = {
            "arn": attrs["QueueArn"],
            "visibilityTimeout": int(attrs["VisibilityTimeout"]),
            "redrive": json.loads(attrs["RedrivePolicy"]) if "RedrivePolicy" in attrs else None,
        }
    out["queues"] = queues

    mappings = []
    for m in lam.list_event_source_mappings().get("EventSourceMappings", []):
        fn = m["FunctionArn"].rsplit(":", 1)[-1]
        if fn in functions:
            mappings.append(
                {
                    "function": fn,
                    "source": m["EventSourceArn"].rsplit(":", 1)[-1],
                    "batchSize": m.get("BatchSize"),
                    "responseTypes": m.get("FunctionResponseTypes", []),
                }
            )
    out["mappings"] = sorted(mappings, key=lambda m: (m["function"], m["source"]))

    rules = {}
    for r in events.list_rules().get("Rules", []):
        tags = events.list_tags_for_resource(ResourceARN=r["Arn"]).get("Tags", [])
        if not ours(tags, service):
            continue
        targets = events.list_targets_by_rule(Rule=r["Name"]).get("Targets", [])
        rules[r["Name"]] = {
            "schedule": r.get("ScheduleExpression"),
            "state": r.get("State"),
            "targets": [t["Arn"].rsplit(":", 1)[-1] for t in targets],
        }
    out["rules"] = rules

    buckets = {}
    for b in s3.list_buckets().get("Buckets", []):
        try:
            tags = s3.get_bucket_tagging(Bucket=b["Name"]).get("TagSet", [])
        except Exception:
            tags = []
        if not ours(tags, service):
            continue
        n = s3.get_bucket_notification_configuration(Bucket=b["Name"])
        buckets[b["Name"]] = {
            "notifications": [
                {
                    "function": c["LambdaFunctionArn"].rsplit(":", 1)[-1],
                    "events": c["Events"],
                    "filter": c.get("Filter", {}).get("Key", {}).get("FilterRules", []),
                }
                for c in n.get("LambdaFunctionConfigurations", [])
            ]
        }
    out["buckets"] = buckets

    tables = {}
    for name in ddb.list_tables().get("TableNames", []):
        t = ddb.describe_table(TableName=name)["Table"]
        tags = ddb.list_tags_of_resource(ResourceArn=t["TableArn"]).get("Tags", [])
        if not ours(tags, service):
            continue
        tables[name] = {
            "keys": {k["KeyType"]: k["AttributeName"] for k in t["KeySchema"]},
            "billing": t.get("BillingModeSummary", {}).get("BillingMode"),
        }
    out["tables"] = tables

    topics = {}
    for t in sns.list_topics().get("Topics", []):
        arn = t["TopicArn"]
        tags = sns.list_tags_for_resource(ResourceArn=arn).get("Tags", [])
        if not ours(tags, service):
            continue
        subs = sns.list_subscriptions_by_topic(TopicArn=arn).get("Subscriptions", [])
        topics[arn.rsplit(":", 1)[-1]] = {
            "subscriptions": [
                {"protocol": s["Protocol"], "endpoint": s["Endpoint"].rsplit(":", 1)[-1]}
                for s in subs
            ]
        }
    out["topics"] = topics

    secrets = {}
    for s in sm.list_secrets().get("SecretList", []):
        if not ours(s.get("Tags"), service):
            continue
        try:
            value = sm.get_secret_value(SecretId=s["ARN"]).get("SecretString")
        except Exception:
            value = None
        secrets[s["Name"]] = {"arn": s["ARN"], "value": value, "description": s.get("Description")}
    out["secrets"] = secrets
    return out


READ_PREFIXES = ("Get", "List", "Describe", "Head", "Query", "Scan", "BatchGet")


def mutations():
    """The mutating calls moto recorded (moto's recorder stores every request)."""
    raw = urllib.request.urlopen(ENDPOINT + "/moto-api/recorder/download-recording").read()
    found = []
    for line in raw.decode().splitlines():
        if not line.strip():
            continue
        r = json.loads(line)
        url = r.get("url", "")
        if "/moto-api/" in url:
            continue
        headers = {k.lower(): v for k, v in (r.get("headers") or {}).items()}
        body = r.get("body") or ""
        if r.get("body_encoded") and body:
            try:
                body = base64.b64decode(body).decode("utf-8", "replace")
            except Exception:
                body = ""
        op = None
        if "x-amz-target" in headers:
            op = headers["x-amz-target"].split(".")[-1]
        elif "Action=" in body:
            op = urllib.parse.parse_qs(body).get("Action", [None])[0]
        elif "Action=" in url:
            op = urllib.parse.parse_qs(urllib.parse.urlparse(url).query).get("Action", [None])[0]
        if op is not None:
            if not op.startswith(READ_PREFIXES):
                found.append(op)
        elif r.get("method") not in ("GET", "HEAD"):
            found.append(f"{r.get('method')} {urllib.parse.urlparse(url).path}")
    return found


def main():
    cmd = sys.argv[2]
    if cmd == "deployed":
        print(json.dumps(deployed(sys.argv[3]), indent=1, sort_keys=True, default=str))
    elif cmd == "mutations":
        print(json.dumps(mutations()))
    elif cmd == "set-memory":
        client("lambda").update_function_configuration(
            FunctionName=sys.argv[3], MemorySize=int(sys.argv[4])
        )
    elif cmd == "put-object":
        body = sys.argv[5].encode() if len(sys.argv) > 5 else b"{}"
        client("s3").put_object(Bucket=sys.argv[3], Key=sys.argv[4], Body=body)
    elif cmd == "list-objects":
        import hashlib

        s3 = client("s3")
        found = {}
        for o in s3.list_objects_v2(Bucket=sys.argv[3]).get("Contents", []):
            body = s3.get_object(Bucket=sys.argv[3], Key=o["Key"])["Body"].read()
            found[o["Key"]] = base64.b64encode(hashlib.sha256(body).digest()).decode()
        print(json.dumps(found))
    elif cmd == "create-bucket":
        client("s3").create_bucket(Bucket=sys.argv[3])
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
