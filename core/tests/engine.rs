//! The plan/state/apply engine on an in-memory test provider.

mod support;

use ferry_core::engine::render;
use ferry_core::engine::{
    apply, plan, Action, ApplyOptions, Artifact, Artifacts, CollectEvents, EngineError, Inputs,
    LocalBackend, LockInfo, Plan, PlanOptions, PlanValue, RetryPolicy, SecretValues, StateBackend,
    StateError,
};
use ferry_core::model::Service;
use std::sync::atomic::Ordering;
use std::time::Duration;
use support::{load, TestProvider};

const SECRET: &str = "hunter2-correct-horse-battery";

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
    }
}

struct World {
    dir: tempfile::TempDir,
    provider: TestProvider,
    artifacts: Artifacts,
    secrets: SecretValues,
    events: CollectEvents,
}

impl World {
    fn new() -> Self {
        World {
            dir: tempfile::tempdir().unwrap(),
            provider: TestProvider::new(),
            artifacts: Artifacts::default(),
            secrets: SecretValues::new(),
            events: CollectEvents::default(),
        }
    }
    fn service(&self, yaml: &str) -> Service {
        load(self.dir.path(), yaml)
    }
    fn backend(&self, s: &Service) -> LocalBackend {
        LocalBackend::new(self.dir.path(), &s.service, &s.stage, "test")
    }
    fn inputs<'a>(&'a self, s: &'a Service) -> Inputs<'a> {
        Inputs {
            service: s,
            artifacts: &self.artifacts,
            secrets: &self.secrets,
        }
    }
    async fn plan_with(&self, s: &Service, opts: PlanOptions) -> Result<Plan, EngineError> {
        let opts = PlanOptions {
            retry: fast_retry(),
            ..opts
        };
        plan(
            &self.provider,
            &self.inputs(s),
            &self.backend(s),
            &opts,
            &self.events,
        )
        .await
    }
    async fn plan(&self, s: &Service) -> Plan {
        self.plan_with(s, PlanOptions::default()).await.unwrap()
    }
    async fn apply_with(
        &self,
        s: &Service,
        p: &Plan,
        parallelism: usize,
    ) -> Result<ferry_core::engine::ApplyReport, EngineError> {
        let opts = ApplyOptions {
            parallelism,
            retry: fast_retry(),
        };
        apply(
            &self.provider,
            &self.inputs(s),
            &self.backend(s),
            p,
            &opts,
            &self.events,
        )
        .await
    }
    async fn deploy(&self, s: &Service) -> Plan {
        let p = self.plan(s).await;
        self.apply_with(s, &p, 8).await.unwrap();
        p
    }
    fn state_text(&self, s: &Service) -> String {
        std::fs::read_to_string(self.backend(s).path()).unwrap()
    }
    fn state_addresses(&self, s: &Service) -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(&self.state_text(s)).unwrap();
        v["resources"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    }
    fn serial(&self, s: &Service) -> u64 {
        let v: serde_json::Value = serde_json::from_str(&self.state_text(s)).unwrap();
        v["serial"].as_u64().unwrap()
    }
}

fn action_of(p: &Plan, addr: &str) -> Action {
    p.changes
        .iter()
        .find(|c| c.address == addr)
        .unwrap_or_else(|| panic!("{addr} not in plan"))
        .action
}

const SHOP: &str = "service: shop
provider: { runtime: nodejs22 }
services:
  jobs: { type: queue }
functions:
  api:
    handler: src/api.handler
    memory: 256
    uses: [jobs]
";

