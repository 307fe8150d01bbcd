//! The Azure provider end to end: `ferry deploy --provider azure`, a no-op redeploy, an update
//! and `ferry remove` against an in-process fake of ARM and of the SCM sites
//! (tests/azure/fake.rs), which checks every body against the resource's schema from the Azure
//! REST API specifications and keeps storage in a real Azurite (npm `azurite@3.35.0`).
//! scripts/test.sh installs Azurite (`FERRY_AZURITE`) and writes the schemas
//! (`FERRY_AZURE_SCHEMAS`).

mod common;

use common::{copy_example, ok, position, required, Process};
#[path = "azure/fake.rs"]
mod fake;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

/// Azurite's blob and queue services, in memory, on ports of its choosing.
struct Azurite {
    _child: Process,
    blob: String,
    queue: String,
}

fn azurite() -> Azurite {
    let mut child = Command::new(required("FERRY_AZURITE"))
        .args([
            "--silent",
            "--inMemoryPersistence",
            "--disableTelemetry",
            "--skipApiVersionCheck",
        ])
        .args([
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            "0",
            "--queueHost",
            "127.0.0.1",
            "--queuePort",
            "0",
        ])
        .args(["--tableHost", "127.0.0.1", "--tablePort", "0"])
        // Its debug log and lock files go to the working directory: a scratch one.
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting azurite");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut blob, mut queue) = (None, None);
    while blob.is_none() || queue.is_none() {
        let line = lines.next().expect("azurite exited").unwrap();
        let url = line.rsplit(' ').next().unwrap_or_default().to_owned();
        if line.contains("Blob service is successfully listening") {
            blob = Some(url);
        } else if line.contains("Queue service is successfully listening") {
            queue = Some(url);
        }
    }
    std::thread::spawn(move || for _ in lines {});
    Azurite {
        _child: Process(child),
        blob: blob.unwrap(),
        queue: queue.unwrap(),
    }
}

struct Cloud {
    fake: Arc<fake::Fake>,
    rt: tokio::runtime::Runtime,
    _azurite: Azurite,
}

fn cloud() -> Cloud {
    let az = azurite();
    let schemas: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(required("FERRY_AZURE_SCHEMAS")).unwrap())
            .unwrap();
    let (rt, listener, base) = common::bind_fake();
    let fake = Arc::new(fake::Fake::new(
        base,
        az.blob.clone(),
        az.queue.clone(),
        schemas,
    ));
    let f = fake.clone();
    common::serve_fake(&rt, listener, move |m, u, h, b| {
        f.clone().handle(m, u, h, b)
    });
    Cloud {
        fake,
        rt,
        _azurite: az,
    }
}

impl Cloud {
    fn ferry(&self, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_ferry"))
            .current_dir(dir)
            .args(args)
            .env("FERRY_AZURE_ARM_ENDPOINT", &self.fake.base)
            .env(
                "FERRY_AZURE_SCM_ENDPOINT",
                format!("{}/scm", self.fake.base),
            )
            .env("FERRY_AZURE_ACCESS_TOKEN", "test-token")
            .env("FERRY_AZURE_POLL_MS", "20")
            .env(
                "AZURE_SUBSCRIPTION_ID",
                "00000000-0000-0000-0000-00000000abcd",
            )
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .output()
            .unwrap()
    }

    /// Azurite's list of queues or containers (`?comp=list` on a service URL).
    fn listing(&self, service: &str) -> String {
        let r = self.rt.block_on(self.fake.storage(
            reqwest::Method::GET,
            &format!("{service}/{}?comp=list", fake::ACCOUNT),
            vec![],
            &[],
        ));
        self.rt.block_on(r.text()).unwrap()
    }

    /// The app settings the fake holds.
    fn app_settings(&self) -> serde_json::Value {
        let st = self.fake.state.lock().unwrap();
        st.resources
            .iter()
            .find(|(k, _)| k.ends_with("/config/appsettings"))
            .map(|(_, v)| v["properties"].clone())
            .expect("app settings were PUT")
    }

