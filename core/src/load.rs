//! The loading pipeline: find → read → parse → resolve variables → detect the dialect → lower
//! → validate. Nothing is written anywhere; the result is the model or a list of diagnostics.

use crate::diag::{did_you_mean, Diag};
use crate::model::{ProviderName, Service};
use crate::source::{Sources, Span};
use crate::spans::SpanIndex;
use crate::vars::{self, VarContext};
use crate::yaml::{self, Node, Value};
use crate::{lower, sf, validate};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// The manifest file names looked for, in order.
pub const CONFIG_NAMES: &[&str] = &["serverless.yaml", "serverless.yml", "serverless.json"];

/// What the CLI passes to the loader.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `-c/--config`.
    pub config: Option<PathBuf>,
    /// The folder to look in when no config is given.
    pub cwd: PathBuf,
    /// `-s/--stage`.
    pub stage: Option<String>,
    /// `-r/--region`.
    pub region: Option<String>,
    /// `-p/--provider`.
    pub provider: Option<ProviderName>,
    /// `--param k=v`.
    pub params: BTreeMap<String, String>,
    /// The environment for `${env:}`; `None` reads the process environment.
    pub env: Option<HashMap<String, String>>,
    /// Missing environment variables, options and files become warnings (see
    /// [`VarContext::allow_unresolved`]).
    pub allow_unresolved: bool,
}

/// A loaded, valid manifest.
#[derive(Debug)]
pub struct Loaded {
    /// The model.
    pub service: Service,
    /// Warnings worth showing.
    pub warnings: Vec<Diag>,
    /// Every file read.
    pub sources: Sources,
    /// The manifest's path.
    pub path: PathBuf,
    /// The manifest after variable resolution.
    pub resolved: Node,
}

/// Loading failed: the diagnostics and the files they point into.
#[derive(Debug)]
pub struct LoadFailure {
    /// Errors (and the warnings met before them).
    pub diags: Vec<Diag>,
    /// Every file read.
    pub sources: Sources,
}