#[tokio::test]
async fn create_then_noop_then_update_then_delete() {
    let w = World::new();
    let s = w.service(SHOP);

    let p = w.deploy(&s).await;
    assert_eq!(
        (p.summary.add, p.summary.change, p.summary.destroy),
        (3, 0, 0)
    );
    assert_eq!(w.provider.calls("create"), 3);
    assert_eq!(
        w.state_addresses(&s),
        ["function.api", "queue.jobs", "role.api"]
    );
    let serial = w.serial(&s);
    // Writes overlap the calls: at least one, at most one per resource, however they overlap.
    assert!((1..=3).contains(&serial), "serial {serial} after 3 creates");

    // No change: no mutating call, and the serial still moves on.
    w.provider.reset_calls();
    let p = w.plan(&s).await;
    assert!(!p.has_changes(), "{}", render::text(&p, false));
    assert_eq!(render::detailed_exit_code(&p), 0);
    w.apply_with(&s, &p, 8).await.unwrap();
    assert_eq!(w.provider.mutating_calls(), 0);
    assert_eq!(w.serial(&s), serial + 1);

    // An update.
    let s2 = w.service(&SHOP.replace("memory: 256", "memory: 512"));
    let p = w.plan(&s2).await;
    assert_eq!(render::detailed_exit_code(&p), 2);
    assert_eq!(action_of(&p, "function.api"), Action::Update);
    let c = p
        .changes
        .iter()
        .find(|c| c.address == "function.api")
        .unwrap();
    assert_eq!(c.changes.len(), 1);
    assert_eq!(c.changes[0].path, "memory");
    assert_eq!(c.changes[0].before, Some(PlanValue::Known(256.into())));
    assert_eq!(c.changes[0].after, Some(PlanValue::Known(512.into())));
    w.apply_with(&s2, &p, 8).await.unwrap();
    assert_eq!(w.provider.calls("update"), 1);
    assert_eq!(
        w.provider.live.lock().unwrap()["function.api"]["memory"],
        512
    );

    // Removing the function deletes it before its role (reverse dependency order).
    let s3 = w.service(
        "service: shop\nprovider: { runtime: nodejs22 }\nservices:\n  jobs: { type: queue }\n",
    );
    let p = w.plan(&s3).await;
    assert_eq!(p.summary.destroy, 2);
    w.apply_with(&s3, &p, 8).await.unwrap();
    let lines = w.events.lines();
    let pos = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle} not in {lines:#?}"))
    };
    assert!(pos("function.api: delete done") < pos("role.api: deleting"));
    assert_eq!(w.state_addresses(&s3), ["queue.jobs"]);
    assert_eq!(w.provider.live_addresses(), ["queue.jobs"]);

    // Destroy.
    let p = w
        .plan_with(
            &s3,
            PlanOptions {
                destroy: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(p.summary.destroy, 1);
    w.apply_with(&s3, &p, 8).await.unwrap();
    assert!(w.provider.live_addresses().is_empty());
    assert!(w.state_addresses(&s3).is_empty());
}

/// `ferry plan` asks for server-side dry runs only of the creates and updates whose inputs are
/// all known: references resolve to recorded values, and nothing they depend on changes.
#[tokio::test]
async fn dry_runs_only_where_every_input_is_known() {
    let w = World::new();
    let s = w.service(SHOP);
    let dry = PlanOptions {
        dry_run: true,
        ..Default::default()
    };
    // Nothing deployed yet: nothing can be checked.
    let p = w.plan_with(&s, dry.clone()).await.unwrap();
    assert!(p.checks.is_empty());
    w.deploy(&s).await;
    w.provider.reset_calls();

    // An update of the function alone: checked, with its references resolved.
    let s2 = w.service(&SHOP.replace("memory: 256", "memory: 512"));
    let p = w.plan_with(&s2, dry.clone()).await.unwrap();
    assert_eq!(p.checks.len(), 1);
    assert!(p.checks[0].accepted && p.checks[0].address == "function.api");
    let sent = w.provider.dry_runs.lock().unwrap().pop().unwrap().1;
    assert_eq!(sent["memory"], 512);
    assert_eq!(
        sent["environment"]["JOBS_QUEUE_URL"],
        "https://queue.test/queue.jobs"
    );
    assert!(render::text(&p, false).contains("1 accepted, 0 refused"));
    assert_eq!(w.provider.mutating_calls(), 0, "a dry run changes nothing");

    // The queue it refers to is remade in the same plan: the function waits for the deploy.
    let s3 = w.service(
        &SHOP
            .replace("memory: 256", "memory: 512")
            .replace("jobs: { type: queue }", "jobs: { type: queue, fifo: true }"),
    );
    let p = w.plan_with(&s3, dry.clone()).await.unwrap();
    assert_eq!(action_of(&p, "queue.jobs"), Action::Replace);
    assert!(p.checks.is_empty(), "{:?}", p.checks);

    // A refusal is in the plan, in every rendering, and the plan says so.
    *w.provider.refuse_dry_run.lock().unwrap() = Some((
        "function.api".into(),
        "memory must be a multiple of 64".into(),
    ));
    let p = w.plan_with(&s2, dry.clone()).await.unwrap();
    assert_eq!(p.refused().count(), 1);
    let text = render::text(&p, false);
    assert!(text.contains("0 accepted, 1 refused"), "{text}");
    assert!(
        text.contains("function.api: memory must be a multiple of 64"),
        "{text}"
    );
    assert!(render::markdown(&p).contains("memory must be a multiple of 64"));
    assert!(render::json(&p).contains("\"accepted\": false"));
    // Without the option (a deploy's own plan), no dry run is asked for.
    let before = w.provider.dry_runs.lock().unwrap().len();
    w.plan(&s2).await;
    assert_eq!(w.provider.dry_runs.lock().unwrap().len(), before);
}

#[tokio::test]
async fn a_value_known_only_after_apply_is_resolved_for_the_dependent() {
    let w = World::new();
    let s = w.service(SHOP);
    let p = w.plan(&s).await;
    let f = p
        .changes
        .iter()
        .find(|c| c.address == "function.api")
        .unwrap();
    let role = f.changes.iter().find(|c| c.path == "role").unwrap();
    assert_eq!(role.after, Some(PlanValue::Unknown));
    let env = f
        .changes
        .iter()
        .find(|c| c.path == "environment.JOBS_QUEUE_URL")
        .unwrap();
    assert_eq!(env.after, Some(PlanValue::Unknown));
    assert!(render::text(&p, false).contains("role = (known after apply)"));

    w.apply_with(&s, &p, 8).await.unwrap();
    let live = w.provider.live.lock().unwrap().clone();
    assert_eq!(live["function.api"]["role"], live["role.api"]["arn"]);
    assert_eq!(
        live["function.api"]["environment"]["JOBS_QUEUE_URL"],
        "https://queue.test/queue.jobs"
    );

    // Replacing the queue makes the function's URL unknown again, and apply fills it in.
    let s2 = w.service(&SHOP.replace("jobs: { type: queue }", "jobs: { type: queue, fifo: true }"));
    let p = w.plan(&s2).await;
    assert_eq!(action_of(&p, "queue.jobs"), Action::Replace);
    assert_eq!(action_of(&p, "function.api"), Action::Update);
    w.apply_with(&s2, &p, 8).await.unwrap();
    assert!(!w.plan(&s2).await.has_changes());
}

#[tokio::test]
async fn a_failure_in_the_middle_keeps_exactly_what_was_made_and_the_next_run_converges() {
    let w = World::new();
    let yaml = "service: many\nprovider: { runtime: nodejs22 }\nfunctions:\n  a: { handler: a.h }\n  b: { handler: b.h }\n  c: { handler: c.h }\n";
    let s = w.service(yaml);
    *w.provider.fail_on_apply.lock().unwrap() = Some(3);
    *w.provider.fail_message.lock().unwrap() = "AccessDenied: not allowed".into();
    let p = w.plan(&s).await;
    let err = w.apply_with(&s, &p, 1).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, EngineError::ApplyFailed { .. }), "{msg}");
    assert!(
        msg.contains("AccessDenied") && msg.contains("run the same command again"),
        "{msg}"
    );
    // The state holds exactly the live resources.
    assert_eq!(w.state_addresses(&s), w.provider.live_addresses());
    assert_eq!(w.provider.live_addresses().len(), 2);
    // The lock was released.
    assert!(w.backend(&s).lock_info().await.unwrap().is_none());

    // The next run does only what is left.
    w.provider.reset_calls();
    let p = w.plan(&s).await;
    assert_eq!(p.summary.add, 4);
    w.apply_with(&s, &p, 1).await.unwrap();
    assert_eq!(w.provider.calls("create"), 4);
    assert_eq!(w.provider.live_addresses().len(), 6);
    assert!(!w.plan(&s).await.has_changes());
}

