//! Golden files: each `tests/ui/*.yaml` is a manifest; its snapshot holds either the model ferry
//! lowers it into (JSON) or the diagnostics it prints. Review changes with `cargo insta review`.

use ferry_core::{load, LoadOptions};
use std::collections::HashMap;

#[test]
fn ui_cases() {
    insta::glob!("ui/*.yaml", |path| {
        let dir = path.parent().unwrap();
        let opts = LoadOptions {
            config: Some(path.file_name().unwrap().into()),
            cwd: dir.to_owned(),
            env: Some(HashMap::from([(
                "FERRY_UI_ENV".to_owned(),
                "from-env".to_owned(),
            )])),
            ..Default::default()
        };
        let out = match load(&opts) {
            Ok(l) => {
                let mut s = serde_json::to_string_pretty(&l.service).unwrap();
                for w in &l.warnings {
                    s.push_str(&format!("\n{}", w.render(&l.sources, false)));
                }
                s
            }
            Err(f) => f
                .diags
                .iter()
                .map(|d| d.render(&f.sources, false))
                .collect::<Vec<_>>()
                .join("\n"),
        };
        insta::assert_snapshot!(out);
    });
}
