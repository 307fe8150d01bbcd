//! Snapshots of a plan with every action (create, update, replace, delete, no-op, drift,
//! sensitive and unknown values) as text, JSON and Markdown, and the Markdown size limit.

mod support;

use ferry_core::engine::plan::{AttributeChange, Summary};
use ferry_core::engine::render;
use ferry_core::engine::{
    apply, plan, Action, ApplyOptions, Artifacts, Inputs, LocalBackend, NoEvents, Plan,
    PlanOptions, PlanValue, ResourceChange, SecretValues,
};
use support::{load, TestProvider};

const BEFORE: &str = "service: shop
provider: { runtime: nodejs22 }
services:
  db: { type: secret }
  jobs: { type: queue }
functions:
  a: { handler: a.h, uses: [jobs, db] }
  b: { handler: b.h }
  c: { handler: c.h, memory: 128 }
";

const AFTER: &str = "service: shop
provider: { runtime: nodejs22 }
services:
  db: { type: secret }
  jobs: { type: queue, fifo: true }
functions:
  a: { handler: a.h, uses: [jobs, db], memory: 512 }
  c: { handler: c.h, memory: 128 }
  d: { handler: d.h }
";

/// A plan with every kind of change, made for real through the engine.
async fn every_action_plan() -> Plan {
    let dir = tempfile::tempdir().unwrap();
    let provider = TestProvider::new();
    let artifacts = Artifacts::default();
    let mut secrets = SecretValues::new();
    secrets.insert("db".into(), "first-secret-value".into());
    let s = load(dir.path(), BEFORE);
    let backend = LocalBackend::new(dir.path(), "shop", "dev", "test");
    let inputs = Inputs {
        service: &s,
        artifacts: &artifacts,
        secrets: &secrets,
    };
    let p = plan(
        &provider,
        &inputs,
        &backend,
        &PlanOptions::default(),
        &NoEvents,
    )
    .await
    .unwrap();
    let opts = ApplyOptions {
        parallelism: 1,
        ..Default::default()
    };
    apply(&provider, &inputs, &backend, &p, &opts, &NoEvents)
        .await
        .unwrap();

    provider.drift("function.c", "memory", 999.into());
    secrets.insert("db".into(), "second-secret-value".into());
    let s = load(dir.path(), AFTER);
    let inputs = Inputs {
        service: &s,
        artifacts: &artifacts,
        secrets: &secrets,
    };
    plan(
        &provider,
        &inputs,
        &backend,
        &PlanOptions::default(),
        &NoEvents,
    )
    .await
    .unwrap()
}

fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.add_filter(r"sha256:[0-9a-f]{64}", "sha256:[hash]");
    s.add_filter(r#""salt": "[0-9a-f]{32}""#, r#""salt": "[salt]""#);
    s.add_filter(
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        "[uuid]",
    );
    // How many writes an apply takes depends on how its calls overlap.
    s.add_filter(r"state serial \d+", "state serial [n]");
    s.add_filter(r#""serial": \d+"#, r#""serial": [n]"#);
    s
}

#[tokio::test]
async fn every_action_renders() {
    let p = every_action_plan().await;
    let actions: std::collections::BTreeSet<Action> = p.changes.iter().map(|c| c.action).collect();
    assert_eq!(
        actions.len(),
        5,
        "the fixture must hold every action: {actions:?}"
    );
    assert!(p.changes.iter().any(|c| c.drift.is_some()));
    let all: Vec<&AttributeChange> = p.changes.iter().flat_map(|c| &c.changes).collect();
    assert!(all.iter().any(|c| c.after == Some(PlanValue::Sensitive)));
    assert!(all.iter().any(|c| c.after == Some(PlanValue::Unknown)));

    let text = render::text(&p, false);
    let json = render::json(&p);
    let md = render::markdown(&p);
    for out in [&text, &json, &md] {
        assert!(!out.contains("secret-value"), "a secret leaked:\n{out}");
    }
    // Summary line outside <details>, marker first, deletions and replacements first.
    assert!(md.starts_with("<!-- ferry-plan: shop/dev/test -->\n"));
    let summary = md.find("Plan: ").unwrap();
    assert!(summary < md.find("<details>").unwrap());
    let pos = |s: &str| md.find(s).unwrap_or_else(|| panic!("{s} missing"));
    assert!(pos("| `function.b`") < pos("| `queue.jobs`"));
    assert!(pos("| `queue.jobs`") < pos("| `function.d`"));
    assert!(pos("#### Drift") < pos("<summary>Details</summary>"));
    // Colour only on request.
    assert!(!text.contains('\x1b'));
    assert!(render::text(&p, true).contains("\x1b[31m"));

    settings().bind(|| {
        insta::assert_snapshot!("plan_text", text);
        insta::assert_snapshot!("plan_json", json);
        insta::assert_snapshot!("plan_markdown", md);
    });
}

#[test]
fn markdown_is_cut_below_the_limit_with_a_note() {
    let changes: Vec<ResourceChange> = (0..5000)
        .map(|i| ResourceChange {
            address: format!("function.f{i:05}"),
            kind: "aws:lambda:function".into(),
            action: if i % 10 == 0 {
                Action::Delete
            } else {
                Action::Update
            },
            function: None,
            changes: (0..3)
                .map(|k| AttributeChange {
                    path: format!("environment.VARIABLE_{k}"),
                    before: Some(PlanValue::Known("x".repeat(40).into())),
                    after: Some(PlanValue::Known("y".repeat(40).into())),
                    forces_replacement: false,
                })
                .collect(),
            drift: None,
            depends_on: vec![],
            desired_hash: None,
        })
        .collect();
    let p = Plan {
        format_version: 1,
        ferry_version: "0".into(),
        service: "huge".into(),
        stage: "dev".into(),
        provider: "aws".into(),
        destroy: false,
        targets: vec![],
        refreshed: true,
        sensitive_revealed: false,
        state: None,
        manifest_hash: String::new(),
        artifacts: Default::default(),
        salt: String::new(),
        summary: Summary::of(&changes),
        changes,
        checks: vec![],
    };
    let md = render::markdown(&p);
    assert!(
        md.chars().count() < 65_000,
        "{} characters",
        md.chars().count()
    );
    assert!(
        md.len() > 50_000,
        "the budget should be used, got {}",
        md.len()
    );
    assert!(
        md.contains("Plan: 500 to add")
            || md.contains("Plan: 0 to add, 4500 to change, 500 to destroy.")
    );
    assert!(
        md.contains("This comment was cut to stay under 65,000 characters"),
        "{}",
        &md[md.len() - 400..]
    );
    assert!(md.contains("table rows") || md.contains("attribute details"));
    // Balanced folding even when cut.
    assert_eq!(
        md.matches("<details>").count(),
        md.matches("</details>").count()
    );
    assert_eq!(md.matches("```").count() % 2, 0);
    // Deletions come first even when cut.
    assert!(md.find("function.f00000").unwrap() < md.find("function.f00001").unwrap_or(usize::MAX));
}