#[tokio::test]
async fn a_stale_saved_plan_is_refused_with_the_reason() {
    let w = World::new();
    let s = w.service(SHOP);
    w.deploy(&s).await;
    let s2 = w.service(&SHOP.replace("memory: 256", "memory: 1024"));

    // Saved, read back, and the state moved on: serial.
    let saved = render::json(&w.plan(&s2).await);
    let p = Plan::from_json(&saved).unwrap();
    let noop = w.plan(&s).await;
    w.apply_with(&s, &noop, 8).await.unwrap();
    let before = w.provider.mutating_calls();
    let err = w.apply_with(&s2, &p, 8).await.unwrap_err().to_string();
    assert!(
        err.contains("the saved plan is stale") && err.contains("serial"),
        "{err}"
    );
    assert_eq!(
        w.provider.mutating_calls(),
        before,
        "a stale plan changes nothing"
    );

    // The manifest changed.
    let p = w.plan(&s2).await;
    let s3 = w.service(&SHOP.replace("memory: 256", "memory: 2048"));
    let err = w.apply_with(&s3, &p, 8).await.unwrap_err();
    assert!(err.is_user_error());
    assert!(err.to_string().contains("the manifest changed"), "{err}");

    // An artifact changed.
    let mut w2 = World::new();
    w2.artifacts.functions.insert(
        "api".into(),
        Artifact {
            sha256: "a".repeat(64),
            path: "api.zip".into(),
        },
    );
    let s = w2.service(SHOP);
    let p = w2.plan(&s).await;
    w2.artifacts.functions.get_mut("api").unwrap().sha256 = "b".repeat(64);
    let err = w2.apply_with(&s, &p, 8).await.unwrap_err().to_string();
    assert!(
        err.contains("the package of function `api` changed"),
        "{err}"
    );

    // The lineage changed: the state was recreated.
    let w3 = World::new();
    let s = w3.service(SHOP);
    w3.deploy(&s).await;
    let p = w3.plan(&s2_of(&w3)).await;
    let mut st: serde_json::Value = serde_json::from_str(&w3.state_text(&s)).unwrap();
    st["lineage"] = "00000000-0000-0000-0000-000000000000".into();
    std::fs::write(w3.backend(&s).path(), st.to_string()).unwrap();
    let err = w3
        .apply_with(&s2_of(&w3), &p, 8)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("lineage"), "{err}");

    // A secret changed: the manifest is the same, the resource's inputs are not.
    let mut w4 = World::new();
    w4.secrets.insert("db".into(), "first-value".into());
    let yaml = "service: s\nprovider: { runtime: nodejs22 }\nservices:\n  db: { type: secret }\n";
    let s = w4.service(yaml);
    let p = w4.plan(&s).await;
    w4.secrets.insert("db".into(), "second-value".into());
    let err = w4.apply_with(&s, &p, 8).await.unwrap_err().to_string();
    assert!(err.contains("secret.db's configuration changed"), "{err}");
}