/// Finds the manifest in a folder.
pub fn find_config(dir: &Path) -> Result<PathBuf, Diag> {
    for name in CONFIG_NAMES {
        let p = dir.join(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    for name in ["serverless.ts", "serverless.js"] {
        if dir.join(name).is_file() {
            return Err(Diag::error("config-format", format!("found {name}, but ferry reads YAML or JSON manifests"))
                .help("print it as YAML with the Serverless Framework (`serverless print > serverless.yml`) and use that"));
        }
    }
    Err(Diag::error("config-not-found", format!("no serverless.yaml, serverless.yml or serverless.json in {}", dir.display()))
        .help("run ferry in the service's folder, or point at the manifest with `-c path/to/serverless.yaml`"))
}

/// Providers the Serverless Framework supports through plugins that ferry does not target.
const FOREIGN_PROVIDERS: &[&str] = &[
    "openwhisk",
    "kubeless",
    "tencent",
    "aliyun",
    "cloudflare",
    "fn",
    "huawei",
    "knative",
    "spotinst",
    "twilio",
    "alibaba",
    "baidu",
];

/// Loads and validates a manifest.
pub fn load(opts: &LoadOptions) -> Result<Loaded, LoadFailure> {
    let mut sources = Sources::new();
    let fail = |d: Vec<Diag>, sources: Sources| LoadFailure { diags: d, sources };
    let path = match &opts.config {
        Some(p) => p.clone(),
        None => match find_config(&opts.cwd) {
            Ok(p) => p
                .strip_prefix(&opts.cwd)
                .map(Path::to_path_buf)
                .unwrap_or(p),
            Err(d) => return Err(fail(vec![d], sources)),
        },
    };
    let full = if path.is_absolute() {
        path.clone()
    } else {
        opts.cwd.join(&path)
    };
    let text = match std::fs::read_to_string(&full) {
        Ok(t) => t,
        Err(e) => {
            return Err(fail(
                vec![Diag::error(
                    "config-read",
                    format!("cannot read {}: {e}", path.display()),
                )
                .help("check the path given to `-c/--config`")],
                sources,
            ))
        }
    };
    let file = sources.add(&path, text);
    let text = sources.get(file).text.clone();
    let raw = match yaml::parse(&text, file) {
        Ok(n) => n,
        Err(d) => return Err(fail(vec![d], sources)),
    };
    if !matches!(raw.value, Value::Map(_)) {
        let d = Diag::error(
            "invalid-type",
            format!(
                "the manifest must be a mapping with `service:` and `functions:`, found {}",
                raw.type_name()
            ),
        )
        .at(raw.span)
        .help("start the file with `service: my-service`");
        return Err(fail(vec![d], sources));
    }
    if let Some(d) = foreign_provider(&raw) {
        return Err(fail(vec![d], sources));
    }

    let base_dir = full.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut ctx = VarContext {
        base_dir,
        allow_unresolved: opts.allow_unresolved,
        stage: opts.stage.clone(),
        region: opts.region.clone(),
        params: opts.params.clone(),
        ..Default::default()
    };
    ctx.env = opts
        .env
        .clone()
        .unwrap_or_else(|| std::env::vars().collect());
    for (k, v) in [("stage", &opts.stage), ("region", &opts.region)] {
        if let Some(v) = v {
            ctx.opts.insert(k.into(), v.clone());
        }
    }
    if let Some(p) = opts.provider {
        ctx.opts.insert("provider".into(), p.to_string());
    }
    ctx.opts.insert("config".into(), path.display().to_string());
    let resolved = match vars::resolve(raw, &ctx, &mut sources) {
        Ok(r) => r,
        Err(d) => return Err(fail(d, sources)),
    };
    let mut warnings = resolved.warnings;
    let root = resolved.root;
    let mut spans = SpanIndex::default();
    spans.index_tree(&root, "");
    let lowered = if sf::is_serverless_v3(&root) {
        sf::lower(
            &root,
            &resolved.stage,
            opts.provider,
            opts.region.as_deref(),
            &mut spans,
            &mut warnings,
        )
    } else {
        lower::lower(
            &root,
            &resolved.stage,
            opts.provider,
            opts.region.as_deref(),
            &spans,
        )
    };
    let (service, mut diags) = match lowered {
        Ok(s) => s,
        Err(mut d) => {
            d.extend(warnings);
            return Err(fail(d, sources));
        }
    };
    diags.extend(validate::validate(&service, &spans));
    diags.extend(warnings);
    if diags.iter().any(Diag::is_error) {
        sort(&mut diags);
        return Err(fail(diags, sources));
    }
    sort(&mut diags);
    Ok(Loaded {
        service,
        warnings: diags,
        sources,
        path,
        resolved: root,
    })
}

fn sort(d: &mut [Diag]) {
    d.sort_by_key(|d| (d.severity, d.span.map(|s| (s.file, s.start))));
}

fn foreign_provider(raw: &Node) -> Option<Diag> {
    let p = raw.get("provider")?;
    let name_node = match &p.value {
        Value::Str(_) => p,
        _ => p.get("name")?,
    };
    let name = name_node.as_str()?;
    let looks_sf = raw.get("plugins").is_some()
        || raw
            .get("functions")
            .and_then(Node::as_map)
            .is_some_and(|f| f.iter().any(|(_, v)| v.get("events").is_some()));
    let span: Span = name_node.span;
    if FOREIGN_PROVIDERS.contains(&name) {
        return Some(
            Diag::error("unsupported-provider", format!("provider `{name}` is not supported: ferry deploys to aws, azure and gcp"))
                .at(span)
                .help("ferry reads Serverless Framework files written for `provider.name: aws`; for another cloud, write the ferry dialect"),
        );
    }
    if (name == "azure" || name == "google") && looks_sf {
        let plugin = if name == "azure" {
            "serverless-azure-functions"
        } else {
            "serverless-google-cloudfunctions"
        };
        return Some(
            Diag::error("unsupported-provider", format!("this is a Serverless Framework `{name}` file ({plugin}); ferry reads only the framework's AWS dialect"))
                .at(span)
                .help(format!("to deploy to {name} with ferry, write the ferry dialect (`triggers:` instead of `events:`) and run `ferry deploy --provider {}`", if name == "azure" { "azure" } else { "gcp" })),
        );
    }
    if !matches!(name, "aws" | "azure" | "gcp" | "local") && !name.contains("${") {
        let mut d =
            Diag::error("unsupported-provider", format!("unknown provider `{name}`")).at(span);
        d = match did_you_mean(name, ["aws", "azure", "gcp", "local"]) {
            Some(s) => d.help(format!("did you mean `{s}`?")),
            None => d.help("ferry deploys to aws, azure, gcp, or runs locally with `local`"),
        };
        return Some(d);
    }
    None
}
