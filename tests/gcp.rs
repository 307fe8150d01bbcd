//! The Google Cloud provider: the request body of every resource of every example (snapshots,
//! each checked against Google's discovery documents), and `ferry deploy --provider gcp`, a
//! no-op redeploy, an update and `ferry remove` against an in-process fake of the control
//! planes (tests/gcp/fake.rs) whose storage is a real `gcp-storage-emulator` (PyPI) on a free
//! loopback port. scripts/test.sh installs the emulator and google-api-python-client (whose
//! discovery documents it exports as `FERRY_GCP_DISCOVERY`).

mod common;

use common::{copy_example, free_port, ok, position, required, root, Process};
#[path = "gcp/fake.rs"]
mod fake;

use fake::discovery;

use ferry_gcp::resources::{listing, resources, Context, Kind};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

fn example(name: &str) -> ferry_core::Service {
    let manifest = root().join("examples").join(name).join("serverless.yaml");
    let env: HashMap<String, String> = HashMap::new();
    let opts = ferry_core::LoadOptions {
        config: Some(manifest.clone()),
        cwd: manifest.parent().unwrap().to_owned(),
        env: Some(env),
        stage: Some("dev".into()),
        ..Default::default()
    };
    ferry_core::load(&opts)
        .unwrap_or_else(|e| panic!("example {name} loads: {e:?}"))
        .service
}

fn context(s: &ferry_core::Service) -> Context {
    Context::new(
        s,
        "ferry-test",
        fake::PROJECT_NUMBER,
        "europe-west1",
        "ferry-runner@ferry-test.iam.gserviceaccount.com",
        None,
    )
}

/// A body with its engine references and secret tokens replaced by values of the shape the
/// API will see once they are resolved.
fn resolved(v: &Value) -> Value {
    match v {
        Value::String(s) => {
            let mut out = String::new();
            let mut rest = s.as_str();
            while let Some(i) = rest.find("${") {
                out.push_str(&rest[..i]);
                let end = rest[i..].find('}').expect("closed token") + i;
                let token = &rest[i + 2..end];
                let output = token.rsplit('.').next().unwrap_or_default();
                out.push_str(match (token.starts_with("secret:"), output) {
                    (true, _) => "czNjcmV0",
                    (_, "uri") => "https://x-123456789012.europe-west1.run.app",
                    (_, "service") => "projects/ferry-test/locations/europe-west1/services/x",
                    (_, "generation") => "1700000000000000",
                    (_, "object") => "fn/0123456789abcdef.zip",
                    _ => "ferry-bucket",
                });
                rest = &rest[end + 1..];
            }
            out.push_str(rest);
            json!(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(resolved).collect()),
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, x)| (k.clone(), resolved(x))).collect())
        }
        other => other.clone(),
    }
}

#[test]
fn example_request_bodies_match_the_discovery_documents() {
    let d = discovery::Discovery::from_env();
    let mut checked = BTreeSet::new();
    for name in ["hello-http", "queue-worker", "rust-api"] {
        let s = example(name);
        let rs = resources(&s, &context(&s)).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        insta::assert_json_snapshot!(format!("bodies-{name}"), listing(&rs));
        for r in &rs {
            let Some((doc, schema)) = r.kind.schema() else {
                continue;
            };
            let errors = d.check(doc, schema, &resolved(&r.body));
            assert!(
                errors.is_empty(),
                "{name} {}: {errors:#?}\n{}",
                r.address,
                r.body
            );
            checked.insert(r.kind.type_name());
        }
    }
    // Every kind with a JSON body is among the checked ones.
    let all: BTreeSet<&str> = [
        Kind::Topic,
        Kind::Subscription,
        Kind::Function,
        Kind::RunService,
        Kind::Invoker,
        Kind::PubSubPolicy,
        Kind::SecretPolicy,
        Kind::Job,
        Kind::Bucket,
        Kind::Trigger,
        Kind::Secret,
        Kind::SecretVersion,
        Kind::Database,
        Kind::FunctionSource,
    ]
    .iter()
    .map(|k| k.type_name())
    .collect();
    assert_eq!(checked, all);
}