fn s2_of(w: &World) -> Service {
    w.service(&SHOP.replace("memory: 256", "memory: 1024"))
}

#[tokio::test]
async fn a_held_lock_refuses_a_second_deploy_and_names_the_holder() {
    let w = World::new();
    let s = w.service(SHOP);
    let backend = w.backend(&s);
    let mut other = LockInfo::for_this_process("deploy");
    other.holder = "alice".into();
    backend.lock(&other).await.unwrap();

    let p = w.plan(&s).await; // planning does not need the lock
    let err = w.apply_with(&s, &p, 8).await.unwrap_err();
    assert!(matches!(err, EngineError::State(StateError::Locked(_))));
    assert!(err.is_user_error());
    let msg = err.to_string();
    assert!(
        msg.contains("alice@") && msg.contains("ferry state unlock"),
        "{msg}"
    );
    assert_eq!(w.provider.mutating_calls(), 0);

    // The holder (this very process) is alive: unlock wants --force.
    let e = backend.force_unlock(false).await.unwrap_err();
    assert!(matches!(e, StateError::MaybeAlive(_)), "{e}");
    backend.force_unlock(true).await.unwrap();
    w.apply_with(&s, &p, 8).await.unwrap();

    // A lock left by a process that is gone is stale: unlock needs no --force.
    let mut dead = LockInfo::for_this_process("deploy");
    dead.pid = u32::MAX - 1;
    backend.lock(&dead).await.unwrap();
    if dead.holder_is_gone() == Some(true) {
        assert_eq!(backend.force_unlock(false).await.unwrap().pid, dead.pid);
    } else {
        backend.force_unlock(true).await.unwrap();
    }
}