    fn calls(&self) -> Vec<String> {
        self.fake.state.lock().unwrap().calls.clone()
    }

    fn mutations_since(&self, from: usize) -> Vec<String> {
        self.calls()[from..]
            .iter()
            .filter(|c| {
                c.starts_with("PUT") || c.starts_with("DELETE") || c.starts_with("POST /scm")
            })
            .cloned()
            .collect()
    }
}

#[test]
fn deploy_redeploy_update_remove_queue_worker() {
    let c = cloud();
    let dir = copy_example("queue-worker");
    let d = dir.path();
    let secret = "s3cret-value-never-shown";
    let env = [("FERRY_SECRET_API_TOKEN", secret)];
    let out = ok(&c.ferry(
        d,
        &["deploy", "--provider", "azure", "--region", "westeurope"],
        &env,
    ));
    assert!(!out.contains(secret), "{out}");
    {
        let st = c.fake.state.lock().unwrap();
        assert!(st.invalid.is_empty(), "the fake refused: {:#?}", st.invalid);
    }
    let calls = c.calls();
    // Order: the group, the account before its children, the plan (throttled once, retried)
    // before the site, settings and roles before the code, the code before Event Grid.
    let rg = position(
        &calls,
        "PUT /subscriptions/00000000-0000-0000-0000-00000000abcd/resourceGroups/queue-worker-dev",
    );
    let account = position(&calls, "PUT ~/providers/Microsoft.Storage/storageAccounts/");
    let queue = position(&calls, "/queueServices/default/queues/jobs");
    let plan_calls = calls
        .iter()
        .filter(|c| c.starts_with("PUT ") && c.contains("/serverfarms/"))
        .count();
    let site = position(
        &calls,
        "PUT ~/providers/Microsoft.Web/sites/queue-worker-dev-python-",
    );
    let settings = position(&calls, "/config/appsettings");
    let role = position(
        &calls,
        "PUT ~/providers/Microsoft.Storage/storageAccounts/st",
    );
    let role = calls[role..]
        .iter()
        .position(|c| c.contains("roleAssignments"))
        .map(|i| i + role)
        .expect("role assignments");
    let publish = position(&calls, "POST /scm/queue-worker-dev-python-");
    let subscription = position(&calls, "eventSubscriptions/ingest");
    let topic_sub = position(&calls, "eventSubscriptions/audit");
    assert!(rg < account && account < queue, "{calls:#?}");
    assert_eq!(plan_calls, 2, "one 429, one retry: {calls:#?}");
    assert!(
        site < settings && settings < publish && role < publish,
        "{calls:#?}"
    );
    assert!(publish < subscription && publish < topic_sub, "{calls:#?}");
    assert!(
        calls.iter().any(|c| c.starts_with("GET /operations/")),
        "long-running operations were polled"
    );

    // The package landed in the deployment container in Azurite, byte for byte.
    let zip = std::fs::read(d.join(".ferry/build/dev/azure-python.zip")).unwrap();
    let blob = c.rt.block_on(c.fake.storage(
        reqwest::Method::GET,
        &format!(
            "{}/{}/app-package-python/released-package.zip",
            c.fake.blob,
            fake::ACCOUNT
        ),
        vec![],
        &[],
    ));
    assert_eq!(blob.status(), 200);
    assert_eq!(
        c.rt.block_on(blob.bytes()).unwrap().as_ref(),
        zip.as_slice()
    );
    // The queue and the bucket's container exist in Azurite.
    assert!(c.listing(&c.fake.queue).contains("<Name>jobs</Name>"));
    assert!(c.listing(&c.fake.blob).contains("<Name>uploads</Name>"));

    // App settings: the injected variables point at the Azure resources.
    {
        let p = &c.app_settings();
        let st = c.fake.state.lock().unwrap();
        assert_eq!(
            p["JOBS_QUEUE_URL"],
            format!("{}/{}/jobs", c.fake.queue, fake::ACCOUNT)
        );
        assert_eq!(p["RESULTS_TABLE_NAME"], "results");
        assert_eq!(p["LOG_LEVEL"], "INFO");
        assert!(p["API_TOKEN_SECRET_ARN"]
            .as_str()
            .unwrap()
            .ends_with(".vault.azure.net/secrets/api-token"));
        // The secret went to Key Vault, and only there.
        let secret_put = st
            .bodies
            .values()
            .filter(|b| b["properties"]["value"] == secret)
            .count();
        assert_eq!(secret_put, 1);
    }
    let state =
        std::fs::read_to_string(d.join(".ferry/state/queue-worker-dev-azure.json")).unwrap();
    assert!(state.contains("resource-group"), "state was written");
    assert!(!state.contains(secret), "the secret is not in the state");

    // `ferry info` reads it back from the state.
    let o = c.ferry(d, &["info", "--provider", "azure", "--format", "json"], &[]);
    ok(&o);
    let info: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let app = &info["apps"]["python"];
    assert!(
        app["url"]
            .as_str()
            .unwrap()
            .starts_with("https://queue-worker-dev-python-"),
        "{info}"
    );
    assert!(
        info["queues"]["jobs"]
            .as_str()
            .unwrap()
            .ends_with("/queueServices/default/queues/jobs"),
        "{info}"
    );
    assert!(
        info["topics"]["job-events"]
            .as_str()
            .unwrap()
            .contains("eventgrid.azure.net"),
        "{info}"
    );
    assert!(
        info["buckets"]["uploads"].is_string()
            && info["buckets"].get("app-package-python").is_none(),
        "{info}"
    );

    // A no-op redeploy: a plan with no changes, and no mutating call.
    let before = c.calls().len();
    let plan = c.ferry(
        d,
        &[
            "plan",
            "--provider",
            "azure",
            "--region",
            "westeurope",
            "--detailed-exitcode",
        ],
        &env,
    );
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&plan.stdout),
        String::from_utf8_lossy(&plan.stderr)
    );
    ok(&c.ferry(
        d,
        &["deploy", "--provider", "azure", "--region", "westeurope"],
        &env,
    ));
    assert_eq!(c.mutations_since(before), Vec::<String>::new());

    // An update: a changed variable is one app settings PUT (the code is unchanged).
    let manifest = d.join("serverless.yaml");
    let text = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace("LOG_LEVEL: INFO", "LOG_LEVEL: DEBUG");
    std::fs::write(&manifest, text).unwrap();
    let before = c.calls().len();
    ok(&c.ferry(
        d,
        &["deploy", "--provider", "azure", "--region", "westeurope"],
        &env,
    ));
    let changed = c.mutations_since(before);
    assert_eq!(changed.len(), 1, "{changed:#?}");
    assert!(changed[0].ends_with("/config/appsettings"), "{changed:#?}");
    assert_eq!(c.app_settings()["LOG_LEVEL"], "DEBUG");

    // Remove: everything goes, the (now empty) group last.
    let before = c.calls().len();
    ok(&c.ferry(
        d,
        &["remove", "--provider", "azure", "--region", "westeurope"],
        &[],
    ));
    let removed = c.mutations_since(before);
    assert!(
        removed.iter().all(|c| c.starts_with("DELETE")),
        "{removed:#?}"
    );
    assert!(
        removed
            .last()
            .unwrap()
            .ends_with("/resourceGroups/queue-worker-dev"),
        "{removed:#?}"
    );
    let st = c.fake.state.lock().unwrap();
    assert!(
        st.resources.is_empty(),
        "left behind: {:#?}",
        st.resources.keys().collect::<Vec<_>>()
    );
    assert!(st.invalid.is_empty(), "the fake refused: {:#?}", st.invalid);
}

