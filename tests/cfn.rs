//! The CloudFormation template of the AWS provider: snapshots for the examples, and `cfn-lint`
//! (PyPI, from the venv of scripts/test.sh) over the examples and every AWS file of
//! `../shared/corpus/sf-examples` that ferry loads: no errors allowed.

mod common;

use ferry_core::engine::{Artifact, Artifacts};
use ferry_core::{load, LoadOptions, Service};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn load_service(manifest: &Path, lenient: bool) -> Option<Service> {
    load_full(manifest, lenient).map(|l| l.service)
}

fn load_full(manifest: &Path, lenient: bool) -> Option<ferry_core::Loaded> {
    let env: HashMap<String, String> = [("HOME", "/home/user")]
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    let opts = LoadOptions {
        config: Some(manifest.to_owned()),
        cwd: manifest.parent().unwrap().to_owned(),
        env: Some(env),
        stage: Some("dev".into()),
        allow_unresolved: lenient,
        ..Default::default()
    };
    load(&opts).ok()
}

fn example(name: &str) -> Service {
    load_service(
        &root().join("examples").join(name).join("serverless.yaml"),
        false,
    )
    .unwrap_or_else(|| panic!("example {name} loads"))
}

fn zips(s: &Service) -> BTreeMap<String, String> {
    s.functions
        .keys()
        .map(|f| (f.clone(), format!("{f}.zip")))
        .collect()
}

#[test]
fn example_templates() {
    for name in ["hello-http", "queue-worker", "rust-api"] {
        let s = example(name);
        let (t, notes) = ferry_aws::template::template(&s, &zips(&s));
        insta::assert_json_snapshot!(format!("template-{name}"), t);
        if name == "queue-worker" {
            assert!(
                notes.iter().any(|n| n.contains("without a value")),
                "{notes:?}"
            );
        }
    }
}

/// The resources of the direct deploy, for review: addresses, kinds, attributes, references.
#[test]
fn example_resources() {
    for name in ["hello-http", "queue-worker"] {
        let s = example(name);
        let artifacts = Artifacts {
            functions: s
                .functions
                .keys()
                .map(|f| {
                    (
                        f.clone(),
                        Artifact {
                            sha256:
                                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
                                    .into(),
                            path: PathBuf::from(format!("{f}.zip")),
                        },
                    )
                })
                .collect(),
        };
        let secrets = [("api-token".to_owned(), "v".to_owned())].into();
        let resources = ferry_aws::compile::compile(&s, &artifacts, &secrets).unwrap();
        insta::assert_json_snapshot!(format!("resources-{name}"), resources);
    }
}

#[test]
fn cfn_lint_finds_no_errors() {
    let python = std::env::var("FERRY_TEST_PYTHON").expect(
        "FERRY_TEST_PYTHON is set by scripts/test.sh (a venv with cfn-lint); run the tests through it",
    );
    let out = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for name in ["hello-http", "queue-worker", "rust-api"] {
        let s = example(name);
        let path = out.path().join(format!("example-{name}.json"));
        let (t, _) = ferry_aws::template::template(&s, &zips(&s));
        std::fs::write(&path, serde_json::to_string_pretty(&t).unwrap()).unwrap();
        files.push(path);
    }
    let corpus = root().join("../shared/corpus/sf-examples");
    let mut manifests = Vec::new();
    common::manifests(&corpus, &mut manifests);
    let mut corpus_files = 0;
    // Templates whose functions use a runtime AWS no longer creates: ferry warns about it when
    // it loads the file (`runtime-deprecated`), and cfn-lint rightly reports it too.
    let mut deprecated_runtime = std::collections::BTreeSet::new();
    for m in &manifests {
        // Only files whose variables all resolve: a template with `${file(...)}` left in it
        // is not what anyone would deploy.
        let Some(l) = load_full(m, false) else {
            continue;
        };
        let rel = m.strip_prefix(&corpus).unwrap().parent().unwrap();
        let file = format!(
            "corpus-{}.json",
            rel.display().to_string().replace('/', "_")
        );
        let path = out.path().join(&file);
        let (t, _) = ferry_aws::template::template(&l.service, &zips(&l.service));
        std::fs::write(&path, serde_json::to_string_pretty(&t).unwrap()).unwrap();
        if l.warnings.iter().any(|w| w.code == "runtime-deprecated") {
            deprecated_runtime.insert(file);
        }
        files.push(path);
        corpus_files += 1;
    }
    assert!(
        corpus_files >= 70,
        "only {corpus_files} corpus files loaded"
    );

    let cfn_lint = Path::new(&python).with_file_name("cfn-lint");
    let lint = Command::new(cfn_lint)
        .args(["--format", "json", "--regions", "us-east-1", "--"])
        .args(&files)
        .output()
        .expect("running cfn-lint");
    let found: Vec<Value> = serde_json::from_slice(&lint.stdout).unwrap_or_else(|e| {
        panic!(
            "cfn-lint printed no JSON ({e}): {}",
            String::from_utf8_lossy(&lint.stderr)
        )
    });
    let file_of = |m: &Value| {
        Path::new(m["Filename"].as_str().unwrap_or(""))
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let (runtime_errors, others): (Vec<&Value>, Vec<&Value>) = found
        .iter()
        .filter(|m| m["Level"] == "Error")
        .partition(|m| {
            matches!(m["Rule"]["Id"].as_str(), Some("E2531" | "E2533"))
                && deprecated_runtime.contains(&file_of(m))
        });
    let errors: Vec<String> = others
        .into_iter()
        .map(|m| {
            format!(
                "{} {}: {} ({})",
                file_of(m),
                m["Rule"]["Id"].as_str().unwrap_or(""),
                m["Message"].as_str().unwrap_or(""),
                m["Location"]["Path"]
            )
        })
        .collect();
    println!(
        "cfn-lint: {} templates ({} from the corpus), {} findings, {} errors; {} more are runtimes AWS no longer creates, which ferry warns about when it loads those {} files",
        files.len(),
        corpus_files,
        found.len(),
        errors.len(),
        runtime_errors.len(),
        deprecated_runtime.len()
    );
    assert!(errors.is_empty(), "cfn-lint errors:\n{}", errors.join("\n"));
}