#[tokio::test]
async fn transient_errors_are_retried() {
    let w = World::new();
    let s = w.service(SHOP);
    w.provider
        .transient
        .lock()
        .unwrap()
        .insert("function.api".into(), 2);
    w.deploy(&s).await;
    assert_eq!(w.provider.calls("transient"), 2);
    assert_eq!(w.provider.calls("create"), 3);
    let retries = w
        .events
        .lines()
        .iter()
        .filter(|l| l.contains("retrying in"))
        .count();
    assert_eq!(retries, 2);

    // Out of tries: the error is reported, the rest is saved.
    w.provider
        .transient
        .lock()
        .unwrap()
        .insert("function.api".into(), 10);
    let s2 = w.service(&SHOP.replace("memory: 256", "memory: 128"));
    let p = w.plan(&s2).await;
    let err = w.apply_with(&s2, &p, 8).await.unwrap_err().to_string();
    assert!(err.contains("Throttling"), "{err}");
}

#[tokio::test]
async fn parallelism_is_bounded() {
    let w = World::new();
    let mut yaml = String::from("service: wide\nprovider: { runtime: nodejs22 }\nfunctions:\n");
    for i in 0..12 {
        yaml.push_str(&format!("  f{i}: {{ handler: f.h }}\n"));
    }
    let s = w.service(&yaml);
    *w.provider.delay.lock().unwrap() = Duration::from_millis(15);
    let p = w.plan(&s).await;
    w.apply_with(&s, &p, 3).await.unwrap();
    let max = w.provider.max_in_flight.load(Ordering::SeqCst);
    assert!(max <= 3, "max in flight {max}");
    assert!(max >= 2, "applies should overlap, max in flight {max}");
    assert_eq!(w.provider.calls("create"), 24);
}

