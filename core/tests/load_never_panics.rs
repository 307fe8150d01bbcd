//! Property test over the whole loading pipeline: manifests built from random fragments of
//! both dialects (valid keys, wrong types, variables, CloudFormation tags) load or fail with
//! diagnostics that point into the file, and never panic.

use ferry_core::{load, LoadOptions};
use proptest::prelude::*;

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("nodejs22".to_owned()),
        Just("python3.12".to_owned()),
        Just("rate(5 minutes)".to_owned()),
        Just("cron(0 12 * * ? *)".to_owned()),
        Just("GET /a/{id}".to_owned()),
        Just("${self:service}".to_owned()),
        Just("${opt:stage, 'dev'}".to_owned()),
        Just("${env:NOPE}".to_owned()),
        Just("!Ref Thing".to_owned()),
        Just("!GetAtt A.Arn".to_owned()),
        Just("[]".to_owned()),
        Just("{}".to_owned()),
        Just("~".to_owned()),
        (0u32..20000).prop_map(|n| n.to_string()),
        "[a-z]{1,8}",
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("handler".to_owned()),
        Just("runtime".to_owned()),
        Just("memory".to_owned()),
        Just("memorySize".to_owned()),
        Just("timeout".to_owned()),
        Just("uses".to_owned()),
        Just("events".to_owned()),
        Just("triggers".to_owned()),
        Just("environment".to_owned()),
        "[a-z]{1,6}",
    ]
}

fn trigger() -> impl Strategy<Value = String> {
    (
        prop_oneof![
            Just("http"),
            Just("queue"),
            Just("schedule"),
            Just("storage"),
            Just("topic"),
            Just("httpApi"),
            Just("sqs"),
            Just("s3"),
            Just("sns")
        ],
        value(),
    )
        .prop_map(|(k, v)| format!("      - {k}: {v}\n"))
}

fn manifest() -> impl Strategy<Value = String> {
    let provider = prop_oneof![
        Just("aws"),
        Just("azure"),
        Just("gcp"),
        Just("openwhisk"),
        Just("nope")
    ];
    let services = prop::collection::vec(
        (
            prop_oneof![
                Just("queue"),
                Just("bucket"),
                Just("table"),
                Just("topic"),
                Just("secret"),
                Just("qeue")
            ],
            "[a-z]{1,5}",
        ),
        0..4,
    );
    let functions = prop::collection::vec(
        (
            "[a-z]{1,6}",
            prop::collection::vec((key(), value()), 0..4),
            prop::collection::vec(trigger(), 0..4),
            any::<bool>(),
        ),
        0..4,
    );
    (provider, services, functions).prop_map(|(p, services, functions)| {
        let mut s = format!("service: svc\nprovider:\n  name: {p}\n  runtime: nodejs22\n");
        if !services.is_empty() {
            s.push_str("services:\n");
            for (t, n) in services {
                s.push_str(&format!("  {n}: {{ type: {t} }}\n"));
            }
        }
        s.push_str("functions:\n");
        for (name, keys, triggers, sf) in functions {
            s.push_str(&format!("  {name}:\n    handler: h.main\n"));
            for (k, v) in keys {
                if k != "handler" && k != "events" && k != "triggers" {
                    s.push_str(&format!("    {k}: {v}\n"));
                }
            }
            if !triggers.is_empty() {
                s.push_str(if sf {
                    "    events:\n"
                } else {
                    "    triggers:\n"
                });
                for t in triggers {
                    s.push_str(&t);
                }
            }
        }
        s
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn loading_never_panics_and_errors_have_locations(text in manifest()) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("serverless.yaml"), &text).unwrap();
        let opts = LoadOptions { cwd: dir.path().to_owned(), env: Some(Default::default()), ..Default::default() };
        if let Err(f) = load(&opts) {
            prop_assert!(f.diags.iter().any(|d| d.is_error()));
            for d in f.diags.iter().filter(|d| d.is_error()) {
                prop_assert!(d.span.is_some(), "error without a location: {} in\n{}", d.message, text);
            }
        }
    }
}
