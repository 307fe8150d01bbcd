//! End-to-end tests of the real `ferry` binary: exit codes, error rendering, JSON output,
//! the committed schema, and the examples.

use assert_cmd::Command;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn ferry(dir: &Path, args: &[&str]) -> Run {
    let out = Command::cargo_bin("ferry")
        .unwrap()
        .current_dir(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("FERRY_STAGE")
        .env_remove("GOOGLE_CLOUD_PROJECT")
        .env_remove("CLOUDSDK_CORE_PROJECT")
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn write_manifest(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("serverless.yaml"), text).unwrap();
    dir
}

fn examples() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("examples"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("serverless.yaml").is_file())
        .collect();
    v.sort();
    v
}

#[test]
fn every_example_validates() {
    let ex = examples();
    assert!(
        ex.len() >= 3,
        "expected at least three examples, found {ex:?}"
    );
    for dir in ex {
        let r = ferry(&dir, &["validate"]);
        assert_eq!(r.code, 0, "{}: {}{}", dir.display(), r.stdout, r.stderr);
        assert!(r.stdout.contains("is valid"), "{}", r.stdout);
    }
}

#[test]
fn misspelled_key_points_at_line_and_column_and_suggests_the_fix() {
    let dir = write_manifest("service: shop\nprovider:\n  runtime: nodejs22\nfunctions:\n  api:\n    handlr: src/api.handler\n");
    let r = ferry(dir.path(), &["validate"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("serverless.yaml:6:5"), "{}", r.stderr);
    assert!(r.stderr.contains("did you mean `handler`?"), "{}", r.stderr);
    insta::assert_snapshot!(r.stderr);
    // Nothing was written next to the manifest.
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(files, vec![std::ffi::OsString::from("serverless.yaml")]);
}

#[test]
fn json_diagnostics_for_scripts() {
    let dir = write_manifest("service: shop\nprovider:\n  runtime: nodejs22\nfunctions:\n  api:\n    handlr: src/api.handler\n");
    let r = ferry(dir.path(), &["validate", "--format", "json"]);
    assert_eq!(r.code, 2);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["valid"], false);
    let d = &v["diagnostics"][0];
    assert_eq!(
        (d["line"].as_u64(), d["column"].as_u64()),
        (Some(6), Some(5))
    );
    assert_eq!(d["code"], "unknown-key");
    assert_eq!(d["help"], "did you mean `handler`?");
    assert_eq!(d["file"], "serverless.yaml");
}