#[tokio::test]
async fn drift_is_shown_and_put_back() {
    let w = World::new();
    let s = w.service(SHOP);
    w.deploy(&s).await;
    w.provider.drift("function.api", "memory", 4096.into());
    let p = w.plan(&s).await;
    let c = p
        .changes
        .iter()
        .find(|c| c.address == "function.api")
        .unwrap();
    assert_eq!(c.action, Action::Update);
    let d = c.drift.as_ref().expect("drift recorded");
    assert_eq!(d.changes[0].after, Some(PlanValue::Known(4096.into())));
    assert_eq!(c.changes[0].before, Some(PlanValue::Known(4096.into())));
    assert_eq!(c.changes[0].after, Some(PlanValue::Known(256.into())));
    assert_eq!(p.summary.drift, 1);

    // Without refresh the drift is not seen.
    let p2 = w
        .plan_with(
            &s,
            PlanOptions {
                refresh: false,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(!p2.has_changes());

    w.apply_with(&s, &p, 8).await.unwrap();
    assert_eq!(
        w.provider.live.lock().unwrap()["function.api"]["memory"],
        256
    );

    // Deleted outside ferry: made again.
    w.provider.vanish("role.api");
    let p = w.plan(&s).await;
    assert_eq!(action_of(&p, "role.api"), Action::Create);
    assert!(
        p.changes
            .iter()
            .find(|c| c.address == "role.api")
            .unwrap()
            .drift
            .as_ref()
            .unwrap()
            .gone
    );
    w.apply_with(&s, &p, 8).await.unwrap();
    assert!(!w.plan(&s).await.has_changes());
}

#[tokio::test]
async fn target_limits_the_plan() {
    let w = World::new();
    let yaml = "service: t\nprovider: { runtime: nodejs22 }\nfunctions:\n  a: { handler: a.h, memory: 128 }\n  b: { handler: b.h, memory: 128 }\n";
    let s = w.service(yaml);
    w.deploy(&s).await;
    let s2 = w.service(&yaml.replace("memory: 128", "memory: 256"));
    let p = w
        .plan_with(
            &s2,
            PlanOptions {
                targets: vec!["a".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let addrs: Vec<&str> = p.changes.iter().map(|c| c.address.as_str()).collect();
    assert_eq!(addrs, ["role.a", "function.a"]);
    assert_eq!(p.summary.change, 1);
    w.apply_with(&s2, &p, 8).await.unwrap();
    assert_eq!(w.provider.live.lock().unwrap()["function.b"]["memory"], 128);

    let err = w
        .plan_with(
            &s2,
            PlanOptions {
                targets: vec!["nope".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(err.is_user_error());
    assert!(
        err.to_string()
            .contains("no such function; functions: a, b"),
        "{err}"
    );
}

#[tokio::test]
async fn a_secret_never_appears_in_plans_state_or_logs() {
    let mut w = World::new();
    w.secrets.insert("db-password".into(), SECRET.into());
    let yaml = format!(
        "service: vault\nprovider: {{ runtime: nodejs22 }}\nservices:\n  db-password: {{ type: secret }}\nfunctions:\n  api:\n    handler: a.h\n    uses: [db-password]\n    environment:\n      PLACED_IN_MANIFEST: {SECRET}\n      SALTED: prefix-{SECRET}-suffix\n"
    );
    let s = w.service(&yaml);
    // The provider's error message quotes the secret, as real APIs sometimes do.
    *w.provider.fail_on_apply.lock().unwrap() = Some(3);
    *w.provider.fail_message.lock().unwrap() =
        format!("ValidationError: value {SECRET} is invalid");

    let p = w.plan(&s).await;
    let outputs = [
        render::text(&p, false),
        render::text(&p, true),
        render::json(&p),
        render::markdown(&p),
    ];
    let err = w.apply_with(&s, &p, 1).await.unwrap_err().to_string();
    let p2 = w.plan(&s).await;
    w.apply_with(&s, &p2, 1).await.unwrap();
    // Change the secret: an update, still hidden.
    w.secrets
        .insert("db-password".into(), format!("{SECRET}-v2"));
    let p3 = w.plan(&s).await;
    assert_eq!(action_of(&p3, "secret.db-password"), Action::Update);
    let c = p3
        .changes
        .iter()
        .find(|c| c.address == "secret.db-password")
        .unwrap();
    assert_eq!(c.changes[0].before, Some(PlanValue::Sensitive));
    assert_eq!(c.changes[0].after, Some(PlanValue::Sensitive));
    w.apply_with(&s, &p3, 1).await.unwrap();
    // The live function did get the value (redaction is for outputs only).
    assert_eq!(
        w.provider.live.lock().unwrap()["function.api"]["environment"]["DB_PASSWORD_VALUE"],
        format!("{SECRET}-v2")
    );

    let everything = [
        outputs.join("\n"),
        render::text(&p2, false),
        render::json(&p3),
        render::markdown(&p3),
        err,
        w.state_text(&s),
        w.events.lines().join("\n"),
    ];
    for (i, text) in everything.iter().enumerate() {
        assert!(
            !text.contains(SECRET),
            "output {i} leaks the secret:\n{text}"
        );
        assert!(
            !text.contains("hunter2"),
            "output {i} leaks part of the secret"
        );
    }
    assert!(outputs[0].contains("(sensitive)"));
    assert!(w
        .events
        .lines()
        .iter()
        .any(|l| l.contains("ValidationError: value (sensitive) is invalid")));

    // Only the explicit flag shows it, and never in the state.
    let shown = w
        .plan_with(
            &s,
            PlanOptions {
                reveal_sensitive: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(shown.sensitive_revealed);
    let s_noop = render::json(&shown);
    assert!(!s_noop.contains("\"kind\": \"sensitive\""), "{s_noop}");
    assert!(!w.state_text(&s).contains(SECRET));
}

#[tokio::test]
async fn revealed_values_show_on_request() {
    let mut w = World::new();
    w.secrets.insert("db".into(), SECRET.into());
    let s = w.service(
        "service: v\nprovider: { runtime: nodejs22 }\nservices:\n  db: { type: secret }\n",
    );
    let p = w
        .plan_with(
            &s,
            PlanOptions {
                reveal_sensitive: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(render::text(&p, false).contains(SECRET));
    w.apply_with(&s, &p, 1).await.unwrap();
    assert!(!w.state_text(&s).contains(SECRET));
}