/// A deploy that fails half way (a non-retryable 400 on the app settings) leaves a state that
/// records what was made; the next deploy finishes without making anything twice. On the node
/// example, whose CORS route sets the site's CORS.
#[test]
fn a_failed_deploy_converges_on_the_next_run() {
    let c = cloud();
    let dir = copy_example("hello-http");
    let d = dir.path();
    let args = ["deploy", "--provider", "azure", "--region", "westeurope"];
    c.fake.state.lock().unwrap().fail_next_put = Some("/config/appsettings".into());
    let failed = c.ferry(d, &args, &[]);
    assert!(
        !failed.status.success(),
        "the injected failure fails the deploy"
    );
    let text = String::from_utf8_lossy(&failed.stderr);
    assert!(text.contains("injected failure"), "{text}");
    let state = std::fs::read_to_string(d.join(".ferry/state/hello-http-dev-azure.json")).unwrap();
    assert!(
        state.contains("site.node") && !state.contains("package.node"),
        "{state}"
    );
    let made = c.fake.state.lock().unwrap().resources.len();

    ok(&c.ferry(d, &args, &[]));
    let st = c.fake.state.lock().unwrap();
    assert!(st.invalid.is_empty(), "the fake refused: {:#?}", st.invalid);
    // PUTs of the resource itself (`.../<type>/<name>`, not its children).
    let puts_of = |type_segment: &str| {
        st.calls
            .iter()
            .filter(|c| c.starts_with("PUT "))
            .filter_map(|c| c.split_once(type_segment).map(|(_, rest)| rest))
            .filter(|rest| !rest.contains('/'))
            .count()
    };
    // Made once; only the failed one again.
    assert_eq!(puts_of("/storageAccounts/"), 1, "{:#?}", st.calls);
    assert_eq!(puts_of("/Microsoft.Web/sites/"), 1, "{:#?}", st.calls);
    assert_eq!(
        puts_of("/Microsoft.Web/serverfarms/"),
        2,
        "one 429, then once: {:#?}",
        st.calls
    );
    assert_eq!(puts_of("/config/"), 2, "{:#?}", st.calls);
    assert!(st.resources.len() > made);
    let site = st
        .resources
        .values()
        .find(|r| r["type"] == "Microsoft.Web/sites")
        .unwrap();
    assert_eq!(
        site["properties"]["siteConfig"]["cors"]["allowedOrigins"],
        serde_json::json!(["*"])
    );
    assert_eq!(
        site["properties"]["functionAppConfig"]["runtime"],
        serde_json::json!({"name": "node", "version": "22"})
    );
    assert_eq!(
        st.deployed.values().next().unwrap().len(),
        3,
        "hello, greet, echo"
    );
    drop(st);

    // The site deleted outside ferry: the next deploy makes it again and publishes its code
    // again (the package refers to the site's id).
    {
        let mut st = c.fake.state.lock().unwrap();
        let id = st
            .resources
            .iter()
            .find(|(_, r)| r["type"] == "Microsoft.Web/sites")
            .map(|(k, _)| k.clone())
            .unwrap();
        st.resources.retain(|k, _| !k.starts_with(&id));
        st.deployed.clear();
    }
    let before = c.calls().len();
    ok(&c.ferry(d, &args, &[]));
    let again = c.mutations_since(before);
    let site_put = again
        .iter()
        .any(|m| m.starts_with("PUT ~/providers/Microsoft.Web/sites/") && !m.contains("/config/"));
    assert!(site_put, "{again:#?}");
    assert!(
        again.iter().any(|m| m.contains("/config/appsettings")),
        "{again:#?}"
    );
    assert!(
        again.iter().any(|m| m.starts_with("POST /scm/")),
        "{again:#?}"
    );
    // The new identity's role assignments: the old ones deleted, new ones made (ARM refuses
    // to change the principal of an assignment).
    let deleted = again
        .iter()
        .position(|m| m.starts_with("DELETE") && m.contains("roleAssignments"));
    let made = again
        .iter()
        .rposition(|m| m.starts_with("PUT") && m.contains("roleAssignments"));
    assert!(deleted.is_some() && deleted < made, "{again:#?}");
    assert!(c.fake.state.lock().unwrap().invalid.is_empty());
}