/// The checker itself refuses what the APIs refuse (so the test above can fail).
#[test]
fn the_discovery_check_refuses_bad_bodies() {
    let d = discovery::Discovery::from_env();
    let bad = [
        ("pubsub.v1", "Topic", json!({"labelz": {}})),
        ("pubsub.v1", "Topic", json!({"state": "ACTIVE"})),
        (
            "pubsub.v1",
            "Subscription",
            json!({"topic": "t", "ackDeadlineSeconds": "ten"}),
        ),
        (
            "pubsub.v1",
            "Subscription",
            json!({"topic": "t", "messageRetentionDuration": "7d"}),
        ),
        (
            "cloudfunctions.v2",
            "Function",
            json!({"environment": "GEN_3"}),
        ),
        (
            "cloudscheduler.v1",
            "Job",
            json!({"httpTarget": {"uri": "https://x", "httpMethod": "POST", "body": "not base64!"}}),
        ),
        (
            "run.v2",
            "GoogleCloudRunV2Service",
            json!({"template": {"containers": [{"image": 3}]}}),
        ),
        // Eventarc requires the destination and the event filters.
        ("eventarc.v1", "Trigger", json!({"labels": {}})),
    ];
    for (doc, schema, body) in bad {
        assert!(
            !d.check(doc, schema, &body).is_empty(),
            "{doc} {schema} accepted {body}"
        );
    }
    assert!(d
        .check("pubsub.v1", "Topic", &json!({"labels": {"a": "b"}}))
        .is_empty());
}

/// A `gcp-storage-emulator`, in memory, on a free loopback port.
struct Emulator {
    _child: Process,
    url: String,
}

