//! The AWS provider against a real `moto_server` (PyPI `moto[server]`, from the venv that
//! scripts/test.sh makes; its interpreter is passed in `FERRY_TEST_PYTHON`), started here on a
//! free loopback port with Lambda's `use_docker=false`. What was deployed is checked through
//! boto3 (tests/aws/look.py), not through ferry; mutating calls are counted from moto's own
//! request recorder.

mod common;

use common::{copy_example as example, free_port, root, Process};
use serde_json::Value;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn python() -> String {
    std::env::var("FERRY_TEST_PYTHON").expect("FERRY_TEST_PYTHON is set by scripts/test.sh (a venv with moto[server] and boto3); run the tests through it")
}

/// A moto_server of our own.
struct Moto {
    _child: Process,
    url: String,
    _dir: tempfile::TempDir,
}

impl Moto {
    fn start() -> Moto {
        let port = free_port();
        // The recorder writes to a file, by default in the working directory: one per server.
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new(python())
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .current_dir(dir.path())
            .env("MOTO_ENABLE_RECORDING", "True")
            .env("MOTO_RECORDER_FILEPATH", dir.path().join("recording"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting moto_server");
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::blocking::Client::new();
        let started = Instant::now();
        loop {
            if let Ok(r) = http.get(format!("{url}/moto-api/config")).send() {
                if r.status().is_success() {
                    break;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "moto_server did not start on {url}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let r = http
            .post(format!("{url}/moto-api/config"))
            .json(&serde_json::json!({"lambda": {"use_docker": false}}))
            .send()
            .unwrap();
        assert!(r.status().is_success());
        Moto {
            _child: Process(child),
            url,
            _dir: dir,
        }
    }

    fn recorder(&self, action: &str) {
        let r = reqwest::blocking::Client::new()
            .post(format!("{}/moto-api/recorder/{action}", self.url))
            .send()
            .unwrap();
        assert!(r.status().is_success(), "recorder {action}");
    }

    /// The mutating AWS calls made while `f` ran.
    fn mutations_during(&self, f: impl FnOnce()) -> Vec<String> {
        self.recorder("reset-recording");
        self.recorder("start-recording");
        f();
        self.recorder("stop-recording");
        serde_json::from_value(self.look(&["mutations"])).unwrap()
    }

    fn look(&self, args: &[&str]) -> Value {
        let out = Command::new(python())
            .arg(root().join("tests/aws/look.py"))
            .arg(&self.url)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "look.py {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if out.stdout.is_empty() {
            return Value::Null;
        }
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn ferry_cmd(&self, dir: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ferry"));
        c.current_dir(dir)
            .args(args)
            .env("AWS_ENDPOINT_URL", &self.url)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env_remove("AWS_PROFILE")
            .env("NO_COLOR", "1");
        c
    }

    fn ferry(&self, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = self.ferry_cmd(dir, args);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    }
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn section_len(v: &Value, section: &str) -> usize {
    v[section]
        .as_object()
        .map(|o| o.len())
        .or_else(|| v[section].as_array().map(Vec::len))
        .unwrap_or(0)
}

const SECRET: &str = "s3cr3t-token-value-42";

#[test]
fn queue_worker_deploys_as_declared_redeploys_without_calls_and_removes_everything() {
    let moto = Moto::start();
    let dir = example("queue-worker");
    let d = dir.path();
    let env = [("FERRY_SECRET_API_TOKEN", SECRET)];
    let first = moto.ferry(d, &["deploy", "--provider", "aws"], &env);
    let shown = ok(&first) + &String::from_utf8_lossy(&first.stderr);
    assert!(
        shown.contains("secret.api-token") && !shown.contains(SECRET),
        "{shown}"
    );

    let live = moto.look(&["deployed", "queue-worker"]);
    let f = &live["functions"];
    assert_eq!(section_len(&live, "functions"), 5, "{live:#}");
    for (name, memory, timeout, handler) in [
        ("enqueue", 256, 10, "worker.enqueue"),
        ("ingest", 256, 10, "worker.ingest"),
        ("worker", 256, 50, "worker.process_jobs"),
        ("nightly", 256, 10, "worker.nightly"),
        ("audit", 128, 10, "worker.audit"),
    ] {
        let x = &f[format!("queue-worker-dev-{name}")];
        assert_eq!(x["memory"], memory, "{name}");
        assert_eq!(x["timeout"], timeout, "{name}");
        assert_eq!(x["handler"], handler, "{name}");
        assert_eq!(x["runtime"], "python3.12", "{name}");
        assert_eq!(x["environment"]["LOG_LEVEL"], "INFO", "{name}");
        assert_eq!(x["tags"]["ferry:stage"], "dev");
        // Each function has its own role.
        let role = x["role"].as_str().unwrap();
        assert!(
            role.ends_with(&format!("role/queue-worker-dev-{name}-role")),
            "{role}"
        );
    }
    let jobs_url = live["queues"]["queue-worker-dev-jobs"]["arn"]
        .as_str()
        .unwrap();
    assert!(jobs_url.ends_with(":queue-worker-dev-jobs"));
    for name in ["enqueue", "ingest", "nightly"] {
        let url = f[format!("queue-worker-dev-{name}")]["environment"]["JOBS_QUEUE_URL"]
            .as_str()
            .unwrap();
        assert!(url.ends_with("/queue-worker-dev-jobs"), "{name}: {url}");
    }
    let wenv = &f["queue-worker-dev-worker"]["environment"];
    assert_eq!(wenv["RESULTS_TABLE_NAME"], "queue-worker-dev-results");
    assert!(wenv["JOB_EVENTS_TOPIC_ARN"]
        .as_str()
        .unwrap()
        .ends_with(":queue-worker-dev-job-events"));
    assert!(wenv["API_TOKEN_SECRET_ARN"]
        .as_str()
        .unwrap()
        .contains(":secret:queue-worker/dev/api-token"));
    // Invoke permissions: one per trigger source.
    assert_eq!(
        f["queue-worker-dev-enqueue"]["permissions"],
        serde_json::json!(["apigateway.amazonaws.com"])
    );
    assert_eq!(
        f["queue-worker-dev-ingest"]["permissions"],
        serde_json::json!(["s3.amazonaws.com"])
    );
    assert_eq!(
        f["queue-worker-dev-nightly"]["permissions"],
        serde_json::json!(["events.amazonaws.com", "events.amazonaws.com"])
    );
    assert_eq!(
        f["queue-worker-dev-audit"]["permissions"],
        serde_json::json!(["sns.amazonaws.com"])
    );

    // Least privilege: the worker may read its queue and write its table, the enqueuer may
    // only send.
    let policy = |n: &str| {
        live["roles"][format!("queue-worker-dev-{n}-role")]["policies"]["ferry"].to_string()
    };
    let worker = policy("worker");
    for action in [
        "sqs:ReceiveMessage",
        "dynamodb:PutItem",
        "sns:Publish",
        "secretsmanager:GetSecretValue",
    ] {
        assert!(
            worker.contains(action),
            "worker policy lacks {action}: {worker}"
        );
    }
    let enqueue = policy("enqueue");
    assert!(
        enqueue.contains("sqs:SendMessage")
            && !enqueue.contains("sqs:ReceiveMessage")
            && !enqueue.contains("dynamodb"),
        "{enqueue}"
    );

    let api = &live["apis"]["queue-worker-dev"];
    assert_eq!(
        api["routes"]["POST /jobs"],
        "arn:aws:lambda:us-east-1:123456789012:function:queue-worker-dev-enqueue"
    );
    assert_eq!(api["payloads"], serde_json::json!(["2.0"]));
    assert_eq!(api["stages"]["$default"], true);

    let q = &live["queues"]["queue-worker-dev-jobs"];
    assert_eq!(q["visibilityTimeout"], 60);
    assert_eq!(q["redrive"]["maxReceiveCount"], 3);
    assert!(q["redrive"]["deadLetterTargetArn"]
        .as_str()
        .unwrap()
        .ends_with(":queue-worker-dev-jobs-dlq"));
    assert!(live["queues"]["queue-worker-dev-jobs-dlq"].is_object());
    assert_eq!(
        live["mappings"],
        serde_json::json!([{"function": "queue-worker-dev-worker", "source": "queue-worker-dev-jobs", "batchSize": 5, "responseTypes": ["ReportBatchItemFailures"]}])
    );

    let rules = live["rules"].as_object().unwrap();
    let mut schedules: Vec<&str> = rules
        .values()
        .map(|r| r["schedule"].as_str().unwrap())
        .collect();
    schedules.sort();
    assert_eq!(schedules, ["cron(0 3 * * ? *)", "rate(1 hour)"]);
    assert!(rules.values().all(|r| r["targets"]
        == serde_json::json!(["queue-worker-dev-nightly"])
        && r["state"] == "ENABLED"));

    assert_eq!(
        live["buckets"]["queue-worker-dev-uploads"]["notifications"],
        serde_json::json!([{"function": "queue-worker-dev-ingest", "events": ["s3:ObjectCreated:*"], "filter": [{"Name": "prefix", "Value": "incoming/"}]}])
    );
    assert_eq!(
        live["tables"]["queue-worker-dev-results"]["keys"],
        serde_json::json!({"HASH": "id", "RANGE": "ts"})
    );
    assert_eq!(
        live["tables"]["queue-worker-dev-results"]["billing"],
        "PAY_PER_REQUEST"
    );
    assert_eq!(
        live["topics"]["queue-worker-dev-job-events"]["subscriptions"],
        serde_json::json!([{"protocol": "lambda", "endpoint": "queue-worker-dev-audit"}])
    );
    let secret = &live["secrets"]["queue-worker/dev/api-token"];
    assert_eq!(secret["value"], SECRET);
    assert_eq!(
        secret["description"],
        "Key that signs job results (HMAC-SHA256)"
    );

    // The secret's value is in AWS, and nowhere in ferry's state.
    let state = std::fs::read_to_string(d.join(".ferry/state/queue-worker-dev-aws.json")).unwrap();
    assert!(!state.contains(SECRET));

    // Nothing changed: zero mutating calls.
    let calls = moto.mutations_during(|| {
        let out = ok(&moto.ferry(d, &["deploy", "--provider", "aws"], &env));
        assert!(out.contains("0 to add, 0 to change, 0 to destroy"), "{out}");
    });
    assert_eq!(
        calls,
        Vec::<String>::new(),
        "a no-op deploy made mutating calls"
    );

    // ferry info, from the state.
    let info: Value = serde_json::from_str(&ok(&moto.ferry(
        d,
        &["info", "--provider", "aws", "--format", "json"],
        &[],
    )))
    .unwrap();
    assert!(info["queues"]["jobs"]
        .as_str()
        .unwrap()
        .ends_with("/queue-worker-dev-jobs"));
    assert!(info["endpoint"].as_str().unwrap().contains("execute-api"));
    assert_eq!(
        info["functions"]["worker"]["name"],
        "queue-worker-dev-worker"
    );

    // Invoke the deployed function (moto without Docker echoes the event).
    let out = ok(&moto.ferry(
        d,
        &[
            "invoke",
            "audit",
            "--provider",
            "aws",
            "--data",
            r#"{"probe":1}"#,
        ],
        &[],
    ));
    assert!(out.contains("probe"), "{out}");

    // A bucket with objects is refused before anything is deleted...
    moto.look(&["put-object", "queue-worker-dev-uploads", "incoming/a.json"]);
    let out = moto.ferry(d, &["remove", "--provider", "aws"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nothing was deleted") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(
        section_len(&moto.look(&["deployed", "queue-worker"]), "functions"),
        5
    );

    // ...and removed with --force, leaving nothing tagged with the service.
    ok(&moto.ferry(d, &["remove", "--provider", "aws", "--force"], &[]));
    let after = moto.look(&["deployed", "queue-worker"]);
    for section in [
        "functions",
        "roles",
        "apis",
        "queues",
        "mappings",
        "rules",
        "buckets",
        "tables",
        "topics",
        "secrets",
    ] {
        assert_eq!(
            section_len(&after, section),
            0,
            "{section} left behind: {after:#}"
        );
    }
}

/// Two functions with a package each, so that a code change touches one of them.
fn two_function_service(dir: &Path) {
    std::fs::write(
        dir.join("serverless.yaml"),
        "service: two\nprovider:\n  runtime: nodejs22\nfunctions:\n  a:\n    handler: a.handler\n    package: { include: [a.js] }\n    triggers: [{ http: GET /a }]\n  b:\n    handler: b.handler\n    package: { include: [b.js] }\n    triggers: [{ http: GET /b }]\n",
    )
    .unwrap();
    for n in ["a", "b"] {
        std::fs::write(
            dir.join(format!("{n}.js")),
            format!("exports.handler = async () => ({{ statusCode: 200, body: '{n}' }});\n"),
        )
        .unwrap();
    }
}

#[test]
fn code_change_updates_one_function_and_drift_shows_in_the_plan() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    two_function_service(d);
    ok(&moto.ferry(d, &["deploy", "--provider", "aws"], &[]));
    let before = moto.look(&["deployed", "two"]);
    assert_eq!(section_len(&before, "functions"), 2);

    std::fs::write(d.join("a.js"), "exports.handler = async () => 'changed';\n").unwrap();
    let calls = moto.mutations_during(|| {
        ok(&moto.ferry(d, &["deploy", "--provider", "aws"], &[]));
    });
    assert!(!calls.is_empty());
    assert!(
        calls.iter().all(|c| c.contains("/functions/two-dev-a/")),
        "{calls:?}"
    );
    assert!(calls.iter().any(|c| c.ends_with("/code")), "{calls:?}");
    let after = moto.look(&["deployed", "two"]);
    assert_ne!(
        after["functions"]["two-dev-a"]["codeSha256"],
        before["functions"]["two-dev-a"]["codeSha256"]
    );
    assert_eq!(
        after["functions"]["two-dev-b"]["codeSha256"],
        before["functions"]["two-dev-b"]["codeSha256"]
    );

    // A change behind ferry's back is drift: the plan shows it and exits 2.
    moto.look(&["set-memory", "two-dev-b", "512"]);
    let out = moto.ferry(
        d,
        &["plan", "--provider", "aws", "--detailed-exitcode"],
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("function.b") && text.contains("drift") && text.contains("memory"),
        "{text}"
    );
    let declared = before["functions"]["two-dev-b"]["memory"].as_u64().unwrap();
    assert!(
        text.contains(&format!("memory: {declared} → 512")),
        "{text}"
    );
    assert!(
        text.contains(&format!("memory: 512 → {declared}")),
        "{text}"
    );
    ok(&moto.ferry(d, &["deploy", "--provider", "aws"], &[]));
    assert_eq!(
        moto.look(&["deployed", "two"])["functions"]["two-dev-b"]["memory"],
        declared
    );
    let out = moto.ferry(
        d,
        &["plan", "--provider", "aws", "--detailed-exitcode"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn hello_http_routes_cors_and_packages_through_a_deployment_bucket() {
    let moto = Moto::start();
    let dir = example("hello-http");
    let manifest = std::fs::read_to_string(dir.path().join("serverless.yaml")).unwrap();
    std::fs::write(
        dir.path().join("serverless.yaml"),
        manifest.replace(
            "provider:\n",
            "provider:\n  aws: { deploymentBucket: ferry-artifacts }\n",
        ),
    )
    .unwrap();
    moto.look(&["create-bucket", "ferry-artifacts"]);
    ok(&moto.ferry(dir.path(), &["deploy", "--provider", "aws"], &[]));

    // The three functions share one package: uploaded once, under its hash, and what Lambda
    // runs is exactly that object.
    let objects = moto.look(&["list-objects", "ferry-artifacts"]);
    let objects = objects.as_object().unwrap();
    assert_eq!(objects.len(), 1, "{objects:?}");
    let (key, sha) = objects.iter().next().unwrap();
    assert!(
        key.starts_with("ferry/packages/") && key.ends_with(".zip"),
        "{key}"
    );
    let live = moto.look(&["deployed", "hello-http"]);
    let api = &live["apis"]["hello-http-dev"];
    let routes = api["routes"].as_object().unwrap();
    let mut keys: Vec<&str> = routes.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["GET /greet/{name}", "GET /hello", "POST /echo"]);
    assert!(routes["GET /greet/{name}"]
        .as_str()
        .unwrap()
        .ends_with(":function:hello-http-dev-greet"));
    assert_eq!(api["cors"]["AllowOrigins"], serde_json::json!(["*"]));
    let f = &live["functions"]["hello-http-dev-hello"];
    assert_eq!(f["runtime"], "nodejs22.x");
    assert_eq!(f["handler"], "src/handler.hello");
    assert_eq!(f["memory"], 128);
    assert_eq!(f["timeout"], 5);
    assert_eq!(f["environment"]["GREETING"], "Hello");
    for name in ["hello", "greet", "echo"] {
        assert_eq!(
            &live["functions"][format!("hello-http-dev-{name}")]["codeSha256"],
            sha
        );
    }
}

#[test]
fn a_killed_deploy_converges_on_the_next_run_without_orphans() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut manifest = String::from("service: many\nprovider:\n  runtime: nodejs22\nservices:\n  work: { type: queue }\nfunctions:\n");
    for i in 0..12 {
        manifest.push_str(&format!(
            "  f{i}:\n    handler: h.handler\n    triggers:\n      - http: GET /f{i}\n      - schedule: rate({} minutes)\n",
            i + 2
        ));
    }
    manifest.push_str("  consumer:\n    handler: h.handler\n    triggers: [{ queue: work }]\n");
    std::fs::write(d.join("serverless.yaml"), manifest).unwrap();
    std::fs::write(d.join("h.js"), "exports.handler = async () => 1;\n").unwrap();

    let mut child = moto
        .ferry_cmd(d, &["deploy", "--provider", "aws", "--parallelism", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let state_file = d.join(".ferry/state/many-dev-aws.json");
    let started = Instant::now();
    loop {
        let serial = std::fs::read_to_string(&state_file)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|v| v["serial"].as_u64())
            .unwrap_or(0);
        if serial >= 20 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the deploy finished before it could be killed"
        );
        assert!(started.elapsed() < Duration::from_secs(120));
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    // The dead run's lock is released (its process is gone), and the next deploy finishes.
    let out = ok(&moto.ferry(d, &["state", "unlock", "--provider", "aws"], &[]));
    assert!(out.contains("released"), "{out}");
    ok(&moto.ferry(d, &["deploy", "--provider", "aws"], &[]));
    let out = moto.ferry(
        d,
        &["plan", "--provider", "aws", "--detailed-exitcode"],
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Exactly what the manifest declares, nothing twice.
    let live = moto.look(&["deployed", "many"]);
    assert_eq!(section_len(&live, "functions"), 13);
    assert_eq!(section_len(&live, "roles"), 13);
    assert_eq!(section_len(&live, "rules"), 12);
    assert_eq!(section_len(&live, "queues"), 1);
    assert_eq!(section_len(&live, "mappings"), 1);
    assert_eq!(section_len(&live, "apis"), 1, "{:#}", live["apis"]);
    assert_eq!(
        live["apis"]["many-dev"]["routes"]
            .as_object()
            .unwrap()
            .len(),
        12
    );
    for i in 0..12 {
        assert_eq!(
            live["functions"][format!("many-dev-f{i}")]["permissions"],
            serde_json::json!(["apigateway.amazonaws.com", "events.amazonaws.com"]),
            "f{i}"
        );
    }

    // With this many functions, rules and routes, the refresh lists them in bulk; drift
    // must show just the same.
    moto.look(&["set-memory", "many-dev-f3", "1024"]);
    let out = moto.ferry(
        d,
        &["plan", "--provider", "aws", "--detailed-exitcode"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("function.f3") && text.contains("memory: 256 → 1024"),
        "{text}"
    );
    assert!(text.contains("1 to change"), "{text}");
    ok(&moto.ferry(d, &["deploy", "--provider", "aws"], &[]));

    // The worst case of a kill: nothing recorded at all. Every create finds the resource a
    // previous run made and adopts it, so the deploy converges without making a second copy.
    std::fs::remove_file(&state_file).unwrap();
    ok(&moto.ferry(d, &["deploy", "--provider", "aws"], &[]));
    let again = moto.look(&["deployed", "many"]);
    for (section, v) in live.as_object().unwrap() {
        assert_eq!(
            &again[section], v,
            "a deploy without state changed the {section}"
        );
    }
    let out = moto.ferry(
        d,
        &["plan", "--provider", "aws", "--detailed-exitcode"],
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn state_in_s3_with_a_conditional_write_lock() {
    let moto = Moto::start();
    let dir = example("hello-http");
    let d = dir.path();
    let manifest = std::fs::read_to_string(d.join("serverless.yaml")).unwrap();
    let manifest = manifest.replace(
        "provider:\n",
        "provider:\n  aws:\n    state: { bucket: ferry-state, prefix: states/ }\n",
    );
    std::fs::write(d.join("serverless.yaml"), manifest).unwrap();
    moto.look(&["create-bucket", "ferry-state"]);

    ok(&moto.ferry(d, &["deploy", "--provider", "aws"], &[]));
    assert!(
        !d.join(".ferry/state").exists(),
        "the state went to a local file"
    );
    let list = ok(&moto.ferry(d, &["state", "list", "--provider", "aws"], &[]));
    assert!(list.contains("function.hello"), "{list}");

    // Someone else holds the lock: the deploy stops at once, exit 2, naming them.
    let lock = r#"{"id":"l-1","holder":"alice","operation":"deploy","pid":1,"host":"build-7","created":"2026-11-25T10:00:00Z","ferry_version":"0.1.0"}"#;
    moto.look(&[
        "put-object",
        "ferry-state",
        "states/hello-http-dev-aws.json.lock",
        lock,
    ]);
    let out = moto.ferry(d, &["deploy", "--provider", "aws"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("locked by alice@build-7"), "{err}");
    // Another host's lock is only released with --force.
    let out = moto.ferry(d, &["state", "unlock", "--provider", "aws"], &[]);
    assert_eq!(out.status.code(), Some(2));
    ok(&moto.ferry(d, &["state", "unlock", "--force", "--provider", "aws"], &[]));
    let out = ok(&moto.ferry(d, &["deploy", "--provider", "aws"], &[]));
    assert!(out.contains("0 to add, 0 to change, 0 to destroy"), "{out}");
}

#[test]
fn rust_api_deploys_on_provided_al2023() {
    let moto = Moto::start();
    // In place, as tests/package.rs packages it, so that cargo reuses its build; a stage of
    // its own keeps the state apart.
    let d = root().join("examples/rust-api");
    let state = d.join(".ferry/state/rust-api-awstest-aws.json");
    let _ = std::fs::remove_file(&state);
    ok(&moto.ferry(&d, &["deploy", "--provider", "aws", "-s", "awstest"], &[]));
    let live = moto.look(&["deployed", "rust-api"]);
    let f = &live["functions"]["rust-api-awstest-api"];
    assert_eq!(f["runtime"], "provided.al2023");
    assert_eq!(f["handler"], "bootstrap");
    assert_eq!(f["architectures"], serde_json::json!(["x86_64"]));
    assert_eq!(f["environment"]["RUST_LOG"], "info");
    let routes = live["apis"]["rust-api-awstest"]["routes"]
        .as_object()
        .unwrap();
    let mut keys: Vec<&str> = routes.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["GET /items", "GET /items/{id}", "POST /items"]);
    ok(&moto.ferry(&d, &["remove", "--provider", "aws", "-s", "awstest"], &[]));
    assert_eq!(
        section_len(&moto.look(&["deployed", "rust-api"]), "functions"),
        0
    );
    let _ = std::fs::remove_file(&state);
}

#[test]
fn settings_change_in_place() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let manifest = |visibility: u32, dead_letter: &str, team: &str| {
        format!(
            "service: upd\nprovider:\n  runtime: nodejs22\n  tags: {{ team: {team} }}\nservices:\n  jobs: {{ type: queue, visibilityTimeout: {visibility}{dead_letter} }}\nfunctions:\n  consumer:\n    handler: h.handler\n    timeout: 20\n    triggers: [{{ queue: jobs }}]\n"
        )
    };
    std::fs::write(d.join("h.js"), "exports.handler = async () => 1;\n").unwrap();
    std::fs::write(
        d.join("serverless.yaml"),
        manifest(30, ", deadLetter: { maxReceives: 3 }", "a"),
    )
    .unwrap();
    ok(&moto.ferry(d, &["deploy", "--provider", "aws"], &[]));
    let live = moto.look(&["deployed", "upd"]);
    assert_eq!(
        live["queues"]["upd-dev-jobs"]["redrive"]["maxReceiveCount"],
        3
    );
    assert_eq!(section_len(&live, "queues"), 2);

    // Longer visibility, no dead-letter queue, another tag value: updated in place, the DLQ
    // deleted, the queue's redrive policy removed.
    std::fs::write(d.join("serverless.yaml"), manifest(90, "", "b")).unwrap();
    let out = ok(&moto.ferry(d, &["deploy", "--provider", "aws"], &[]));
    assert!(
        out.contains("1 to destroy") && !out.contains("to add, 0 to change"),
        "{out}"
    );
    let live = moto.look(&["deployed", "upd"]);
    let q = &live["queues"]["upd-dev-jobs"];
    assert_eq!(q["visibilityTimeout"], 90, "{live:#}");
    assert!(q["redrive"].is_null(), "{q}");
    assert_eq!(section_len(&live, "queues"), 1);
    assert_eq!(live["functions"]["upd-dev-consumer"]["tags"]["team"], "b");
    let out = moto.ferry(
        d,
        &["plan", "--provider", "aws", "--detailed-exitcode"],
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
