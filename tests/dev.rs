//! `ferry dev` end to end: the real binary serving the examples over real HTTP, node and
//! python through ferry's shims, a Rust function built on `lambda_runtime`, a Python function
//! run by AWS's own `awslambdaric`, Lambda `Invoke` through boto3, and the timeout, crash,
//! init-error and hot-reload paths.
//!
//! Python tools (awslambdaric, boto3) come from the venv that `scripts/test.sh` creates; its
//! interpreter is passed in `FERRY_TEST_PYTHON`.

mod common;

use common::{free_port, Process};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn test_python() -> String {
    std::env::var("FERRY_TEST_PYTHON").expect("FERRY_TEST_PYTHON is set by scripts/test.sh (a venv with awslambdaric and boto3); run the tests through it")
}

/// Runs a Python script (boto3 against ferry dev, mostly) with the test venv's python and
/// `args`; fails the test unless it succeeds, and returns what it printed.
fn python_script(script: &str, args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new(test_python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

struct Dev {
    _child: Process,
    gateway: String,
    aws: String,
}

fn dev(dir: &Path, extra: &[&str]) -> Dev {
    dev_with_env(dir, extra, &[])
}

/// `ferry dev --port 0` in `dir`, with extra arguments and environment variables.
fn dev_with_env(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Dev {
    let mut args = vec!["--format", "json", "dev", "--port", "0"];
    args.extend_from_slice(extra);
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .current_dir(dir)
        .args(&args)
        .envs(env.iter().copied())
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("ferry dev printed {line:?}: {e}"));
    Dev {
        _child: Process(child),
        gateway: v["gateway"].as_str().unwrap().to_owned(),
        aws: v["aws"].as_str().unwrap().to_owned(),
    }
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn node_example_over_real_http() {
    let d = dev(&root().join("examples/hello-http"), &["--no-watch"]);
    let c = client();
    let r = c
        .get(format!("{}/hello?name=Ada", d.gateway))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().unwrap();
    assert!(body.to_string().contains("Ada"), "{body}");
    let r = c
        .get(format!("{}/greet/Grace%20Hopper", d.gateway))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().unwrap().contains("Grace Hopper"));
    let r = c
        .post(format!("{}/echo", d.gateway))
        .header("content-type", "application/json")
        .body(r#"{"a":[1,2]}"#)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert!(r.text().unwrap().contains("[1,2]"));
    // CORS preflight on the cors-enabled route; none elsewhere.
    let r = c
        .request(reqwest::Method::OPTIONS, format!("{}/echo", d.gateway))
        .header("access-control-request-headers", "content-type")
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["access-control-allow-headers"], "content-type");
    assert_eq!(
        c.get(format!("{}/nope", d.gateway))
            .send()
            .unwrap()
            .status(),
        404
    );
}

#[test]
fn python_example_through_the_shim() {
    let d = dev(&root().join("examples/queue-worker"), &["--no-watch"]);
    let r = client()
        .post(format!("{}/jobs", d.gateway))
        .header("content-type", "application/json")
        .body(r#"{"task":"sum","payload":{"numbers":[1,2]}}"#)
        .send()
        .unwrap();
    assert_eq!(r.status(), 202);
    let body: serde_json::Value = r.json().unwrap();
    assert_eq!(body["task"], "sum", "{body}");
}

/// The queue-worker example driven end to end by AWS's own command line (awscli from PyPI,
/// in the test venv) against `ferry dev`'s endpoints: `aws lambda invoke` with a log tail,
/// `aws sqs send-message`, `aws s3 cp` (a small file, and a 12 MiB one up in parts and down
/// in ranges) and `aws s3 ls`, and `aws dynamodb scan` to see the results the queue worker
/// stored.
#[test]
fn queue_worker_example_through_the_aws_cli() {
    let dir = tempfile::tempdir().unwrap();
    let example = root().join("examples/queue-worker");
    let manifest = std::fs::read_to_string(example.join("serverless.yaml")).unwrap();
    write(
        &dir.path().join("serverless.yaml"),
        &manifest.replacen(
            "\nprovider:\n",
            &format!("\nprovider:\n  local:\n    python: {}\n", test_python()),
            1,
        ),
    );
    std::fs::copy(example.join("worker.py"), dir.path().join("worker.py")).unwrap();
    let d = dev(dir.path(), &["--no-watch"]);
    let aws_bin = Path::new(&test_python()).with_file_name("aws");
    let aws = |args: &[&str]| {
        let out = Command::new(&aws_bin)
            .args(["--endpoint-url", &d.aws, "--output", "json"])
            .args(args)
            .current_dir(dir.path())
            .env("AWS_ACCESS_KEY_ID", "x")
            .env("AWS_SECRET_ACCESS_KEY", "x")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", dir.path().join("no-config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                dir.path().join("no-credentials"),
            )
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "aws {args:?}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    // Invoke: the HTTP function called directly, with its log tail.
    let r: serde_json::Value = serde_json::from_str(&aws(&[
        "lambda",
        "invoke",
        "--function-name",
        "queue-worker-dev-enqueue",
        "--log-type",
        "Tail",
        "--payload",
        r#"{"body": "{\"task\": \"sum\", \"payload\": {\"numbers\": [1, 2]}}"}"#,
        "out.json",
    ]))
    .unwrap();
    assert_eq!(r["StatusCode"], 200, "{r}");
    use base64::Engine as _;
    let tail = base64::engine::general_purpose::STANDARD
        .decode(r["LogResult"].as_str().unwrap())
        .unwrap();
    let tail = String::from_utf8(tail).unwrap();
    assert!(
        tail.starts_with("START RequestId: ") && tail.contains("\nREPORT RequestId: "),
        "{tail}"
    );
    let out: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out.json")).unwrap()).unwrap();
    assert_eq!(out["statusCode"], 202, "{out}");
    // SQS: a job straight onto the queue.
    let url: serde_json::Value = serde_json::from_str(&aws(&[
        "sqs",
        "get-queue-url",
        "--queue-name",
        "queue-worker-dev-jobs",
    ]))
    .unwrap();
    aws(&[
        "sqs",
        "send-message",
        "--queue-url",
        url["QueueUrl"].as_str().unwrap(),
        "--message-body",
        r#"{"id": "cli-1", "task": "sum", "payload": {"numbers": [4, 5]}}"#,
    ]);
    // S3: an upload under incoming/ becomes a job through the storage trigger.
    write(&dir.path().join("report.txt"), "twelve bytes");
    aws(&[
        "s3",
        "cp",
        "report.txt",
        "s3://queue-worker-dev-uploads/incoming/report.txt",
    ]);
    // 12 MiB: the CLI uploads it in two parts (multipart) and downloads it in ranges.
    let big: Vec<u8> = (0..12u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(dir.path().join("big.bin"), &big).unwrap();
    aws(&[
        "s3",
        "cp",
        "--only-show-errors",
        "big.bin",
        "s3://queue-worker-dev-uploads/incoming/big.bin",
    ]);
    aws(&[
        "s3",
        "cp",
        "--only-show-errors",
        "s3://queue-worker-dev-uploads/incoming/big.bin",
        "back.bin",
    ]);
    assert!(
        std::fs::read(dir.path().join("back.bin")).unwrap() == big,
        "the 12 MiB object came back whole"
    );
    // Copies inside S3: `mv` is CopyObject then DeleteObject, and a copy over 8 MB is made of
    // UploadPartCopy parts. (A copy once wrote an empty object.)
    aws(&[
        "s3",
        "cp",
        "--only-show-errors",
        "report.txt",
        "s3://queue-worker-dev-uploads/data/r.txt",
    ]);
    aws(&[
        "s3",
        "mv",
        "--only-show-errors",
        "s3://queue-worker-dev-uploads/data/r.txt",
        "s3://queue-worker-dev-uploads/data/moved r.txt",
    ]);
    assert_eq!(
        aws(&[
            "s3",
            "cp",
            "s3://queue-worker-dev-uploads/data/moved r.txt",
            "-"
        ]),
        "twelve bytes"
    );
    aws(&[
        "s3",
        "cp",
        "--only-show-errors",
        "s3://queue-worker-dev-uploads/incoming/big.bin",
        "s3://queue-worker-dev-uploads/data/big-copy.bin",
    ]);
    aws(&[
        "s3",
        "cp",
        "--only-show-errors",
        "s3://queue-worker-dev-uploads/data/big-copy.bin",
        "copy.bin",
    ]);
    assert!(
        std::fs::read(dir.path().join("copy.bin")).unwrap() == big,
        "the 12 MiB copy is whole"
    );
    let data = aws(&["s3", "ls", "s3://queue-worker-dev-uploads/data/"]);
    // The keys an `aws s3 ls` listing shows (after date, time and size).
    let keys = |listing: &str| -> Vec<String> {
        listing
            .lines()
            .map(|l| l.split_whitespace().skip(3).collect::<Vec<_>>().join(" "))
            .collect()
    };
    assert_eq!(keys(&data), ["big-copy.bin", "moved r.txt"], "{data}");
    // The bucket's top level: folders roll up (a delimiter listing); `rm --recursive` is
    // DeleteObjects.
    let top = aws(&["s3", "ls", "s3://queue-worker-dev-uploads/"]);
    assert_eq!(
        top.lines().map(str::trim).collect::<Vec<_>>(),
        ["PRE data/", "PRE incoming/"],
        "{top}"
    );
    aws(&[
        "s3",
        "rm",
        "--recursive",
        "--only-show-errors",
        "s3://queue-worker-dev-uploads/data/",
    ]);
    assert_eq!(
        keys(&aws(&[
            "s3",
            "ls",
            "--recursive",
            "s3://queue-worker-dev-uploads/"
        ])),
        ["incoming/big.bin", "incoming/report.txt"]
    );
    let listing = aws(&["s3", "ls", "s3://queue-worker-dev-uploads/incoming/"]);
    assert!(
        listing.contains("report.txt") && listing.contains(" 12582912 big.bin"),
        "{listing}"
    );
    // DynamoDB: the worker stored all three results.
    let since = Instant::now();
    loop {
        let scan: serde_json::Value = serde_json::from_str(&aws(&[
            "dynamodb",
            "scan",
            "--table-name",
            "queue-worker-dev-results",
        ]))
        .unwrap();
        let mut outputs: Vec<String> = scan["Items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["output"]["S"].as_str().unwrap().to_owned())
            .collect();
        outputs.sort();
        let expected = [
            r#"{"count": 2, "sum": 3}"#,
            r#"{"count": 2, "sum": 9}"#,
            r#"{"extension": "bin", "name": "big.bin", "object": "s3://queue-worker-dev-uploads/incoming/big.bin", "size": "12.0 MiB", "sizeBytes": 12582912}"#,
            r#"{"extension": "txt", "name": "report.txt", "object": "s3://queue-worker-dev-uploads/incoming/report.txt", "size": "12 B", "sizeBytes": 12}"#,
        ];
        if outputs == expected {
            let ids = scan["Items"].to_string();
            assert!(ids.contains(r#""S":"cli-1""#), "{ids}");
            break;
        }
        assert!(
            since.elapsed() < Duration::from_secs(30),
            "results so far: {outputs:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Whatever a function prints, its logs keep flowing: bytes that are not UTF-8, a line of
/// 600 KB, a last line without a newline. (A non-UTF-8 byte once stopped ferry reading the
/// pipe, and every later print of the function failed with a broken pipe.)
#[test]
fn functions_may_print_anything() {
    let svc = service(
        &format!(
            "service: noisy\nprovider:\n  runtime: python3.12\n  local:\n    python: {py}\nfunctions:\n  py:\n    handler: app.noisy\n    triggers:\n      - http: GET /py\n  node:\n    handler: index.noisy\n    runtime: nodejs22\n    triggers:\n      - http: GET /node\n",
            py = test_python()
        ),
        &[
            (
                "app.py",
                "import sys\ndef noisy(event, context):\n    out = sys.stdout.buffer\n    out.write(b'bad \\xff byte\\n' + b'z' * 600000 + b'\\n')\n    for i in range(2000):\n        print('filler %05d' % i)\n    out.write(b'no newline')\n    out.flush()\n    return {'statusCode': 200, 'body': 'ok'}\n",
            ),
            (
                "index.js",
                "exports.noisy = async () => {\n  process.stdout.write(Buffer.from([0x62, 0xff, 0x0a]));\n  process.stdout.write('z'.repeat(600000) + '\\n');\n  for (let i = 0; i < 2000; i++) console.log(`filler ${i}`);\n  return { statusCode: 200, body: 'ok' };\n};\n",
            ),
        ],
    );
    let d = dev(svc.path(), &["--no-watch", "--concurrency", "1"]);
    let c = client();
    for path in ["/py", "/node"] {
        for round in 0..3 {
            let r = c.get(format!("{}{path}", d.gateway)).send().unwrap();
            assert_eq!(
                (r.status().as_u16(), r.text().unwrap()),
                (200, "ok".to_owned()),
                "{path}, round {round}"
            );
        }
    }
}

/// The startup table: every route and trigger, what starts it, in aligned columns.
#[test]
fn the_startup_table_lists_every_route_and_trigger() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .current_dir(root().join("examples/queue-worker"))
        .args(["dev", "--port", "0", "--no-watch", "--lazy"])
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let _stop = Process(child);
    let mut rows = Vec::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        if line.contains("AWS endpoints") {
            break;
        }
        if line.contains(" → ") {
            rows.push(line);
        }
    }
    let arrows: std::collections::BTreeSet<usize> =
        rows.iter().map(|r| r.find('→').unwrap()).collect();
    assert_eq!(arrows.len(), 1, "one column of arrows: {rows:#?}");
    let cells: Vec<Vec<&str>> = rows
        .iter()
        .map(|r| {
            r.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect()
        })
        .collect();
    let cell = |what: &str| {
        cells
            .iter()
            .find(|c| c[0] == what)
            .unwrap_or_else(|| panic!("no row {what}: {rows:#?}"))
            .clone()
    };
    assert_eq!(cell("POST /jobs")[1], "→ enqueue");
    assert!(cell("POST /jobs")[2].ends_with("/jobs"));
    assert_eq!(
        cell("queue jobs (batches of 5)"),
        ["queue jobs (batches of 5)", "→ worker"]
    );
    assert_eq!(
        cell("storage uploads (created, incoming/*)"),
        ["storage uploads (created, incoming/*)", "→ ingest"]
    );
    assert_eq!(cell("schedule rate(1 hour)")[1], "→ nightly");
    assert_eq!(cell("schedule cron(0 3 * * ? *)")[1], "→ nightly");
    assert_eq!(cell("topic job-events")[1], "→ audit");
    assert_eq!(rows.len(), 6, "{rows:#?}");
}

#[test]
fn rust_function_on_lambda_runtime() {
    let d = dev(&root().join("examples/rust-api"), &["--no-watch"]);
    let c = client();
    let items: serde_json::Value = c
        .get(format!("{}/items", d.gateway))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(items[0]["name"], "kettle", "{items}");
    let r = c
        .post(format!("{}/items", d.gateway))
        .header("content-type", "application/json")
        .body(r#"{"name":"cup","price":3}"#)
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        c.get(format!("{}/items/3", d.gateway))
            .send()
            .unwrap()
            .status(),
        200,
        "the worker stayed warm and kept its state"
    );
    assert_eq!(
        c.get(format!("{}/items/99", d.gateway))
            .send()
            .unwrap()
            .status(),
        404
    );
}

/// A service in a temp folder: its manifest and its files.
fn service(manifest: &str, files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("serverless.yaml"), manifest);
    for (name, text) in files {
        write(&dir.path().join(name), text);
    }
    dir
}

/// A scratch service exercising the failure paths and awslambdaric.
fn scratch() -> tempfile::TempDir {
    service(
        &format!(
            "service: scratch\nprovider:\n  runtime: python3.12\n  timeout: 2\n  local:\n    python: {py}\n    pythonRuntimeClient: awslambdaric\nfunctions:\n  ric:\n    handler: app.hello\n    triggers:\n      - http: GET /ric\n  slow:\n    handler: app.slow\n    triggers:\n      - http: GET /slow\n  crash:\n    handler: app.crash\n    triggers:\n      - http: GET /crash\n  boom:\n    handler: app.boom\n    triggers:\n      - http: GET /boom\n  broken:\n    handler: missing.fn\n    triggers:\n      - http: GET /broken\n  pause:\n    handler: app.pause\n    triggers:\n      - http: GET /pause\n",
            py = test_python()
        ),
        &[(
            "app.py",
            "import os, time\nCOUNT = 0\ndef hello(event, context):\n    global COUNT\n    COUNT += 1\n    return {'statusCode': 200, 'body': f\"v1 {COUNT} {context.function_name} {event['rawPath']}\"}\ndef slow(event, context):\n    time.sleep(30)\ndef crash(event, context):\n    os._exit(3)\ndef boom(event, context):\n    raise ValueError('nope')\nPAUSES = 0\ndef pause(event, context):\n    global PAUSES\n    PAUSES += 1\n    time.sleep(0.5)\n    return {'statusCode': 200, 'body': str(PAUSES)}\n",
        )],
    )
}

#[test]
fn awslambdaric_failures_and_hot_reload() {
    let svc = scratch();
    // One worker: the hang-up check below needs the next request to reach the same process.
    let d = dev(svc.path(), &["--concurrency", "1"]);
    let c = client();
    // AWS's own Python runtime interface client, no shim; one warm process.
    let t = c
        .get(format!("{}/ric", d.gateway))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(t, "v1 1 scratch-dev-ric /ric");
    let t = c
        .get(format!("{}/ric", d.gateway))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(t, "v1 2 scratch-dev-ric /ric");
    // Timeout: 504 after the function's 2 s, and the worker is replaced.
    let started = Instant::now();
    assert_eq!(
        c.get(format!("{}/slow", d.gateway))
            .send()
            .unwrap()
            .status(),
        504
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    // Crash: 502, and the next request gets a new worker.
    assert_eq!(
        c.get(format!("{}/crash", d.gateway))
            .send()
            .unwrap()
            .status(),
        502
    );
    assert_eq!(
        c.get(format!("{}/crash", d.gateway))
            .send()
            .unwrap()
            .status(),
        502
    );
    // A thrown error: 502 from the gateway.
    assert_eq!(
        c.get(format!("{}/boom", d.gateway))
            .send()
            .unwrap()
            .status(),
        502
    );
    // An init error: 502.
    assert_eq!(
        c.get(format!("{}/broken", d.gateway))
            .send()
            .unwrap()
            .status(),
        502
    );
    // A client that hangs up mid-request does not cost the warm worker: the invocation
    // finishes, and the next request is served by the same process (its counter is at 2).
    let impatient = reqwest::blocking::Client::builder()
        .timeout(Duration::from_millis(150))
        .build()
        .unwrap();
    assert!(impatient
        .get(format!("{}/pause", d.gateway))
        .send()
        .is_err());
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(
        c.get(format!("{}/pause", d.gateway))
            .send()
            .unwrap()
            .text()
            .unwrap(),
        "2"
    );
    // Hot reload: change the code, the next request runs it.
    let app = svc.path().join("app.py");
    std::fs::write(
        &app,
        std::fs::read_to_string(&app)
            .unwrap()
            .replace("f\"v1 ", "f\"v2 "),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let t = c
            .get(format!("{}/ric", d.gateway))
            .send()
            .unwrap()
            .text()
            .unwrap();
        if t.starts_with("v2 1 ") {
            break;
        }
        assert!(Instant::now() < deadline, "still serving the old code: {t}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn lambda_invoke_through_boto3() {
    let d = dev(&root().join("examples/hello-http"), &["--no-watch"]);
    let script = format!(
        r#"
import boto3, json
c = boto3.client("lambda", endpoint_url="{aws}", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
event = {{"version": "2.0", "rawPath": "/hello", "queryStringParameters": {{"name": "boto"}}, "requestContext": {{"http": {{"method": "GET", "path": "/hello"}}}}}}
r = c.invoke(FunctionName="hello-http-dev-hello", Payload=json.dumps(event))
print(json.dumps({{"status": r["StatusCode"], "payload": json.loads(r["Payload"].read())}}))
try:
    c.invoke(FunctionName="nope", Payload=b"{{}}")
except c.exceptions.ResourceNotFoundException:
    print("not-found")
try:
    c.invoke(FunctionName="hello", Payload=b"not json")
except c.exceptions.InvalidRequestContentException as e:
    print(e.response["Error"]["Message"].split(":")[0])
"#,
        aws = d.aws
    );
    let stdout = python_script(&script, &[]);
    let first: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(first["status"], 200);
    assert!(first["payload"].to_string().contains("boto"), "{first}");
    assert_eq!(stdout.lines().nth(1), Some("not-found"));
    assert_eq!(
        stdout.lines().nth(2),
        Some("Could not parse request body into json"),
        "only JSON events, as on Lambda"
    );
}

/// `Invoke`'s client context reaches the function's context object, decoded, through both
/// shims; a malformed one is refused as Lambda refuses it; an `Event` call answers with the
/// request id the function then sees; `LogType: Tail` returns the invocation's log.
#[test]
fn lambda_invoke_passes_the_client_context_and_returns_the_log_tail() {
    let svc = service(
        &format!(
            "service: ctx\nprovider:\n  runtime: python3.12\n  local:\n    python: {py}\nfunctions:\n  py:\n    handler: app.handler\n  node:\n    handler: index.handler\n    runtime: nodejs22\n",
            py = test_python()
        ),
        &[
            (
                "app.py",
                "import json, os\ndef handler(event, context):\n    print('py says', event.get('say', 'hi'))\n    c = context.client_context\n    if event.get('note'):\n        with open(context.aws_request_id, 'w') as f:\n            f.write(json.dumps(c and c.custom))\n    return {'custom': c and c.custom, 'env': c and c.env}\n",
            ),
            (
                "index.js",
                "exports.handler = async (event, context) => (console.log('node says hi'), { custom: context.clientContext?.custom ?? null, env: context.clientContext?.env ?? null });\n",
            ),
        ],
    );
    let d = dev(svc.path(), &["--no-watch"]);
    let script = format!(
        r#"
import base64, json, os, sys, time, boto3
c = boto3.client("lambda", endpoint_url="{aws}", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
ctx = base64.b64encode(json.dumps({{"custom": {{"tenant": "t-1"}}, "env": {{"locale": "en"}}}}).encode()).decode()
for fn in ["ctx-dev-py", "node"]:
    r = c.invoke(FunctionName=fn, ClientContext=ctx, Payload=b"{{}}")
    print(json.dumps(json.loads(r["Payload"].read())))
r = c.invoke(FunctionName="py", Payload=b"{{}}")
print(json.dumps(json.loads(r["Payload"].read())))
for bad in ["not base64!", base64.b64encode(b"[1, 2]").decode()]:
    try:
        c.invoke(FunctionName="py", ClientContext=bad, Payload=b"{{}}")
        print("accepted")
    except c.exceptions.InvalidRequestContentException as e:
        print(e.response["Error"]["Message"])
r = c.invoke(FunctionName="py", InvocationType="Event", ClientContext=ctx, Payload=b'{{"note": true}}')
rid = r["ResponseMetadata"]["RequestId"]
for _ in range(200):
    if os.path.exists(os.path.join(sys.argv[1], rid)):
        break
    time.sleep(0.05)
print(r["StatusCode"], open(os.path.join(sys.argv[1], rid)).read())
for fn, event in [("py", {{}}), ("node", {{}}), ("py", {{"say": "x" * 5000}})]:
    r = c.invoke(FunctionName=fn, LogType="Tail", Payload=json.dumps(event).encode())
    print(json.dumps({{"id": r["ResponseMetadata"]["RequestId"], "tail": base64.b64decode(r["LogResult"]).decode()}}))
print("LogResult" in c.invoke(FunctionName="py", Payload=b"{{}}"))
try:
    c.invoke(FunctionName="py", LogType="Bogus", Payload=b"{{}}")
except c.exceptions.ClientError as e:
    print(e.response["Error"]["Code"])
"#,
        aws = d.aws
    );
    let stdout = python_script(&script, &[svc.path().as_os_str()]);
    let invalid = "Client context must be a valid Base64-encoded JSON object.";
    let lines: Vec<_> = stdout.lines().collect();
    // Three log tails: the invocation's START, what it printed, END and REPORT.
    for (i, said) in ["py says hi", "node says hi", ""].into_iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(lines[6 + i]).unwrap();
        let (id, tail) = (v["id"].as_str().unwrap(), v["tail"].as_str().unwrap());
        let mut expected = vec![
            format!("START RequestId: {id} Version: $LATEST"),
            said.to_owned(),
            format!("END RequestId: {id}"),
        ];
        let got: Vec<&str> = tail.lines().collect();
        if said.is_empty() {
            // 5,000 characters printed: the last 4 KB, ending as the others do.
            assert!(tail.len() <= 4096 && tail.len() > 4000, "{}", tail.len());
            expected.drain(..2);
            assert!(got[0].chars().all(|c| c == 'x'), "{tail}");
            assert_eq!(got[1..2], expected, "{tail}");
        } else {
            assert_eq!(got[..3], expected, "{tail}");
        }
        assert!(
            got.last()
                .unwrap()
                .starts_with(&format!("REPORT RequestId: {id}\tDuration: ")),
            "{tail}"
        );
    }
    assert_eq!(lines[9..], ["False", "ValidationException"]);
    assert_eq!(
        lines[..6],
        [
            r#"{"custom": {"tenant": "t-1"}, "env": {"locale": "en"}}"#,
            r#"{"custom": {"tenant": "t-1"}, "env": {"locale": "en"}}"#,
            r#"{"custom": null, "env": null}"#,
            invalid,
            invalid,
            // Asynchronous calls carry no client context, as on Lambda.
            "202 null",
        ]
    );
}

/// Lambda's payload limits: answers up to 6 MB go through whole (axum's 2 MB default once
/// broke a 3 MB one), larger ones fail the invocation as on Lambda while the worker lives on;
/// requests over the limits are refused before any function runs.
#[test]
fn payloads_up_to_lambdas_limits_and_not_beyond() {
    let svc = service(
        &format!(
            "service: big\nprovider:\n  runtime: python3.12\n  local:\n    python: {py}\nfunctions:\n  py:\n    handler: app.big\n    triggers:\n      - http: GET /py\n  node:\n    handler: index.big\n    runtime: nodejs22\n    triggers:\n      - http: GET /node\n  size:\n    handler: app.size\n    triggers:\n      - http: POST /size\n",
            py = test_python()
        ),
        &[
            (
                "app.py",
                "import os\ndef big(event, context):\n    n = int(event['queryStringParameters']['n'])\n    return {'statusCode': 200, 'body': f'{os.getpid()} ' + 'x' * n}\ndef size(event, context):\n    return {'statusCode': 200, 'body': str(len(event['body']))}\n",
            ),
            (
                "index.js",
                "exports.big = async (event) => ({ statusCode: 200, body: `${process.pid} ` + 'x'.repeat(Number(event.queryStringParameters.n)) });\n",
            ),
        ],
    );
    let d = dev(svc.path(), &["--no-watch", "--concurrency", "1"]);
    let c = client();
    for path in ["/py", "/node"] {
        let get = |n: usize| {
            let r = c.get(format!("{}{path}?n={n}", d.gateway)).send().unwrap();
            (r.status().as_u16(), r.text().unwrap())
        };
        let (status, body) = get(3_000_000);
        assert_eq!(status, 200, "{path}");
        let (pid, xs) = body.split_once(' ').unwrap();
        assert_eq!(xs.len(), 3_000_000, "{path}");
        assert_eq!(get(7_000_000).0, 502, "{path}");
        // The worker took the 413 for its answer and went on.
        let (status, body) = get(1);
        assert_eq!((status, body), (200, format!("{pid} x")), "{path}");
    }
    let r = c
        .post(format!("{}/size", d.gateway))
        .body("y".repeat(4_000_000))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().unwrap(), "4000000");
    let r = c
        .post(format!("{}/size", d.gateway))
        .body("y".repeat(7_000_000))
        .send()
        .unwrap();
    assert_eq!(r.status(), 413);
    let script = format!(
        r#"
import json, os, boto3
c = boto3.client("lambda", endpoint_url="{aws}", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
r = c.invoke(FunctionName="py", Payload=json.dumps({{"queryStringParameters": {{"n": "7000000"}}}}).encode())
error = json.loads(r["Payload"].read())
print(r.get("FunctionError"), error["errorType"], 7000000 < int(error["errorMessage"].split("(")[1].split(" ")[0]) < 7000100)
print(error["errorMessage"].split(") ")[1])
for kind, size in [("RequestResponse", 7_000_000), ("Event", 2_000_000)]:
    try:
        c.invoke(FunctionName="size", InvocationType=kind, Payload=json.dumps({{"body": "y" * size}}).encode())
        print("accepted")
    except c.exceptions.RequestTooLargeException as e:
        print(e.response["Error"]["Message"])
"#,
        aws = d.aws
    );
    let stdout = python_script(&script, &[]);
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            "Unhandled Function.ResponseSizeTooLarge True",
            "exceeded maximum allowed payload size (6291556 bytes).",
            "Request must be smaller than 6291556 bytes for the InvokeFunction operation",
            "Request must be smaller than 1048576 bytes for the InvokeFunction operation",
        ]
    );
}

/// Queues, buckets, topics and secrets, driven by boto3 from outside and from inside a
/// function through the injected variables.
#[test]
fn queues_buckets_topics_and_secrets_with_boto3() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("out");
    std::fs::create_dir_all(&out).unwrap();
    write(
        &d.join("serverless.yaml"),
        &format!(
            "service: svc\nprovider:\n  runtime: python3.12\n  environment:\n    OUT: {out}\n  local:\n    python: {py}\nservices:\n  jobs: {{ type: queue, visibilityTimeout: 1, deadLetter: {{ maxReceives: 2 }} }}\n  files: {{ type: bucket }}\n  news: {{ type: topic }}\n  token: {{ type: secret }}\n  items: {{ type: table, key: {{ partition: id, sort: ts }} }}\nfunctions:\n  send:\n    handler: app.send\n    uses: [jobs, token, items]\n    triggers:\n      - http: POST /send\n  work:\n    handler: app.work\n    triggers:\n      - queue: jobs\n        batchSize: 5\n  onfile:\n    handler: app.onfile\n    triggers:\n      - storage: {{ bucket: files, events: [created, removed], prefix: in/ }}\n  onnews:\n    handler: app.onnews\n    triggers:\n      - topic: news\n",
            out = out.display(),
            py = test_python()
        ),
    );
    write(
        &d.join("app.py"),
        r#"import json, os, boto3
OUT = os.environ["OUT"]
def _write(name, text):
    with open(os.path.join(OUT, name), "a") as f:
        f.write(text + "\n")
def send(event, context):
    sqs = boto3.client("sqs")
    url = os.environ["JOBS_QUEUE_URL"]
    sqs.send_message(QueueUrl=url, MessageBody=event["body"])
    token = boto3.client("secretsmanager").get_secret_value(SecretId=os.environ["TOKEN_SECRET_ARN"])["SecretString"]
    boto3.client("dynamodb").put_item(TableName=os.environ["ITEMS_TABLE_NAME"], Item={"id": {"S": "job"}, "ts": {"N": "2"}, "body": {"S": event["body"]}})
    return {"statusCode": 202, "body": json.dumps({"queued": True, "token": token})}
def work(event, context):
    failures = []
    for r in event["Records"]:
        if r["body"] == "fail":
            failures.append({"itemIdentifier": r["messageId"]})
        else:
            _write("work", r["body"])
    return {"batchItemFailures": failures}
def onfile(event, context):
    for r in event["Records"]:
        o = r["s3"]["object"]
        _write("files", " ".join([r["eventName"], o["key"], o.get("eTag", "-")]))
def onnews(event, context):
    for r in event["Records"]:
        _write("news", r["Sns"]["Message"])
"#,
    );
    let dev = dev_with_env(d, &["--no-watch"], &[("FERRY_SECRET_TOKEN", "s3cret")]);

    // From inside a function: the injected queue URL and secret ARN work with plain boto3.
    let r = client()
        .post(format!("{}/send", dev.gateway))
        .body("from-http")
        .send()
        .unwrap();
    assert_eq!(r.status(), 202);
    let body: serde_json::Value = r.json().unwrap();
    assert_eq!(body["token"], "s3cret");
    let script = format!(
        r#"
import boto3, time
kw = dict(endpoint_url="{aws}", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
sqs = boto3.client("sqs", **kw)
url = sqs.get_queue_url(QueueName="svc-dev-jobs")["QueueUrl"]
sqs.send_message_batch(QueueUrl=url, Entries=[{{"Id": "a", "MessageBody": "one"}}, {{"Id": "b", "MessageBody": "fail"}}])
s3 = boto3.client("s3", **kw)
s3.put_object(Bucket="svc-dev-files", Key="in/a.txt", Body=b"x")
s3.put_object(Bucket="svc-dev-files", Key="other/b.txt", Body=b"x")
# Sub-resources ferry does not keep are refused, never applied to the object itself.
for call in [
    lambda: s3.put_object_tagging(Bucket="svc-dev-files", Key="other/b.txt", Tagging={{"TagSet": [{{"Key": "k", "Value": "v"}}]}}),
    lambda: s3.delete_object_tagging(Bucket="svc-dev-files", Key="other/b.txt"),
    lambda: s3.put_object_acl(Bucket="svc-dev-files", Key="other/b.txt", ACL="public-read"),
]:
    try:
        call()
        raise SystemExit("a sub-resource call was taken")
    except s3.exceptions.ClientError as e:
        assert e.response["Error"]["Code"] == "NotImplemented", e.response
assert s3.get_object(Bucket="svc-dev-files", Key="other/b.txt")["Body"].read() == b"x"
# A folder marker is taken; a key under an object cannot be kept (a bucket is a folder here)
# and says so at once (400, not retried).
s3.put_object(Bucket="svc-dev-files", Key="marker/", Body=b"")
try:
    s3.put_object(Bucket="svc-dev-files", Key="other/b.txt/c", Body=b"x")
    raise SystemExit("a key under an object was taken")
except s3.exceptions.ClientError as e:
    assert e.response["Error"]["Code"] == "InvalidRequest" and "a/b" in e.response["Error"]["Message"], e.response
assert s3.get_bucket_location(Bucket="svc-dev-files")["LocationConstraint"] is None
assert "Status" not in s3.get_bucket_versioning(Bucket="svc-dev-files")
s3.delete_object(Bucket="svc-dev-files", Key="in/a.txt")
# A multipart upload (two parts: 5 MiB and 1 MiB), as the transfer manager makes one.
import hashlib, io
from boto3.s3.transfer import TransferConfig
data = b"m" * (6 << 20)
s3.upload_fileobj(io.BytesIO(data), "svc-dev-files", "in/m.bin", Config=TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20))
etag = hashlib.md5(hashlib.md5(data[:5 << 20]).digest() + hashlib.md5(data[5 << 20:]).digest()).hexdigest() + "-2"
assert s3.head_object(Bucket="svc-dev-files", Key="in/m.bin")["ContentLength"] == len(data)
assert s3.get_object(Bucket="svc-dev-files", Key="in/m.bin", Range="bytes=-3")["Body"].read() == b"mmm"
boto3.client("sns", **kw).publish(TopicArn="arn:aws:sns:us-east-1:123456789012:svc-dev-news", Message="hello")
# The failing message is retried after the 1 s visibility timeout, then dead-lettered.
dlq = sqs.get_queue_url(QueueName="svc-dev-jobs-dlq")["QueueUrl"]
# One long poll: it returns when the message arrives (after two receives of 1 s each).
started = time.time()
got = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=20).get("Messages", [])
assert time.time() - started < 15, time.time() - started
try:
    sqs.get_queue_url(QueueName="nope")
    raise SystemExit("a queue that does not exist was found")
except sqs.exceptions.QueueDoesNotExist as e:
    assert e.response["Error"]["Code"] == "AWS.SimpleQueueService.NonExistentQueue", e.response
try:
    sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=21)
    raise SystemExit("WaitTimeSeconds 21 was taken")
except sqs.exceptions.ClientError as e:
    assert e.response["Error"]["Code"] == "InvalidParameterValue", e.response
ddb = boto3.client("dynamodb", **kw)
ddb.put_item(TableName="svc-dev-items", Item={{"id": {{"S": "job"}}, "ts": {{"N": "10"}}, "body": {{"S": "later"}}}})
q = ddb.query(TableName="svc-dev-items", KeyConditionExpression="id = :i AND ts >= :t", ExpressionAttributeValues={{":i": {{"S": "job"}}, ":t": {{"N": "2"}}}})
assert [i["body"]["S"] for i in q["Items"]] == ["from-http", "later"], q["Items"]
assert ddb.get_item(TableName="svc-dev-items", Key={{"id": {{"S": "job"}}, "ts": {{"N": "2"}}}})["Item"]["body"]["S"] == "from-http"
# Conditions and updates, with boto3's own exception for a failed condition.
key = {{"id": {{"S": "counter"}}, "ts": {{"N": "0"}}}}
for _ in range(3):
    r = ddb.update_item(TableName="svc-dev-items", Key=key, UpdateExpression="ADD hits :one", ExpressionAttributeValues={{":one": {{"N": "1"}}}}, ReturnValues="UPDATED_NEW")
assert r["Attributes"] == {{"hits": {{"N": "3"}}}}, r
try:
    ddb.put_item(TableName="svc-dev-items", Item=key, ConditionExpression="attribute_not_exists(id)")
    raise SystemExit("the conditional put went through")
except ddb.exceptions.ConditionalCheckFailedException:
    pass
ddb.batch_write_item(RequestItems={{"svc-dev-items": [{{"DeleteRequest": {{"Key": key}}}}]}})
assert "Item" not in ddb.get_item(TableName="svc-dev-items", Key=key)
# Paging: boto3's paginator follows LastEvaluatedKey through every page, newest first.
ddb.batch_write_item(RequestItems={{"svc-dev-items": [{{"PutRequest": {{"Item": {{"id": {{"S": "page"}}, "ts": {{"N": str(n)}}}}}}}} for n in range(5)]}})
pages = list(ddb.get_paginator("query").paginate(TableName="svc-dev-items", KeyConditionExpression="id = :p", ExpressionAttributeValues={{":p": {{"S": "page"}}}}, ScanIndexForward=False, PaginationConfig={{"PageSize": 2}}))
assert [[i["ts"]["N"] for i in p["Items"]] for p in pages] == [["4", "3"], ["2", "1"], ["0"]], pages
print([m["Body"] for m in got])
print(etag)
"#,
        aws = dev.aws
    );
    let stdout = python_script(&script, &[]);
    let (dead, multipart_etag) = stdout.trim().split_once('\n').unwrap();
    assert_eq!(dead, "['fail']");
    let read = |n: &str| std::fs::read_to_string(out.join(n)).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline
        && (read("work").lines().count() < 2
            || read("files").lines().count() < 3
            || read("news").is_empty())
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut work: Vec<String> = read("work").lines().map(str::to_owned).collect();
    work.sort();
    assert_eq!(work, ["from-http", "one"]);
    // Events are delivered asynchronously (possibly to two workers), so compare as a set.
    let mut files: Vec<String> = read("files").lines().map(str::to_owned).collect();
    files.sort();
    assert_eq!(
        files,
        [
            format!("ObjectCreated:CompleteMultipartUpload in/m.bin {multipart_etag}"),
            // The object's MD5, as S3 gives it; removals carry none.
            "ObjectCreated:Put in/a.txt 9dd4e461268c8034f5c8564e155c67a6".to_owned(),
            "ObjectRemoved:Delete in/a.txt -".to_owned(),
        ],
        "prefix filter, the event kinds and the ETags"
    );
    assert_eq!(read("news"), "hello\n");
}

#[test]
fn ferry_invoke_runs_one_event_locally() {
    let ex = root().join("examples/hello-http");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_ferry"))
            .current_dir(&ex)
            .args(args)
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    let o = run(&["invoke", "hello", "--event", "http"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["statusCode"], 200);
    assert!(
        v["body"].as_str().unwrap().contains("ferry"),
        "the sample http event carries ?name=ferry: {v}"
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("START RequestId:")
            && stderr.contains("REPORT RequestId:")
            && stderr.contains("Max Memory Used:"),
        "{stderr}"
    );
    // A cold start, as Lambda reports one: the REPORT line ends with the init's duration.
    let report = stderr
        .lines()
        .find(|l| l.contains("REPORT RequestId:"))
        .unwrap();
    let init = report
        .split_once("\tInit Duration: ")
        .and_then(|(_, d)| d.strip_suffix(" ms"))
        .and_then(|d| d.parse::<f64>().ok());
    assert!(init.is_some_and(|ms| ms > 0.0), "{report}");
    let o = run(&[
        "invoke",
        "hello",
        "--data",
        r#"{"rawPath":"/hello","queryStringParameters":{"name":"Lin"}}"#,
    ]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("Lin"));
    let o = run(&["invoke", "helo"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("did you mean `hello`?"));
    let o = run(&["invoke", "hello", "--data", "{not json"]);
    assert_eq!(o.status.code(), Some(2));
}

// --- the Azure adapters answer as ferry dev does ---------------------------------------------

/// One request, sent over HTTP to `ferry dev` and replayed through the Azure adapter.
struct HttpCase {
    /// The Azure function (the ferry function: these have one trigger each).
    function: &'static str,
    method: &'static str,
    /// Path and query, as sent.
    target: &'static str,
    headers: &'static [(&'static str, &'static str)],
    body: &'static [u8],
    /// The route values the Functions host would pass (decoded, as ASP.NET routing gives them).
    params: &'static [(&'static str, &'static str)],
}

/// `ferry package --provider <provider>` of a service into a temp folder.
fn package_for(provider: &str, dir: &Path) -> tempfile::TempDir {
    let out = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .current_dir(dir)
        .args(["--provider", provider, "package", "--out"])
        .arg(out.path())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "ferry package --provider {provider}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// `ferry package --provider azure` of an example into a temp folder: the unpacked app.
fn azure_app(dir: &Path, runtime: &str) -> (tempfile::TempDir, PathBuf) {
    let out = package_for("azure", dir);
    let app = out.path().join("azure").join(runtime);
    assert!(
        app.join("ferry/functions.json").is_file(),
        "{}",
        app.display()
    );
    (out, app)
}

/// Runs the replay driver (`templates/azure/tests/replay.{js,py}`) on JSON cases.
fn replay(driver: &[&str], app: &Path, cases: &serde_json::Value) -> Vec<serde_json::Value> {
    use std::io::Write;
    let mut child = Command::new(driver[0])
        .args(&driver[1..])
        .arg(app)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(cases.to_string().as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "replay failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "replay printed {:?}: {e}",
            String::from_utf8_lossy(&o.stdout)
        )
    })
}

/// Sends one case to `base` and gives its [`answer`].
fn send_case(
    c: &reqwest::blocking::Client,
    base: &str,
    case: &HttpCase,
    mask: &[&str],
) -> serde_json::Value {
    let mut r = c.request(
        case.method.parse().unwrap(),
        format!("{base}{}", case.target),
    );
    for (k, v) in case.headers {
        r = r.header(*k, *v);
    }
    let resp = r.body(case.body.to_vec()).send().unwrap();
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    answer(status, ct.as_deref(), &resp.bytes().unwrap(), mask)
}

/// What is compared of a response: status, content type and the body (JSON when it is), with
/// the fields at the given JSON pointers replaced by `"<masked>"`.
fn answer(
    status: u16,
    content_type: Option<&str>,
    body: &[u8],
    mask: &[&str],
) -> serde_json::Value {
    let mut b = serde_json::from_slice(body)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(body).into()));
    for m in mask {
        if let Some(v) = b.pointer_mut(m) {
            *v = serde_json::json!("<masked>");
        }
    }
    serde_json::json!({"status": status, "content-type": content_type, "body": b})
}

/// Sends each case to `ferry dev` and through the adapter; the answers must be equal.
fn same_http_answers(
    dir: &Path,
    runtime: &str,
    driver: &[&str],
    cases: &[HttpCase],
    mask: &[&str],
) -> usize {
    use base64::Engine;
    let (_out, app) = azure_app(dir, runtime);
    let d = dev(dir, &["--no-watch"]);
    let c = client();
    let local: Vec<serde_json::Value> = cases
        .iter()
        .map(|case| send_case(&c, &d.gateway, case, mask))
        .collect();
    let json_cases: Vec<serde_json::Value> = cases
        .iter()
        .map(|case| {
            serde_json::json!({
                "kind": "http",
                "function": case.function,
                "method": case.method,
                "url": format!("https://ferry-test.azurewebsites.net{}", case.target),
                "headers": case.headers.iter().map(|(k, v)| (k.to_string(), serde_json::json!(v))).collect::<serde_json::Map<_, _>>(),
                "body_b64": base64::engine::general_purpose::STANDARD.encode(case.body),
                "params": case.params.iter().map(|(k, v)| (k.to_string(), serde_json::json!(v))).collect::<serde_json::Map<_, _>>(),
            })
        })
        .collect();
    let replayed = replay(driver, &app, &serde_json::Value::Array(json_cases));
    for (i, (case, (l, a))) in cases.iter().zip(local.iter().zip(&replayed)).enumerate() {
        let body = base64::engine::general_purpose::STANDARD
            .decode(a["body_b64"].as_str().unwrap())
            .unwrap();
        let azure = answer(
            a["status"].as_u64().unwrap() as u16,
            a["headers"]["content-type"].as_str(),
            &body,
            mask,
        );
        assert_eq!(
            l, &azure,
            "case {i} ({} {}): ferry dev answered {l}, the Azure adapter {azure}",
            case.method, case.target
        );
    }
    cases.len()
}

#[test]
fn azure_node_adapter_answers_like_ferry_dev() {
    let json = &[("content-type", "application/json")];
    let cases = [
        HttpCase {
            function: "hello",
            method: "GET",
            target: "/hello?name=Ada",
            headers: &[],
            body: b"",
            params: &[],
        },
        HttpCase {
            function: "hello",
            method: "GET",
            target: "/hello",
            headers: &[],
            body: b"",
            params: &[],
        },
        HttpCase {
            function: "hello",
            method: "GET",
            target: "/hello?name=A%26B&x=1",
            headers: &[],
            body: b"",
            params: &[],
        },
        HttpCase {
            function: "greet",
            method: "GET",
            target: "/greet/Grace%20Hopper",
            headers: &[],
            body: b"",
            params: &[("name", "Grace Hopper")],
        },
        HttpCase {
            function: "echo",
            method: "POST",
            target: "/echo",
            headers: json,
            body: br#"{"a":[1,2],"s":"\u00e9"}"#,
            params: &[],
        },
        HttpCase {
            function: "echo",
            method: "POST",
            target: "/echo",
            headers: &[("content-type", "application/octet-stream")],
            body: br#"{"bin":true}"#,
            params: &[],
        },
        HttpCase {
            function: "echo",
            method: "POST",
            target: "/echo",
            headers: &[("content-type", "text/plain")],
            body: b"not json",
            params: &[],
        },
        HttpCase {
            function: "echo",
            method: "POST",
            target: "/echo",
            headers: json,
            body: b"",
            params: &[],
        },
    ];
    // requestId is per request on both sides.
    let n = same_http_answers(
        &root().join("examples/hello-http"),
        "node",
        &[
            "node",
            &root()
                .join("templates/azure/tests/replay.js")
                .to_string_lossy(),
        ],
        &cases,
        &["/requestId"],
    );
    assert_eq!(n, 8);
}

#[test]
fn azure_python_adapter_answers_like_ferry_dev() {
    let json = &[("content-type", "application/json")];
    let cases = [
        HttpCase {
            function: "enqueue",
            method: "POST",
            target: "/jobs",
            headers: json,
            body: br#"{"task":"sum","payload":{"numbers":[1,2]}}"#,
            params: &[],
        },
        HttpCase {
            function: "enqueue",
            method: "POST",
            target: "/jobs",
            headers: json,
            body: br#"{"task":"dance"}"#,
            params: &[],
        },
        HttpCase {
            function: "enqueue",
            method: "POST",
            target: "/jobs",
            headers: json,
            body: b"[1]",
            params: &[],
        },
        HttpCase {
            function: "enqueue",
            method: "POST",
            target: "/jobs",
            headers: json,
            body: b"{oops",
            params: &[],
        },
        HttpCase {
            function: "enqueue",
            method: "POST",
            target: "/jobs",
            headers: json,
            body: br#"{"task":"sum","payload":3}"#,
            params: &[],
        },
    ];
    // `id` is a fresh uuid per job. `queued` says whether JOBS_QUEUE_URL was set: ferry dev
    // injects it (its local SQS); the replay has no queue service, so the handler only logs.
    let n = same_http_answers(
        &root().join("examples/queue-worker"),
        "python",
        &[
            &test_python(),
            &root()
                .join("templates/azure/tests/replay.py")
                .to_string_lossy(),
        ],
        &cases,
        &["/id", "/queued"],
    );
    assert_eq!(n, 5);
}

/// Queue messages: a job the worker runs succeeds, one it cannot run fails, the same way under
/// ferry dev (Lambda Invoke with the SQS event, `batchItemFailures` in the result) and through
/// the Azure adapter (the function returns, or raises so that Azure retries the message).
#[test]
fn azure_queue_messages_succeed_and_fail_like_ferry_dev() {
    let (_out, app) = azure_app(&root().join("examples/queue-worker"), "python");
    let d = dev_with_env(
        &root().join("examples/queue-worker"),
        &["--no-watch"],
        &[("FERRY_SECRET_API_TOKEN", "t0ken")],
    );
    let bodies = WORKER_MESSAGES;
    let local = worker_outcomes(&d, &bodies);
    let cases: Vec<serde_json::Value> = bodies
        .iter()
        .map(|b| serde_json::json!({"kind": "queue", "function": "worker", "body": b}))
        .collect();
    let replayed = replay(
        &[
            &test_python(),
            &root()
                .join("templates/azure/tests/replay.py")
                .to_string_lossy(),
        ],
        &app,
        &serde_json::Value::Array(cases),
    );
    let azure: Vec<bool> = replayed.iter().map(|r| r["ok"] == true).collect();
    assert_eq!(local, vec![true, true, false, false, false]);
    assert_eq!(local, azure, "{replayed:?}");
}

/// The events themselves: handlers that answer with their event, under ferry dev and through the
/// adapters. Masked: what differs per request or per host (ids, times, addresses, the domain,
/// the client's own headers); everything else must be equal.
#[test]
fn azure_adapters_build_the_events_ferry_dev_builds() {
    let v2_mask = [
        "/requestContext/requestId",
        "/requestContext/time",
        "/requestContext/timeEpoch",
        "/requestContext/domainName",
        "/requestContext/domainPrefix",
        "/requestContext/apiId",
        "/requestContext/accountId",
        "/requestContext/http/sourceIp",
        "/requestContext/http/userAgent",
        "/headers",
    ];
    let json = &[("content-type", "application/json")];
    let node = root().join("templates/azure/tests/replay.js");
    let py = root().join("templates/azure/tests/replay.py");
    let fixture = root().join("tests/fixtures/echo-event");
    let node_cases = [
        HttpCase {
            function: "node-v2",
            method: "GET",
            target: "/n/a/b%20c?x=1&x=2&y=%C3%A9&z",
            headers: &[("cookie", "a=1; b=2")],
            body: b"",
            params: &[("proxy", "a/b c")],
        },
        HttpCase {
            function: "node-v2",
            method: "POST",
            target: "/n/upload",
            headers: &[("content-type", "image/png")],
            body: &[0x89, 0x50, 0x4e, 0x47, 0, 0xff],
            params: &[("proxy", "upload")],
        },
        HttpCase {
            function: "node-v2",
            method: "PUT",
            target: "/n/x",
            headers: json,
            body: br#"{"k":"\u00e9"}"#,
            params: &[("proxy", "x")],
        },
    ];
    let n = same_http_answers(
        &fixture,
        "node",
        &["node", &node.to_string_lossy()],
        &node_cases,
        &v2_mask,
    );
    let py_cases = [
        HttpCase {
            function: "python-v2",
            method: "POST",
            target: "/p/42?q=a+b",
            headers: json,
            body: br#"{"n":1}"#,
            params: &[("id", "42")],
        },
        HttpCase {
            function: "python-v2",
            method: "POST",
            target: "/p/%E2%9C%93",
            headers: &[("content-type", "application/octet-stream")],
            body: b"\x00\x01",
            params: &[("id", "\u{2713}")],
        },
    ];
    let p = same_http_answers(
        &fixture,
        "python",
        &[&test_python(), &py.to_string_lossy()],
        &py_cases,
        &v2_mask,
    );
    let v1_mask = [
        "/requestContext/requestId",
        "/requestContext/requestTime",
        "/requestContext/requestTimeEpoch",
        "/requestContext/domainName",
        "/requestContext/apiId",
        "/requestContext/accountId",
        "/requestContext/identity",
        "/requestContext/path",
        "/requestContext/stage",
        "/headers",
        "/multiValueHeaders",
    ];
    let v1_cases = [HttpCase {
        function: "node-v1",
        method: "GET",
        target: "/n1/7?a=1&a=2",
        headers: &[],
        body: b"",
        params: &[("id", "7")],
    }];
    let v1 = same_http_answers(
        &root().join("tests/fixtures/echo-event-v1"),
        "node",
        &["node", &node.to_string_lossy()],
        &v1_cases,
        &v1_mask,
    );
    assert_eq!((n, p, v1), (3, 2, 1));
}

/// The Rust example (a `lambda_runtime` binary) as a custom handler app: `ferry-adapter`
/// (`ferry-adapter`, copied in by `ferry package --provider azure`) gets custom handler
/// requests as the Functions host sends them and answers what ferry dev answers over HTTP.
#[test]
fn azure_custom_handler_runs_the_rust_binary_like_ferry_dev() {
    let (_out, app) = azure_app(&root().join("examples/rust-api"), "custom");
    let port = free_port();
    let mut adapter = Command::new(app.join("ferry-adapter"))
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("ferry-adapter starts");
    let d = dev(&root().join("examples/rust-api"), &["--no-watch"]);
    let c = client();
    // (azure function, method, path, body)
    let cases = [
        ("api-http0", "GET", "/items", ""),
        ("api-http1", "GET", "/items/1", ""),
        ("api-http1", "GET", "/items/99", ""),
        ("api-http2", "POST", "/items", r#"{"name":"cup","price":3}"#),
        ("api-http2", "POST", "/items", r#"{"name":" "}"#),
        ("api-http2", "POST", "/items", "nope"),
        ("api-http1", "GET", "/items/3", ""),
    ];
    let started = Instant::now();
    let mut n = 0;
    for (function, method, path, body) in cases {
        let local = c
            .request(method.parse().unwrap(), format!("{}{path}", d.gateway))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .unwrap();
        let local = (
            local.status().as_u16(),
            local.json::<serde_json::Value>().unwrap(),
        );
        let payload = serde_json::json!({
            "Data": {"req": {
                "Url": format!("https://rust-api.azurewebsites.net{path}"),
                "Method": method,
                "Query": "{}",
                "Headers": {"Content-Type": ["application/json"], "Host": ["rust-api.azurewebsites.net"]},
                "Params": {},
                "Body": body,
            }},
            "Metadata": {"sys": {"MethodName": function, "UtcNow": "2026-12-02T10:00:00Z"}},
        });
        // The adapter may still be starting.
        let resp = loop {
            match c
                .post(format!("http://127.0.0.1:{port}/{function}"))
                .json(&payload)
                .send()
            {
                Ok(r) => break r,
                Err(_) if started.elapsed() < Duration::from_secs(20) => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Err(e) => panic!("ferry-adapter: {e}"),
            }
        };
        assert_eq!(resp.status(), 200);
        let out: serde_json::Value = resp.json().unwrap();
        let rv = &out["ReturnValue"];
        let azure = (
            rv["statusCode"].as_u64().unwrap() as u16,
            serde_json::from_str::<serde_json::Value>(rv["body"].as_str().unwrap()).unwrap(),
        );
        assert_eq!(local, azure, "{method} {path}");
        assert_eq!(rv["headers"]["content-type"], "application/json");
        n += 1;
    }
    let _ = adapter.kill();
    let _ = adapter.wait();
    assert_eq!(n, 7);
}

/// The memory setting is enforced as on Lambda: a worker that goes over it is killed (during a
/// long invocation, or by its peak right after a short one), the invocation fails with
/// `Runtime.OutOfMemory`, and the next request gets a fresh worker.
#[test]
fn memory_setting_is_enforced() {
    let dir = service(
        &format!(
            "service: mem\nprovider:\n  runtime: python3.12\n  memory: 128\n  timeout: 20\n  local:\n    python: {py}\nfunctions:\n  hog:\n    handler: app.hog\n    triggers:\n      - http: GET /hog\n  spike:\n    handler: app.spike\n    triggers:\n      - http: GET /spike\n  fine:\n    handler: app.fine\n    triggers:\n      - http: GET /fine\n",
            py = test_python()
        ),
        &[(
            "app.py",
            "import time\ndef hog(event, context):\n    data = 'x' * (300 * 1024 * 1024)\n    time.sleep(15)\n    return {'statusCode': 200, 'body': str(len(data))}\ndef spike(event, context):\n    data = 'x' * (300 * 1024 * 1024)\n    return {'statusCode': 200, 'body': str(len(data))}\ndef fine(event, context):\n    return {'statusCode': 200, 'body': 'fine'}\n",
        )],
    );
    let dev = dev(dir.path(), &["--no-watch", "--concurrency", "1"]);
    let c = client();
    let started = Instant::now();
    let r = c.get(format!("{}/hog", dev.gateway)).send().unwrap();
    assert_eq!(r.status(), 502);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "killed while running, not after its 15 s: {:?}",
        started.elapsed()
    );
    assert_eq!(
        c.get(format!("{}/spike", dev.gateway))
            .send()
            .unwrap()
            .status(),
        502
    );
    for _ in 0..2 {
        let r = c.get(format!("{}/fine", dev.gateway)).send().unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().unwrap(), "fine");
    }
    // Through Lambda Invoke the failure is Lambda's: a function error of type Runtime.OutOfMemory.
    let r = c
        .post(format!(
            "{}/2015-03-31/functions/mem-dev-spike/invocations",
            dev.aws
        ))
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(r.headers()["x-amz-function-error"], "Unhandled");
    let body: serde_json::Value = r.json().unwrap();
    assert_eq!(body["errorType"], "Runtime.OutOfMemory", "{body}");
}

/// Workers do not inherit `NODE_EXTRA_CA_CERTS` from ferry's environment (Lambda does not set
/// it, and node parses the bundle at every start); a function that needs it sets it in its
/// `environment`.
#[test]
fn node_extra_ca_certs_comes_only_from_the_manifest() {
    let dir = service(
        "service: certs\nprovider:\n  runtime: nodejs22\nfunctions:\n  plain:\n    handler: app.show\n    triggers:\n      - http: GET /plain\n  own:\n    handler: app.show\n    environment:\n      NODE_EXTRA_CA_CERTS: /etc/ssl/certs/ca-certificates.crt\n    triggers:\n      - http: GET /own\n",
        &[(
            "app.js",
            "exports.show = async () => ({ statusCode: 200, body: process.env.NODE_EXTRA_CA_CERTS || 'unset' });\n",
        )],
    );
    let dev = dev_with_env(
        dir.path(),
        &["--no-watch"],
        &[("NODE_EXTRA_CA_CERTS", "/from/the/shell.pem")],
    );
    let c = client();
    let get = |p: &str| {
        c.get(format!("{}{p}", dev.gateway))
            .send()
            .unwrap()
            .text()
            .unwrap()
    };
    assert_eq!(get("/plain"), "unset");
    assert_eq!(get("/own"), "/etc/ssl/certs/ca-certificates.crt");
}

/// ferry's own shims reach their Runtime API on a Unix socket in the temporary folder, one per
/// worker; a worker that dies takes its socket file with it, and its replacement gets a new one.
#[test]
fn shim_workers_get_a_unix_socket_that_goes_with_them() {
    let dir = service(
        "service: sockets\nprovider:\n  runtime: nodejs22\nfunctions:\n  api:\n    handler: app.handler\n    triggers:\n      - http: GET /api\n",
        &[(
            "app.js",
            "exports.handler = async (event) => {\n  if (event.rawQueryString === 'die') process.exit(3);\n  return { statusCode: 200, body: `${process.pid} ${process.env._FERRY_RUNTIME_API_SOCKET ?? 'hidden'} ${process.env.AWS_LAMBDA_RUNTIME_API}` };\n};\n",
        )],
    );
    let tmp = tempfile::tempdir().unwrap();
    let dev = dev_with_env(
        dir.path(),
        &["--no-watch"],
        &[("TMPDIR", tmp.path().to_str().unwrap())],
    );
    let sockets = || {
        let mut names: Vec<String> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("ferry-") && n.ends_with(".sock"))
            .collect();
        names.sort();
        names
    };
    let c = client();
    let get = |q: &str| c.get(format!("{}/api?{q}", dev.gateway)).send().unwrap();
    let first = get("").text().unwrap();
    let parts: Vec<&str> = first.split(' ').collect();
    assert_eq!(
        parts[1], "hidden",
        "the function does not see the socket: {first}"
    );
    assert!(
        parts[2].starts_with("127.0.0.1:") && parts[2][10..].parse::<u16>().is_ok(),
        "AWS_LAMBDA_RUNTIME_API stays a bare host:port: {first}"
    );
    let before = sockets();
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(get("die").status(), 502);
    let second = get("").text().unwrap();
    assert_ne!(
        first.split(' ').next(),
        second.split(' ').next(),
        "a new worker"
    );
    let after = sockets();
    assert_eq!(
        after.len(),
        1,
        "the dead worker's socket is gone: {after:?}"
    );
    assert_ne!(before, after);
}

/// Messages for the queue-worker example's `worker`: two it takes, three it reports failed.
const WORKER_MESSAGES: [&str; 5] = [
    r#"{"task":"sum","payload":{"numbers":[1,2,3]}}"#,
    r#"{"task":"process-upload","payload":{"bucket":"uploads","key":"incoming/a b.csv","size":2048}}"#,
    r#"{"task":"sum","payload":{"numbers":["x"]}}"#,
    r#"{"task":"nope"}"#,
    "not json",
];

/// Each body as one SQS message to the queue-worker example's `worker` under ferry dev
/// (through Lambda `Invoke`): whether the handler took it (no `batchItemFailures`).
fn worker_outcomes(d: &Dev, bodies: &[&str]) -> Vec<bool> {
    let c = client();
    bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            let event = serde_json::json!({"Records": [{
                "messageId": format!("m{i}"), "receiptHandle": format!("r{i}"), "body": body,
                "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
                "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:jobs",
            }]});
            let r = c
                .post(format!(
                    "{}/2015-03-31/functions/queue-worker-dev-worker/invocations",
                    d.aws
                ))
                .body(event.to_string())
                .send()
                .unwrap();
            assert_eq!(r.status(), 200);
            let result: serde_json::Value = r.json().unwrap();
            result["batchItemFailures"].as_array().unwrap().is_empty()
        })
        .collect()
}

/// `ferry package --provider gcp` of an example into a temp folder (the sources are under
/// `gcp/<function>/`).
fn gcp_sources(dir: &Path) -> tempfile::TempDir {
    package_for("gcp", dir)
}

/// Google's own Functions Framework (npm `@google-cloud/functions-framework` for node, PyPI
/// `functions-framework` for python, as Cloud Functions runs them) serving one function's
/// source on a free port; for `run`, the source's `ferry-adapter` as Cloud Run starts it.
struct Framework {
    _child: Process,
    url: String,
}

fn framework(runtime: &str, source: &Path, function: &str) -> Framework {
    framework_with_env(runtime, source, function, &[])
}

fn framework_with_env(
    runtime: &str,
    source: &Path,
    function: &str,
    env: &[(&str, &Path)],
) -> Framework {
    let port = free_port();
    let framework_args = ["--target=ferry".to_owned(), format!("--port={port}")];
    let mut cmd = match runtime {
        "node" => {
            let ff = std::env::var("FERRY_GCP_FF_NODE")
                .expect("FERRY_GCP_FF_NODE is set by scripts/test.sh; run the tests through it");
            let mut c = Command::new("node");
            c.arg(ff).arg(format!("--source={}", source.display()));
            c.args(&framework_args);
            c
        }
        "python" => {
            let mut c = Command::new(test_python());
            c.args(["-m", "functions_framework"])
                .arg(format!("--source={}", source.join("main.py").display()));
            c.args(&framework_args);
            c
        }
        // A Cloud Run service: the container runs `ferry-adapter` with `PORT` set.
        _ => {
            let mut c = Command::new(source.join("ferry-adapter"));
            c.env("PORT", port.to_string());
            c
        }
    };
    let mut child = Process(
        cmd.current_dir(source)
            .env("FERRY_FUNCTION", function)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the Functions Framework starts"),
    );
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        // Exited (the port taken meanwhile, a broken source): say so rather than time out.
        if let Some(status) = child.0.try_wait().unwrap() {
            panic!("the {runtime} Functions Framework for {function} exited with {status}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the Functions Framework did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Framework {
        _child: child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

/// Sends each case to `ferry dev` and to the function's Cloud Functions source under Google's
/// Functions Framework; the answers must be equal.
fn same_gcp_http_answers(dir: &Path, runtime: &str, cases: &[HttpCase], mask: &[&str]) -> usize {
    let out = gcp_sources(dir);
    let d = dev(dir, &["--no-watch"]);
    let c = client();
    let mut frameworks = std::collections::BTreeMap::new();
    let send = |base: &str, case: &HttpCase| send_case(&c, base, case, mask);
    for (i, case) in cases.iter().enumerate() {
        let f = frameworks.entry(case.function).or_insert_with(|| {
            framework(
                runtime,
                &out.path().join("gcp").join(case.function),
                case.function,
            )
        });
        let (local, google) = (send(&d.gateway, case), send(&f.url, case));
        assert_eq!(
            local, google,
            "case {i} ({} {}): ferry dev answered {local}, the Cloud Functions adapter {google}",
            case.method, case.target
        );
    }
    cases.len()
}

/// The node example's functions as Cloud Functions: the same answers as under ferry dev.
/// (An invalid JSON body with `content-type: application/json` is left out: the node
/// Functions Framework answers 400 itself before any function runs.)
#[test]
fn gcp_node_adapter_answers_like_ferry_dev() {
    let json = &[("content-type", "application/json")];
    let case = |function, method, target, headers, body| HttpCase {
        function,
        method,
        target,
        headers,
        body,
        params: &[],
    };
    let cases = [
        case("hello", "GET", "/hello?name=Ada", &[], b""),
        case("hello", "GET", "/hello", &[], b""),
        case("hello", "GET", "/hello?name=A%26B&x=1", &[], b""),
        case("hello", "GET", "/nowhere", &[], b""),
        case("greet", "GET", "/greet/Grace%20Hopper", &[], b""),
        case(
            "echo",
            "POST",
            "/echo",
            json,
            br#"{"a":[1,2],"s":"\u00e9"}"#,
        ),
        case(
            "echo",
            "POST",
            "/echo",
            &[("content-type", "application/octet-stream")],
            br#"{"bin":true}"#,
        ),
        case(
            "echo",
            "POST",
            "/echo",
            &[("content-type", "text/plain")],
            b"not json",
        ),
        case("echo", "POST", "/echo", json, b""),
    ];
    let n = same_gcp_http_answers(
        &root().join("examples/hello-http"),
        "node",
        &cases,
        &["/requestId"],
    );
    assert_eq!(n, 9);
}

/// The python example's http function as a Cloud Function; its queue worker and topic
/// listener get Pub/Sub push deliveries and succeed or fail (204 or 500, so that Pub/Sub
/// retries and then dead-letters) exactly where ferry dev's invocations succeed or report
/// `batchItemFailures`.
#[test]
fn gcp_python_adapter_answers_like_ferry_dev() {
    use base64::Engine;
    let dir = root().join("examples/queue-worker");
    let json = &[("content-type", "application/json")];
    let case = |body: &'static [u8]| HttpCase {
        function: "enqueue",
        method: "POST",
        target: "/jobs",
        headers: json,
        body,
        params: &[],
    };
    let cases = [
        case(br#"{"task":"sum","payload":{"numbers":[1,2]}}"#),
        case(br#"{"task":"dance"}"#),
        case(b"[1]"),
        case(b"{oops"),
        case(br#"{"task":"sum","payload":3}"#),
    ];
    let n = same_gcp_http_answers(&dir, "python", &cases, &["/id", "/queued"]);
    assert_eq!(n, 5);

    let out = gcp_sources(&dir);
    let d = dev_with_env(
        &dir,
        &["--no-watch"],
        &[("FERRY_SECRET_API_TOKEN", "t0ken")],
    );
    let c = client();
    let bodies = WORKER_MESSAGES;
    let local = worker_outcomes(&d, &bodies);
    assert_eq!(local, vec![true, true, false, false, false]);
    let worker = framework("python", &out.path().join("gcp/worker"), "worker");
    let audit = framework("python", &out.path().join("gcp/audit"), "audit");
    let push = |f: &Framework, function: &str, trigger: &str, body: &str, i: usize| {
        let envelope = serde_json::json!({
            "message": {
                "data": base64::engine::general_purpose::STANDARD.encode(body),
                "attributes": {},
                "messageId": format!("{i}"),
                "publishTime": "2026-12-02T10:00:00.000Z",
            },
            "subscription": format!("projects/ferry-test/subscriptions/queue-worker-dev-{function}-{trigger}"),
            "deliveryAttempt": 1,
        });
        let r = c
            .post(format!("{}/_ferry/events/{trigger}", f.url))
            .json(&envelope)
            .send()
            .unwrap();
        r.status().as_u16()
    };
    let google: Vec<bool> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| match push(&worker, "worker", "queue0", b, i) {
            204 => true,
            500 => false,
            other => panic!("the adapter answered {other}"),
        })
        .collect();
    assert_eq!(local, google);
    // A topic message reaches the topic listener as SNS, and it succeeds.
    assert_eq!(
        push(
            &audit,
            "audit",
            "topic0",
            r#"{"id":"j1","status":"done"}"#,
            9
        ),
        204
    );
}

/// The Rust example (a `lambda_runtime` binary) as a Cloud Run service: `ferry-adapter`, started
/// as Cloud Run starts the container (`PORT`), answers what ferry dev answers, CORS preflight
/// and unrouted paths included.
#[test]
fn gcp_cloud_run_adapter_runs_the_rust_binary_like_ferry_dev() {
    let json = &[("content-type", "application/json")];
    let case = |method, target, headers, body| HttpCase {
        function: "api",
        method,
        target,
        headers,
        body,
        params: &[],
    };
    let preflight = &[
        ("origin", "https://example.com"),
        ("access-control-request-method", "POST"),
        ("access-control-request-headers", "content-type"),
    ];
    let cases = [
        case("GET", "/items", json, b""),
        case("GET", "/items/1", json, b""),
        case("GET", "/items/99", json, b""),
        case("POST", "/items", json, br#"{"name":"cup","price":3}"#),
        case("POST", "/items", json, br#"{"name":" "}"#),
        case("POST", "/items", json, b"nope"),
        case("GET", "/items/3", json, b""),
        case("GET", "/nowhere", json, b""),
        case("OPTIONS", "/items", preflight, b""),
        case("DELETE", "/items/1", json, b""),
    ];
    let n = same_gcp_http_answers(&root().join("examples/rust-api"), "run", &cases, &[]);
    assert_eq!(n, 10);
}

/// Event deliveries to a Cloud Run service (a `provided` function whose bootstrap runs AWS's
/// own `awslambdaric`) become the events the python Cloud Functions adapter builds for the same
/// handler: the same Pub/Sub push gives the same SQS and SNS events, the same Eventarc
/// CloudEvent the same S3 event (or none, when the trigger's prefix does not take the object),
/// the same Scheduler call the same Scheduled Event; both answer 204 or 500 alike.
#[test]
fn gcp_cloud_run_adapter_builds_the_events_the_python_adapter_builds() {
    use base64::Engine;
    let py = test_python();
    let triggers = "    triggers:\n      - queue: jobs\n      - topic: news\n      - storage: { bucket: files, events: [created, removed], prefix: in/ }\n      - schedule: rate(5 minutes)\n";
    let dir = service(
        &format!(
            "service: ev\nprovider:\n  region: europe-west1\nservices:\n  jobs: {{ type: queue }}\n  news: {{ type: topic }}\n  files: {{ type: bucket }}\nfunctions:\n  bin:\n    runtime: provided\n    handler: bootstrap\n{triggers}  py:\n    runtime: python3.12\n    handler: handler.handle\n{triggers}"
        ),
        &[
            (
                "handler.py",
                "import json, os\ndef handle(event, context):\n    with open(os.environ['EVENTS_OUT'], 'a') as f:\n        f.write(json.dumps(event, sort_keys=True) + '\\n')\n    records = event.get('Records', [])\n    if any(r.get('Sns', {}).get('Message') == 'fail' for r in records):\n        raise ValueError('fail')\n    return {'batchItemFailures': [{'itemIdentifier': r['messageId']} for r in records if r.get('body') == 'fail']}\n",
            ),
            (
                "bootstrap",
                &format!("#!/bin/sh\nexec {py} -m awslambdaric handler.handle\n"),
            ),
        ],
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let b = dir.path().join("bootstrap");
        std::fs::set_permissions(&b, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = gcp_sources(dir.path());
    let logs = tempfile::tempdir().unwrap();
    let start = |runtime: &str, function: &str| {
        let log = logs.path().join(format!("{function}.jsonl"));
        let source = out.path().join("gcp").join(function);
        let f = framework_with_env(runtime, &source, function, &[("EVENTS_OUT", &log)]);
        (f, log)
    };
    let (run, run_log) = start("run", "bin");
    let (cf, cf_log) = start("python", "py");
    let c = client();
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let push = |data: &str, attempt: u64| {
        serde_json::json!({
            "message": {"data": b64(data), "attributes": {"kind": "test"}, "messageId": "1234", "publishTime": "2026-12-02T10:00:00.123Z"},
            "subscription": "projects/p/subscriptions/s",
            "deliveryAttempt": attempt,
        })
        .to_string()
    };
    let object = |name: &str| {
        serde_json::json!({"bucket": "b", "name": name, "size": "2048", "md5Hash": "1B2M2Y8AsgTpgAmY7PhCfg==", "generation": "1700000000000001"}).to_string()
    };
    // (trigger, headers, body, expected status)
    type Delivery<'a> = (&'a str, Vec<(&'a str, &'a str)>, String, u16);
    let cases: Vec<Delivery> = vec![
        (
            "queue0",
            vec![("content-type", "application/json")],
            push(r#"{"task":"x"}"#, 2),
            204,
        ),
        (
            "queue0",
            vec![("content-type", "application/json")],
            push("fail", 5),
            500,
        ),
        (
            "topic0",
            vec![("content-type", "application/json")],
            push("news!", 1),
            204,
        ),
        (
            "topic0",
            vec![("content-type", "application/json")],
            push("fail", 1),
            500,
        ),
        (
            "storage0",
            vec![
                ("content-type", "application/json"),
                ("ce-type", "google.cloud.storage.object.v1.finalized"),
                ("ce-id", "ev-1"),
                ("ce-time", "2026-12-02T10:00:00.5Z"),
                ("ce-subject", "objects/in/a b(1).csv"),
                ("ce-specversion", "1.0"),
                ("ce-source", "//storage.googleapis.com/projects/_/buckets/b"),
            ],
            object("in/a b(1).csv"),
            204,
        ),
        (
            "storage0",
            vec![
                ("content-type", "application/json"),
                ("ce-type", "google.cloud.storage.object.v1.finalized"),
                ("ce-id", "ev-2"),
                ("ce-time", "2026-12-02T10:00:01Z"),
                ("ce-subject", "objects/out/skipped.csv"),
                ("ce-specversion", "1.0"),
                ("ce-source", "//storage.googleapis.com/projects/_/buckets/b"),
            ],
            object("out/skipped.csv"),
            204,
        ),
        (
            "schedule0",
            vec![
                ("x-cloudscheduler-scheduletime", "2026-12-02T10:05:00Z"),
                ("x-cloud-trace-context", "sched-trace/1;o=1"),
            ],
            String::new(),
            204,
        ),
        ("nope9", vec![], String::new(), 404),
    ];
    let send =
        |base: &str, (trigger, headers, body, _): &(&str, Vec<(&str, &str)>, String, u16)| {
            let mut r = c.post(format!("{base}/_ferry/events/{trigger}"));
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            r.body(body.clone()).send().unwrap().status().as_u16()
        };
    for case in &cases {
        let (a, b) = (send(&run.url, case), send(&cf.url, case));
        assert_eq!((a, b), (case.3, case.3), "{} {}", case.0, case.2);
    }
    let read = |p: &Path| -> Vec<serde_json::Value> {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                // Set when the event is built, or named after the function.
                for p in [
                    "/Records/0/attributes/ApproximateFirstReceiveTimestamp",
                    "/Records/0/eventSourceARN",
                    "/Records/0/Sns/TopicArn",
                    "/Records/0/s3/bucket/arn",
                    "/resources/0",
                ] {
                    if let Some(x) = v.pointer_mut(p) {
                        *x = serde_json::json!("-");
                    }
                }
                v
            })
            .collect()
    };
    let (run_events, cf_events) = (read(&run_log), read(&cf_log));
    // queue ×2, topic ×2, one storage object (the other is filtered), the schedule.
    assert_eq!(run_events.len(), 6, "{run_events:#?}");
    for (i, (a, b)) in run_events.iter().zip(&cf_events).enumerate() {
        assert_eq!(a, b, "event {i}: Cloud Run adapter vs python adapter");
    }
    assert_eq!(run_events.len(), cf_events.len());
    let s3 = &run_events[4]["Records"][0]["s3"]["object"];
    assert_eq!(s3["key"], "in/a+b%281%29.csv");
    assert_eq!(s3["eTag"], "d41d8cd98f00b204e9800998ecf8427e");
    assert_eq!(
        run_events[0]["Records"][0]["attributes"]["ApproximateReceiveCount"],
        "2"
    );
    assert_eq!(run_events[5]["detail-type"], "Scheduled Event");
    assert_eq!(run_events[5]["time"], "2026-12-02T10:05:00Z");
}

/// One worker per function (`--concurrency 1`) and many requests at once: every request waits
/// in line and is answered, by the one warm process, each with its own event. A request that
/// times out costs its worker, and the requests queued behind it go to the new one.
#[test]
fn a_full_pool_queues_requests_and_hands_its_worker_on() {
    let svc = service(
        &format!(
            "service: queued\nprovider:\n  runtime: python3.12\n  timeout: 1\n  local:\n    python: {py}\nfunctions:\n  py:\n    handler: app.echo\n    triggers:\n      - http: GET /py\n  slow:\n    handler: app.slow\n    triggers:\n      - http: GET /slow\n  node:\n    handler: index.echo\n    runtime: nodejs22\n    triggers:\n      - http: GET /node\n",
            py = test_python()
        ),
        &[
            (
                "app.py",
                "import os, time\ndef echo(event, context):\n    return {'statusCode': 200, 'body': f\"{os.getpid()} {event['queryStringParameters']['n']}\"}\ndef slow(event, context):\n    if event['queryStringParameters']['n'] == 'sleep':\n        open('sleeping', 'w').close()\n        time.sleep(5)\n    return {'statusCode': 200, 'body': f\"{os.getpid()} {event['queryStringParameters']['n']}\"}\n",
            ),
            (
                "index.js",
                "exports.echo = async (event) => ({ statusCode: 200, body: `${process.pid} ${event.queryStringParameters.n}` });\n",
            ),
        ],
    );
    let d = dev(svc.path(), &["--no-watch", "--concurrency", "1"]);
    // Each answer: (status, pid, the n it echoed).
    let get = |path: &str, n: &str| {
        let r = client()
            .get(format!("{}{path}?n={n}", d.gateway))
            .send()
            .unwrap();
        let status = r.status().as_u16();
        let body = r.text().unwrap();
        let (pid, echoed) = body.split_once(' ').unwrap_or(("", ""));
        (status, pid.to_owned(), echoed.to_owned())
    };
    for path in ["/py", "/node"] {
        let answers: Vec<_> = std::thread::scope(|s| {
            let calls: Vec<_> = (0..16)
                .map(|i| s.spawn(move || (i, get(path, &i.to_string()))))
                .collect();
            calls.into_iter().map(|c| c.join().unwrap()).collect()
        });
        let pids: std::collections::BTreeSet<&str> =
            answers.iter().map(|(_, (_, p, _))| p.as_str()).collect();
        for (i, (status, _, echoed)) in &answers {
            assert_eq!(
                (*status, echoed.as_str()),
                (200, i.to_string().as_str()),
                "{path}"
            );
        }
        assert_eq!(
            pids.len(),
            1,
            "{path}: one warm worker served them all: {answers:?}"
        );
    }
    // A timeout while others wait: 504 for it, 200 from a new worker for the rest.
    let (_, first, _) = get("/slow", "warm");
    let answers: Vec<_> = std::thread::scope(|s| {
        let slow = s.spawn(|| get("/slow", "sleep"));
        // The others are sent once it runs, so that they queue behind it.
        let sleeping = svc.path().join("sleeping");
        let since = Instant::now();
        while !sleeping.exists() {
            assert!(
                since.elapsed() < Duration::from_secs(20),
                "the slow invocation never started"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let rest: Vec<_> = (0..3)
            .map(|i| s.spawn(move || get("/slow", &i.to_string())))
            .collect();
        std::iter::once(slow)
            .chain(rest)
            .map(|c| c.join().unwrap())
            .collect()
    });
    assert_eq!(answers[0].0, 504, "{answers:?}");
    for (i, (status, pid, echoed)) in answers[1..].iter().enumerate() {
        assert_eq!(
            (*status, echoed.as_str()),
            (200, i.to_string().as_str()),
            "{answers:?}"
        );
        assert_ne!(
            pid, &first,
            "the timed-out worker was replaced: {answers:?}"
        );
    }
}