fn emulator() -> Emulator {
    let python = PathBuf::from(required("FERRY_TEST_PYTHON"));
    let exe = python.parent().unwrap().join("gcp-storage-emulator");
    let port = free_port();
    let child = Command::new(exe)
        .args(["start", "--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--in-memory", "--quiet"])
        .args(["--project-number", fake::PROJECT_NUMBER])
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting gcp-storage-emulator");
    let url = format!("http://127.0.0.1:{port}");
    let e = Emulator {
        _child: Process(child),
        url,
    };
    let c = reqwest::blocking::Client::new();
    for _ in 0..200 {
        if c.get(format!("{}/", e.url))
            .send()
            .is_ok_and(|r| r.status().is_success())
        {
            return e;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("gcp-storage-emulator did not start on {}", e.url);
}

struct Cloud {
    fake: Arc<fake::Fake>,
    rt: tokio::runtime::Runtime,
    _emulator: Emulator,
}

fn cloud() -> Cloud {
    let em = emulator();
    let (rt, listener, base) = common::bind_fake();
    let fake = Arc::new(fake::Fake::new(
        base,
        em.url.clone(),
        discovery::Discovery::from_env(),
    ));
    let f = fake.clone();
    common::serve_fake(&rt, listener, move |m, u, h, b| {
        f.clone().handle(m, u, h, b)
    });
    Cloud {
        fake,
        rt,
        _emulator: em,
    }
}

const REGION: [&str; 2] = ["--region", "europe-west1"];

impl Cloud {
    fn ferry(&self, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_ferry"))
            .current_dir(dir)
            .args(args)
            .env("FERRY_GCP_ENDPOINT", &self.fake.base)
            .env(
                "FERRY_GCP_STORAGE_ENDPOINT",
                format!("{}/gcs", self.fake.base),
            )
            .env("FERRY_GCP_ACCESS_TOKEN", "test-token")
            .env("FERRY_GCP_POLL_MS", "10")
            .env("GOOGLE_CLOUD_PROJECT", "ferry-test")
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .output()
            .unwrap()
    }

    fn calls(&self) -> Vec<String> {
        self.fake.state.lock().unwrap().calls.clone()
    }

    /// The calls that change something (GETs and operation polls left out).
    fn mutations_since(&self, from: usize) -> Vec<String> {
        self.calls()[from..]
            .iter()
            .filter(|c| !c.starts_with("GET "))
            .cloned()
            .collect()
    }

    fn resource(&self, name: &str) -> Value {
        self.fake
            .state
            .lock()
            .unwrap()
            .resources
            .get(name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} is not in the fake"))
    }

    fn gcs(&self, path: &str) -> (u16, Vec<u8>) {
        let r = self
            .rt
            .block_on(self.fake.gcs_call(reqwest::Method::GET, path, None));
        let status = r.status().as_u16();
        (status, self.rt.block_on(r.bytes()).unwrap().to_vec())
    }

    fn assert_valid(&self) {
        let st = self.fake.state.lock().unwrap();
        assert!(st.invalid.is_empty(), "the fake refused: {:#?}", st.invalid);
    }
}

const P: &str = "projects/ferry-test";
const L: &str = "projects/ferry-test/locations/europe-west1";

#[test]
fn deploy_redeploy_update_remove_queue_worker() {
    use base64::Engine;
    let c = cloud();
    let dir = copy_example("queue-worker");
    let d = dir.path();
    // ingest also uses the bucket its trigger watches (a grant on a bucket to check).
    let manifest = d.join("serverless.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let text = text.replacen(
        "    uses: [jobs]\n    triggers:\n      - storage:",
        "    uses: [jobs, uploads]\n    triggers:\n      - storage:",
        1,
    );
    assert!(text.contains("uses: [jobs, uploads]"));
    std::fs::write(&manifest, text).unwrap();
    let secret = "s3cret-value-never-shown";
    let encoded = base64::engine::general_purpose::STANDARD.encode(secret);
    let env = [("FERRY_SECRET_API_TOKEN", secret)];
    let deploy = [&["deploy", "--provider", "gcp"][..], &REGION[..]].concat();
    let out = ok(&c.ferry(d, &deploy, &env));
    assert!(!out.contains(secret) && !out.contains(&encoded), "{out}");
    c.assert_valid();
    let calls = c.calls();

    // The project number gives the default service account.
    assert!(calls[0].starts_with("GET /cloudresourcemanager/v3/projects/ferry-test"));
    // Topics before the subscriptions on them; the dead-letter topic before the push
    // subscription that names it.
    let topic = position(
        &calls,
        &format!("PUT /pubsub/v1/{P}/topics/queue-worker-dev-jobs"),
    );
    let dlq = position(
        &calls,
        &format!("PUT /pubsub/v1/{P}/topics/queue-worker-dev-jobs-dlq"),
    );
    let push = position(
        &calls,
        &format!("PUT /pubsub/v1/{P}/subscriptions/queue-worker-dev-worker-queue0"),
    );
    let worker = position(
        &calls,
        &format!("POST /cloudfunctions/v2/{L}/functions?functionId=queue-worker-dev-worker"),
    );
    assert!(topic < push && dlq < push && worker < push, "{calls:#?}");
    // Each function's source is asked for an upload URL before the function is made.
    let upload = position(&calls, "functions:generateUploadUrl");
    let first_fn = position(&calls, "/functions?functionId=");
    assert!(upload < first_fn, "{calls:#?}");
    // Eventarc after the bucket and the function it delivers to.
    let bucket = position(&calls, "POST /gcs/storage/v1/b?project=ferry-test");
    let ingest = position(&calls, "functionId=queue-worker-dev-ingest");
    let trigger = position(
        &calls,
        &format!(
            "POST /eventarc/v1/{L}/triggers?triggerId=queue-worker-dev-ingest-storage0-created"
        ),
    );
    assert!(bucket < trigger && ingest < trigger, "{calls:#?}");
    // The throttled Scheduler create was retried; operations were polled.
    let job_posts = calls
        .iter()
        .filter(|c| c.starts_with(&format!("POST /cloudscheduler/v1/{L}/jobs")))
        .count();
    assert_eq!(job_posts, 3, "two jobs, one 429 retried: {calls:#?}");
    assert!(calls.iter().any(|c| c.contains("/operations/operation-")));

    // The packages landed in storage, byte for byte, where the functions say.
    let state_path = d.join(".ferry/state/queue-worker-dev-gcp.json");
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(&state_path).unwrap()).unwrap();
    let text = state.to_string();
    assert!(
        !text.contains(secret) && !text.contains(&encoded),
        "the secret is not in the state"
    );
    for f in ["enqueue", "ingest", "worker", "nightly", "audit"] {
        let src = &state["resources"][format!("source.{f}")]["outputs"];
        let (bucket, object) = (
            src["bucket"].as_str().unwrap(),
            src["object"].as_str().unwrap(),
        );
        assert_eq!(bucket, fake::UPLOADS);
        let (status, bytes) = c.gcs(&format!(
            "/download/storage/v1/b/{bucket}/o/{object}?alt=media"
        ));
        assert_eq!(status, 200, "{f}");
        let zip = std::fs::read(d.join(format!(".ferry/build/dev/gcp-{f}.zip"))).unwrap();
        assert!(
            bytes == zip,
            "{f}: the uploaded source differs from the package"
        );
        let function = c.resource(&format!("{L}/functions/queue-worker-dev-{f}"));
        assert_eq!(
            function["buildConfig"]["source"]["storageSource"]["object"], object,
            "{f}"
        );
    }

    // What the functions are given.
    let worker = c.resource(&format!("{L}/functions/queue-worker-dev-worker"));
    let env_vars = &worker["serviceConfig"]["environmentVariables"];
    assert_eq!(
        env_vars["RESULTS_TABLE_NAME"],
        format!("{P}/databases/queue-worker-dev-results")
    );
    assert_eq!(
        env_vars["JOB_EVENTS_TOPIC_ARN"],
        format!("{P}/topics/queue-worker-dev-job-events")
    );
    assert_eq!(
        env_vars["API_TOKEN_SECRET_ARN"],
        format!("{P}/secrets/queue-worker-dev-api-token/versions/latest")
    );
    assert_eq!(env_vars["LOG_LEVEL"], "INFO");
    assert_eq!(worker["buildConfig"]["runtime"], "python312");
    assert_eq!(worker["serviceConfig"]["timeoutSeconds"], 50);
    // The queue's push subscription: ack deadline from the visibility timeout, dead letters
    // after Pub/Sub's minimum of 5 attempts (the manifest's 3 is below it), an OIDC token.
    let sub = c.resource(&format!("{P}/subscriptions/queue-worker-dev-worker-queue0"));
    assert_eq!(sub["ackDeadlineSeconds"], 60);
    assert_eq!(sub["deadLetterPolicy"]["maxDeliveryAttempts"], 5);
    assert_eq!(
        sub["pushConfig"]["pushEndpoint"],
        "https://queue-worker-dev-worker-123456789012.europe-west1.run.app/_ferry/events/queue0"
    );
    // Pub/Sub's service agent may publish dead letters and take them off the subscription;
    // both grants come after what they are on.
    let agent = format!(
        "serviceAccount:service-{}@gcp-sa-pubsub.iam.gserviceaccount.com",
        fake::PROJECT_NUMBER
    );
    let dlq_topic = c.resource(&format!("{P}/topics/queue-worker-dev-jobs-dlq"));
    assert_eq!(
        dlq_topic["policy"]["bindings"],
        json!([{"role": "roles/pubsub.publisher", "members": [agent]}])
    );
    assert_eq!(
        sub["policy"]["bindings"],
        json!([{"role": "roles/pubsub.subscriber", "members": [agent]}])
    );
    let grant = position(
        &calls,
        &format!("POST /pubsub/v1/{P}/subscriptions/queue-worker-dev-worker-queue0:setIamPolicy"),
    );
    assert!(push < grant, "{calls:#?}");
    // Event-only functions may be invoked by the service account alone; the http one by all.
    let policy = |id: &str| c.resource(&format!("{L}/services/{id}"))["policy"]["bindings"].clone();
    let sa = format!(
        "serviceAccount:{}-compute@developer.gserviceaccount.com",
        fake::PROJECT_NUMBER
    );
    assert_eq!(policy("queue-worker-dev-worker")[0]["members"], json!([sa]));
    assert_eq!(
        policy("queue-worker-dev-enqueue")[0]["members"],
        json!(["allUsers"])
    );
    // What the functions use, they may use: the same account publishes to the queue and the
    // topic and reads the secret, each granted on the resource after the resource exists.
    for (resource, made, role) in [
        (
            format!("{P}/topics/queue-worker-dev-jobs"),
            format!("PUT /pubsub/v1/{P}/topics/queue-worker-dev-jobs"),
            "roles/pubsub.publisher",
        ),
        (
            format!("{P}/topics/queue-worker-dev-job-events"),
            format!("PUT /pubsub/v1/{P}/topics/queue-worker-dev-job-events"),
            "roles/pubsub.publisher",
        ),
        (
            format!("{P}/secrets/queue-worker-dev-api-token"),
            "secretId=queue-worker-dev-api-token".to_owned(),
            "roles/secretmanager.secretAccessor",
        ),
    ] {
        assert_eq!(
            c.resource(&resource)["policy"]["bindings"],
            json!([{"role": role, "members": [sa]}]),
            "{resource}"
        );
        let api = if resource.contains("/secrets/") {
            "secretmanager"
        } else {
            "pubsub"
        };
        let grant = position(&calls, &format!("POST /{api}/v1/{resource}:setIamPolicy"));
        assert!(position(&calls, &made) < grant, "{resource}: {calls:#?}");
    }
    // Scheduler: the AWS cron as unix cron, the rate in English, both to the events path.
    let jobs: Vec<Value> = (0..2)
        .map(|i| c.resource(&format!("{L}/jobs/queue-worker-dev-nightly-schedule{i}")))
        .collect();
    assert_eq!(jobs[0]["schedule"], "0 3 * * *");
    assert_eq!(jobs[1]["schedule"], "every 1 hours");
    assert!(jobs[1]["httpTarget"]["uri"]
        .as_str()
        .unwrap()
        .ends_with("/_ferry/events/schedule1"));
    // The secret went to Secret Manager, and only there.
    {
        let st = c.fake.state.lock().unwrap();
        assert_eq!(st.payloads.values().collect::<Vec<_>>(), vec![&encoded]);
        let sent = st
            .bodies
            .values()
            .filter(|b| b.to_string().contains(&encoded))
            .count();
        assert_eq!(sent, 1);
    }
    // The bucket is in the emulator, with what was asked.
    let bucket_name = ferry_gcp::resources::bucket_name(&context_for(d), &loaded(d), "uploads");
    let (status, b) = c.gcs(&format!("/storage/v1/b/{bucket_name}"));
    assert_eq!(status, 200);
    let b: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(b["labels"]["ferry-service"], "queue-worker");
    assert_eq!(b["iamConfiguration"]["publicAccessPrevention"], "enforced");
    // The bucket's own legacy bindings stay; the account is added to them.
    let policy = c.fake.state.lock().unwrap().bucket_policies[&bucket_name].clone();
    assert_eq!(
        policy["bindings"],
        json!([
            {"role": "roles/storage.legacyBucketOwner", "members": ["projectEditor:ferry-test", "projectOwner:ferry-test"]},
            {"role": "roles/storage.legacyBucketReader", "members": ["projectViewer:ferry-test"]},
            {"role": "roles/storage.objectAdmin", "members": [sa]},
        ]),
        "{policy}"
    );
    let granted = position(&calls, &format!("PUT /gcs/storage/v1/b/{bucket_name}/iam"));
    assert!(
        position(&calls, "POST /gcs/storage/v1/b") < granted,
        "{calls:#?}"
    );

    // `ferry info` reads it back from the state.
    let o = c.ferry(d, &["info", "--provider", "gcp", "--format", "json"], &[]);
    ok(&o);
    let info: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        info["functions"]["enqueue"]["url"],
        "https://queue-worker-dev-enqueue-123456789012.europe-west1.run.app",
        "{info}"
    );
    assert_eq!(
        info["queues"]["jobs"],
        format!("{P}/topics/queue-worker-dev-jobs"),
        "{info}"
    );
    assert_eq!(info["buckets"]["uploads"], bucket_name, "{info}");
    assert!(info["topics"]["job-events"].is_string(), "{info}");

    // A no-op redeploy: a plan with no changes, and no mutating call.
    let before = c.calls().len();
    let plan = c.ferry(
        d,
        &[
            &["plan", "--provider", "gcp", "--detailed-exitcode"][..],
            &REGION[..],
        ]
        .concat(),
        &env,
    );
    assert_eq!(plan.status.code(), Some(0), "{}", ok(&plan));
    ok(&c.ferry(d, &deploy, &env));
    assert_eq!(c.mutations_since(before), Vec::<String>::new());

    // An update: a changed variable is one PATCH per function, naming what changed.
    let manifest = d.join("serverless.yaml");
    let text = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace("LOG_LEVEL: INFO", "LOG_LEVEL: DEBUG");
    std::fs::write(&manifest, text).unwrap();
    let before = c.calls().len();
    ok(&c.ferry(d, &deploy, &env));
    c.assert_valid();
    let changed = c.mutations_since(before);
    assert_eq!(changed.len(), 5, "{changed:#?}");
    assert!(
        changed.iter().all(
            |m| m.starts_with(&format!("PATCH /cloudfunctions/v2/{L}/functions/"))
                && m.contains("updateMask=")
        ),
        "{changed:#?}"
    );
    let worker = c.resource(&format!("{L}/functions/queue-worker-dev-worker"));
    assert_eq!(
        worker["serviceConfig"]["environmentVariables"]["LOG_LEVEL"],
        "DEBUG"
    );

    // Remove: everything ferry made goes.
    let before = c.calls().len();
    ok(&c.ferry(
        d,
        &[&["remove", "--provider", "gcp"][..], &REGION[..]].concat(),
        &[],
    ));
    c.assert_valid();
    let removed = c.mutations_since(before);
    assert!(
        removed.iter().all(|m| m.starts_with("DELETE")
            || m.contains(":setIamPolicy")
            || m.contains(":destroy")
            || (m.starts_with("PUT /gcs/storage/v1/b/") && m.ends_with("/iam"))),
        "{removed:#?}"
    );
    // The grant on the bucket went before the bucket, and took only the account away.
    let ungrant = position(
        &removed,
        &format!("PUT /gcs/storage/v1/b/{bucket_name}/iam"),
    );
    let unbucket = position(&removed, &format!("DELETE /gcs/storage/v1/b/{bucket_name}"));
    assert!(ungrant < unbucket, "{removed:#?}");
    let last_policy = {
        let st = c.fake.state.lock().unwrap();
        st.bodies
            .iter()
            .rev()
            .find(|(i, _)| st.calls[**i].contains(&format!("b/{bucket_name}/iam")))
            .map(|(_, b)| b.clone())
            .unwrap()
    };
    assert_eq!(
        last_policy["bindings"].as_array().map(Vec::len),
        Some(2),
        "{last_policy}"
    );
    let st = c.fake.state.lock().unwrap();
    let left: Vec<&String> = st
        .resources
        .keys()
        .filter(|k| !k.contains("/versions/"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:#?}");
    assert!(st.resources.iter().all(|(_, v)| v["state"] == "DESTROYED"));
    drop(st);
    assert_eq!(c.gcs(&format!("/storage/v1/b/{bucket_name}")).0, 404);
}

fn loaded(d: &Path) -> ferry_core::Service {
    let opts = ferry_core::LoadOptions {
        config: Some(d.join("serverless.yaml")),
        cwd: d.to_owned(),
        env: Some(HashMap::new()),
        stage: Some("dev".into()),
        ..Default::default()
    };
    ferry_core::load(&opts).unwrap().service
}

fn context_for(d: &Path) -> Context {
    let s = loaded(d);
    Context::new(
        &s,
        "ferry-test",
        fake::PROJECT_NUMBER,
        "europe-west1",
        &format!(
            "{}-compute@developer.gserviceaccount.com",
            fake::PROJECT_NUMBER
        ),
        None,
    )
}

/// A Runtime API binary on Cloud Run: its source (the binary and ferry's adapter) goes to
/// ferry's sources bucket in storage; the service names that exact object generation. A deploy
/// that fails half way (a 400 on the invoker policy) leaves a state that records what was made,
/// and the next deploy finishes without making anything twice.
#[test]
fn cloud_run_service_from_source_and_a_failed_deploy_converges() {
    let c = cloud();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("serverless.yaml"),
        "service: run-svc\nprovider:\n  runtime: provided\n  memory: 256\nfunctions:\n  api:\n    handler: bootstrap\n    triggers:\n      - http: GET /hi\n      - schedule: rate(5 minutes)\n",
    )
    .unwrap();
    let bootstrap = d.join("bootstrap");
    std::fs::write(&bootstrap, "#!/bin/sh\nexit 0\n").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&bootstrap, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let deploy = [&["deploy", "--provider", "gcp"][..], &REGION[..]].concat();
    c.fake.state.lock().unwrap().fail_next = Some(":setIamPolicy".into());
    let failed = c.ferry(d, &deploy, &[]);
    assert!(
        !failed.status.success(),
        "the injected failure fails the deploy"
    );
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(stderr.contains("injected failure"), "{stderr}");
    let state = std::fs::read_to_string(d.join(".ferry/state/run-svc-dev-gcp.json")).unwrap();
    assert!(state.contains("\"function.api\""), "{state}");

    ok(&c.ferry(d, &deploy, &[]));
    c.assert_valid();
    let calls = c.calls();
    let creates = |needle: &str| {
        calls
            .iter()
            .filter(|c| c.starts_with("POST") && c.contains(needle))
            .count()
    };
    assert_eq!(creates("serviceId=run-svc-dev-api&"), 0);
    assert_eq!(
        creates("/services?serviceId=run-svc-dev-api"),
        2,
        "public and events: {calls:#?}"
    );
    assert_eq!(creates("?uploadType=media"), 1, "{calls:#?}");
    // The service runs the uploaded object, generation and all, on the base image.
    let svc = c.resource(&format!("{L}/services/run-svc-dev-api"));
    let container = &svc["template"]["containers"][0];
    let src = &container["sourceCode"]["cloudStorageSource"];
    let (status, bytes) = c.gcs(&format!(
        "/download/storage/v1/b/{}/o/{}?alt=media",
        src["bucket"].as_str().unwrap(),
        src["object"].as_str().unwrap().replace('/', "%2F")
    ));
    assert_eq!(status, 200);
    let zip = std::fs::read(d.join(".ferry/build/dev/gcp-api.zip")).unwrap();
    assert!(bytes == zip, "the uploaded source differs from the package");
    assert_eq!(container["command"], json!(["/workspace/ferry-adapter"]));
    assert_eq!(container["image"], "scratch");
    assert!(container["baseImageUri"]
        .as_str()
        .unwrap()
        .ends_with("/runtimes/osonly24"));
    assert_eq!(container["resources"]["limits"]["memory"], "256Mi");
    let names: Vec<String> = {
        let mut z = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
        (0..z.len())
            .map(|i| z.by_index(i).unwrap().name().unwrap().into_owned())
            .collect()
    };
    for f in ["fns/api/bootstrap", "ferry-adapter", "ferry/functions.json"] {
        assert!(names.iter().any(|n| n == f), "{f} in {names:?}");
    }

    // No-op.
    let before = c.calls().len();
    ok(&c.ferry(d, &deploy, &[]));
    assert_eq!(c.mutations_since(before), Vec::<String>::new());

    // A plan asks Cloud Run to check the updated services (validateOnly) and changes nothing.
    // (A new variable leaves the source as it is, so every input of the update is known.)
    let manifest = d.join("serverless.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let changed = text.replace(
        "  memory: 256\n",
        "  memory: 256\n  environment:\n    MODE: fast\n",
    );
    assert_ne!(changed, text);
    std::fs::write(&manifest, changed).unwrap();
    let plan = [
        &["plan", "--provider", "gcp", "--format", "json"][..],
        &REGION[..],
    ]
    .concat();
    let before = c.calls().len();
    let o = c.ferry(d, &plan, &[]);
    ok(&o);
    c.assert_valid();
    let p: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        p["checks"],
        json!([
            {"address": "function.api", "accepted": true},
            {"address": "function.api.events", "accepted": true},
        ]),
        "{p}"
    );
    let calls = c.mutations_since(before);
    assert_eq!(calls.len(), 2, "{calls:#?}");
    assert!(calls
        .iter()
        .all(|m| m.starts_with("PATCH") && m.ends_with("validateOnly=true")));
    let svc = c.resource(&format!("{L}/services/run-svc-dev-api"));
    let env = svc["template"]["containers"][0]["env"].to_string();
    assert!(!env.contains("MODE"), "the dry run changed nothing: {env}");
    assert_eq!(
        svc["template"]["containers"][0]["resources"]["limits"]["memory"],
        "256Mi"
    );
    // A refusal in the dry run fails the plan, naming the service and the reason.
    c.fake.state.lock().unwrap().fail_next = Some("services/run-svc-dev-api-events".into());
    let o = c.ferry(
        d,
        &[&["plan", "--provider", "gcp"][..], &REGION[..]].concat(),
        &[],
    );
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("1 accepted, 1 refused"), "{out}");
    assert!(
        out.contains("function.api.events: HTTP 400") && out.contains("injected failure"),
        "{out}"
    );
    assert!(
        out.contains("the cloud refused 1 change in a dry run"),
        "{out}"
    );
    std::fs::write(&manifest, text).unwrap();

    // Remove: the sources bucket is emptied and deleted.
    ok(&c.ferry(
        d,
        &[&["remove", "--provider", "gcp"][..], &REGION[..]].concat(),
        &[],
    ));
    c.assert_valid();
    assert_eq!(
        c.gcs(&format!(
            "/storage/v1/b/{}",
            src["bucket"].as_str().unwrap()
        ))
        .0,
        404
    );
    let st = c.fake.state.lock().unwrap();
    assert!(
        st.resources.is_empty(),
        "left behind: {:#?}",
        st.resources.keys()
    );
}
