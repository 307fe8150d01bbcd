//! Reads every Serverless Framework manifest of `../shared/corpus/sf-examples` and reports how
//! many ferry accepts. AWS files must validate (≥ 90%) or be refused with a located
//! unsupported-feature error; files for other providers must be refused; nothing may panic.

mod common;

use ferry_core::diag::Diag;
use ferry_core::{load, LoadOptions};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn corpus_dir() -> Option<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/sf-examples");
    d.is_dir().then_some(d)
}

#[derive(Debug, PartialEq)]
enum Outcome {
    Valid,
    AwsRefused,
    ForeignRefused,
}

#[test]
fn serverless_framework_corpus() {
    let Some(dir) = corpus_dir() else {
        panic!("the corpus is expected at ../shared/corpus/sf-examples (beside the project)");
    };
    let mut files = Vec::new();
    common::manifests(&dir, &mut files);
    assert!(
        files.len() > 100,
        "corpus looks incomplete: {} files",
        files.len()
    );
    // A fixed environment, so that the result does not depend on the machine.
    let env: HashMap<String, String> = [("HOME", "/home/user")]
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    let mut outcomes = Vec::new();
    let mut strict_valid = 0;
    let mut refusal_reasons: HashMap<&'static str, usize> = HashMap::new();
    for f in &files {
        let rel = f.strip_prefix(&dir).unwrap().display().to_string();
        // As `ferry validate -s dev`: several files say `stage: ${opt:stage}` and need it.
        let opts = LoadOptions {
            config: Some(f.clone()),
            cwd: f.parent().unwrap().to_owned(),
            env: Some(env.clone()),
            stage: Some("dev".into()),
            ..Default::default()
        };
        let strict = std::panic::catch_unwind(|| load(&opts))
            .unwrap_or_else(|_| panic!("ferry panicked on {rel}"));
        if strict.is_ok() {
            strict_valid += 1;
        } else if let Err(f) = &strict {
            for e in f
                .diags
                .iter()
                .filter(|d| d.is_error() && d.code == "variable-missing")
            {
                println!("  needs an outside value {rel}: {}", e.message);
            }
        }
        // As `ferry validate -s dev --allow-unresolved`: secrets files and environment
        // variables that the public repository does not hold are kept as written.
        let lenient = LoadOptions {
            allow_unresolved: true,
            ..opts
        };
        let result = std::panic::catch_unwind(|| load(&lenient))
            .unwrap_or_else(|_| panic!("ferry panicked on {rel}"));
        let outcome = match result {
            Ok(_) => Outcome::Valid,
            Err(failure) => {
                let errors: Vec<&Diag> = failure.diags.iter().filter(|d| d.is_error()).collect();
                assert!(!errors.is_empty(), "{rel}: refused without an error");
                for e in &errors {
                    assert!(
                        e.span.is_some(),
                        "{rel}: refusal without a line: {}",
                        e.message
                    );
                }
                let foreign = errors.iter().any(|e| e.code == "unsupported-provider");
                if foreign {
                    Outcome::ForeignRefused
                } else {
                    for e in &errors {
                        *refusal_reasons.entry(e.code).or_default() += 1;
                        println!(
                            "  refused {rel}: {} ({}) at {}",
                            e.message,
                            e.code,
                            failure.sources.location(e.span.unwrap())
                        );
                    }
                    Outcome::AwsRefused
                }
            }
        };
        outcomes.push(outcome);
    }
    let count = |o: Outcome| outcomes.iter().filter(|x| **x == o).count();
    let (valid, aws_refused, foreign) = (
        count(Outcome::Valid),
        count(Outcome::AwsRefused),
        count(Outcome::ForeignRefused),
    );
    let aws = valid + aws_refused;
    let pct = 100.0 * valid as f64 / aws as f64;
    println!("files read: {}", files.len());
    println!("AWS files that validate: {valid} of {aws} ({pct:.1}%) with --allow-unresolved; {strict_valid} ({:.1}%) when missing outside values are errors", 100.0 * strict_valid as f64 / aws as f64);
    println!("AWS files refused with a precise unsupported-feature error: {aws_refused} {refusal_reasons:?}");
    println!("non-AWS files refused: {foreign}");
    assert!(pct >= 90.0, "only {pct:.1}% of AWS files validate");
    // Every refusal of an AWS file must be one of the deliberate, documented kinds.
    for code in refusal_reasons.keys() {
        assert!(
            [
                "unsupported-feature",
                "unknown-runtime",
                "config-format",
                "name-too-long"
            ]
            .contains(code),
            "unexpected refusal kind {code}"
        );
    }
}