#[test]
fn print_resolves_variables_and_params() {
    let dir = write_manifest(
        "service: shop\nprovider:\n  runtime: nodejs22\n  environment:\n    STAGE: ${sls:stage}\n    KEEP: ${param:retention}\n    HOME_DIR: ${env:FERRY_TEST_HOME, 'none'}\nparams:\n  default: { retention: 7 }\n  prod: { retention: 30 }\nfunctions:\n  api:\n    handler: api.handler\n",
    );
    let r = ferry(dir.path(), &["-s", "prod", "print", "--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        v["provider"]["environment"],
        serde_json::json!({"STAGE": "prod", "KEEP": 30, "HOME_DIR": "none"})
    );
    let r = ferry(
        dir.path(),
        &[
            "--param",
            "retention=90",
            "print",
            "--model",
            "--format",
            "json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["stage"], "dev");
    assert_eq!(v["functions"]["api"]["environment"]["KEEP"], "90");
    // YAML output reads back as the same document.
    let y = ferry(dir.path(), &["print"]);
    assert!(y.stdout.contains("STAGE: dev"), "{}", y.stdout);
}

#[test]
fn config_flag_and_missing_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let r = ferry(dir.path(), &["validate"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no serverless.yaml"), "{}", r.stderr);
    let ex = root().join("examples/hello-http/serverless.yaml");
    let r = ferry(dir.path(), &["-c", ex.to_str().unwrap(), "validate"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn foreign_provider_is_one_clear_error() {
    let dir = write_manifest("service: x\nprovider:\n  name: openwhisk\nfunctions:\n  a:\n    handler: a.main\n    events:\n      - http: GET /a\n");
    let r = ferry(dir.path(), &["validate", "--format", "json"]);
    assert_eq!(r.code, 2);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let diags = v["diagnostics"].as_array().unwrap();
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(diags[0]["code"], "unsupported-provider");
    assert_eq!(diags[0]["line"], 3);
}

#[test]
fn committed_schema_is_current() {
    let r = ferry(&root(), &["schema"]);
    assert_eq!(r.code, 0);
    let committed =
        std::fs::read_to_string(root().join("schema/serverless.schema.json")).unwrap_or_default();
    assert!(
        committed.trim() == r.stdout.trim(),
        "schema/serverless.schema.json is stale: run `cargo run -- schema > schema/serverless.schema.json`"
    );
}

#[test]
fn examples_match_the_json_schema() {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("schema/serverless.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    for dir in examples() {
        let text = std::fs::read_to_string(dir.join("serverless.yaml")).unwrap();
        let doc = ferry_core::yaml::parse(&text, 0).unwrap().to_json();
        let errors: Vec<String> = validator
            .iter_errors(&doc)
            .map(|e| format!("{} at {}", e, e.instance_path))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:?}", dir.display());
    }
    // And the schema rejects what ferry rejects.
    let bad = serde_json::json!({"service": "x", "functions": {"a": {"handlr": "a.h"}}});
    assert!(!validator.is_valid(&bad));
}

#[test]
fn completions_and_help() {
    let r = ferry(&root(), &["completions", "bash"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("validate") && r.stdout.contains("--stage"));
    let r = ferry(&root(), &["--help"]);
    assert!(r.stdout.contains("Examples:"));
    let r = ferry(&root(), &["--version"]);
    assert!(r.stdout.starts_with("ferry "));
    let r = ferry(&root(), &["--param", "novalue", "validate"]);
    assert_eq!(r.code, 2, "bad usage exits 2");
}

/// A reader that closes the pipe early (`ferry print | head`) ends ferry as it ends a Unix
/// tool: status 141, no panic, no message.
#[test]
fn a_closed_stdout_ends_ferry_quietly() {
    for args in [
        &["completions", "bash"][..],
        &["schema"],
        &["-c", "examples/hello-http/serverless.yaml", "print"],
    ] {
        // The pipe's read end is closed before ferry even starts.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
            .current_dir(root())
            .args(args)
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(141), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
}

fn fixture(name: &str) -> PathBuf {
    root().join("tests").join("fixtures").join(name)
}

#[test]
fn show_renders_a_saved_plan_in_every_format_without_a_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let plan = fixture("plan.json");
    let plan = plan.to_str().unwrap();
    let text = ferry(dir.path(), &["show", plan]);
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(text
        .stdout
        .contains("Plan: 3 to add, 3 to change, 3 to destroy."));
    assert!(text.stdout.contains("-/+ queue.jobs"));
    assert!(
        !text.stdout.contains('\x1b'),
        "no colour without a terminal"
    );

    let md = ferry(dir.path(), &["show", plan, "--format", "markdown"]);
    assert_eq!(md.code, 0, "{}", md.stderr);
    assert!(md.stdout.starts_with("<!-- ferry-plan: shop/dev/test -->"));
    assert!(md.stdout.contains("<details>"));

    let json = ferry(dir.path(), &["show", plan, "--format", "json"]);
    assert_eq!(json.code, 0);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["format_version"], 1);

    std::fs::write(dir.path().join("bad.json"), r#"{"format_version": 99}"#).unwrap();
    let bad = ferry(dir.path(), &["show", "bad.json"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("format_version 99"), "{}", bad.stderr);
}

#[test]
fn state_list_show_and_unlock() {
    let dir = write_manifest("service: shop\nprovider: { name: aws, runtime: nodejs22 }\nfunctions:\n  api: { handler: a.h }\n");
    let r = ferry(dir.path(), &["state", "list"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("nothing deployed yet"), "{}", r.stderr);

    let state_dir = dir.path().join(".ferry").join("state");
    std::fs::create_dir_all(&state_dir).unwrap();
    std::fs::write(
        state_dir.join("shop-dev-aws.json"),
        r#"{"version":1,"lineage":"l","serial":4,"ferry_version":"0.1.0","service":"shop","stage":"dev","provider":"aws","salt":"s","resources":{"function.api":{"kind":"aws:lambda:function","function":"api","inputs":{"memory":256},"outputs":{"arn":"arn:x"},"hash":"sha256:0"}}}"#,
    )
    .unwrap();
    let r = ferry(dir.path(), &["state", "list"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "function.api\taws:lambda:function\n");
    let r = ferry(dir.path(), &["state", "show", "function.api"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("\"arn\": \"arn:x\""), "{}", r.stdout);
    let r = ferry(dir.path(), &["state", "show", "function.nope"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("ferry state list"), "{}", r.stderr);

    // No lock: an error. Another host's lock: only with --force.
    let r = ferry(dir.path(), &["state", "unlock"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("not locked"), "{}", r.stderr);
    std::fs::write(
        state_dir.join("shop-dev-aws.lock"),
        r#"{"id":"x","holder":"alice","operation":"deploy","pid":4294967294,"host":"some-other-host","created":"2025-01-01T00:00:00Z","ferry_version":"0.1.0"}"#,
    )
    .unwrap();
    let r = ferry(dir.path(), &["state", "unlock"]);
    assert_eq!(r.code, 2, "another host's lock needs --force");
    assert!(
        r.stderr.contains("alice@some-other-host") && r.stderr.contains("--force"),
        "{}",
        r.stderr
    );
    let r = ferry(dir.path(), &["state", "unlock", "--force"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!state_dir.join("shop-dev-aws.lock").exists());
}

#[test]
fn plan_says_what_the_provider_is_missing() {
    let dir = write_manifest("service: shop\nprovider: { name: gcp, runtime: nodejs22 }\nfunctions:\n  api: { handler: a.h }\n");
    let r = ferry(dir.path(), &["plan"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("no Google Cloud project: set GOOGLE_CLOUD_PROJECT or provider.gcp.project"),
        "{}",
        r.stderr
    );
    let r = ferry(dir.path(), &["plan", "--provider", "local"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("`ferry dev` serves"), "{}", r.stderr);
    // With --detailed-exitcode, 2 means "changes" only: errors exit 1.
    let r = ferry(
        dir.path(),
        &["plan", "--detailed-exitcode", "--target", "x"],
    );
    assert_eq!(r.code, 1);
    let bad = write_manifest("service: shop\nfunctions:\n  api: { handlr: a.h }\n");
    assert_eq!(ferry(bad.path(), &["plan", "--provider", "aws"]).code, 2);
    assert_eq!(
        ferry(
            bad.path(),
            &["plan", "--provider", "aws", "--detailed-exitcode"]
        )
        .code,
        1
    );
    let r = ferry(dir.path(), &["deploy", "--parallelism", "0"]);
    assert_eq!(r.code, 2, "parallelism 0 is a usage error");
}
