//! Lowering of the ferry dialect into the neutral model.

use crate::de::from_node;
use crate::diag::{did_you_mean, Diag};
use crate::manifest::{Manifest, ServiceType};
use crate::model::*;
use crate::spans::SpanIndex;
use crate::yaml::Node;
use std::collections::BTreeMap;

/// Defaults when neither the function nor `provider` sets a value.
pub const DEFAULT_MEMORY: u32 = 256;
/// Default timeout in seconds.
pub const DEFAULT_TIMEOUT: u32 = 10;
/// Default queue batch size.
pub const DEFAULT_BATCH: u32 = 10;

/// Lowers a resolved ferry-dialect tree. `Err` when the tree does not have the manifest's
/// shape; otherwise the model and the errors found while building it.
pub fn lower(
    root: &Node,
    stage: &str,
    provider: Option<ProviderName>,
    region: Option<&str>,
    spans: &SpanIndex,
) -> Result<(Service, Vec<Diag>), Vec<Diag>> {
    let m: Manifest = from_node(root).map_err(|e| vec![e.into_diag()])?;
    let mut errs = Vec::new();
    let p = &m.provider;
    let default_runtime = match &p.runtime {
        Some(r) => parse_runtime(r, spans.find("provider.runtime"), &mut errs),
        None => None,
    };
    let mut services = BTreeMap::new();
    for (name, def) in &m.services {
        let path = format!("services.{name}");
        // Keys that belong to another type of service.
        if let Some(entries) = lookup(root, &path).and_then(Node::as_map) {
            for (k, _) in entries {
                let key = k.as_str().unwrap_or_default();
                if key != "type" && !def.kind.allowed_keys().contains(&key) {
                    let allowed = def.kind.allowed_keys();
                    let mut d = Diag::error(
                        "unknown-key",
                        format!(
                            "`{key}` does not apply to a service of type `{}`",
                            kind_word(def.kind)
                        ),
                    )
                    .at(k.span);
                    d = match did_you_mean(key, allowed.iter().copied()) {
                        Some(s) => d.help(format!("did you mean `{s}`?")),
                        None => d.help(format!(
                            "a {} takes: {}",
                            kind_word(def.kind),
                            allowed.join(", ")
                        )),
                    };
                    errs.push(d);
                }
            }
        }
        let kind = match def.kind {
            ServiceType::Queue => ResourceKind::Queue {
                visibility_timeout: def.visibility_timeout.unwrap_or(30),
                max_receives: def.dead_letter.as_ref().map(|d| d.max_receives),
                fifo: def.fifo.unwrap_or(false),
            },
            ServiceType::Bucket => ResourceKind::Bucket {
                versioning: def.versioning.unwrap_or(false),
            },
            ServiceType::Table => match &def.key {
                Some(k) => ResourceKind::Table {
                    partition: k.partition.clone(),
                    sort: k.sort.clone(),
                },
                None => {
                    errs.push(
                        Diag::error("missing-key", format!("table `{name}` needs a `key`"))
                            .at_opt(spans.key(&path))
                            .help("add `key: { partition: id }`"),
                    );
                    continue;
                }
            },
            ServiceType::Topic => ResourceKind::Topic {
                fifo: def.fifo.unwrap_or(false),
            },
            ServiceType::Secret => ResourceKind::Secret {
                description: def.description.clone(),
            },
        };
        services.insert(
            name.clone(),
            Resource {
                kind,
                external: None,
            },
        );
    }

    let provider_env: BTreeMap<String, EnvValue> = p
        .environment
        .iter()
        .map(|(k, v)| (k.clone(), EnvValue::Text(v.0.clone())))
        .collect();
    let mut functions = BTreeMap::new();
    for (name, f) in &m.functions {
        let path = format!("functions.{name}");
        let runtime = match &f.runtime {
            Some(r) => parse_runtime(r, spans.find(&format!("{path}.runtime")), &mut errs),
            None => default_runtime.clone(),
        };
        let Some(runtime) = runtime else {
            if f.runtime.is_none() && p.runtime.is_none() {
                errs.push(
                    Diag::error("missing-key", format!("function `{name}` has no runtime"))
                        .at_opt(spans.key(&path))
                        .help(format!(
                            "set `runtime:` on the function or under `provider:` (one of {})",
                            RUNTIMES.join(", ")
                        )),
                );
            }
            continue;
        };
        let mut environment = provider_env.clone();
        environment.extend(
            f.environment
                .iter()
                .map(|(k, v)| (k.clone(), EnvValue::Text(v.0.clone()))),
        );
        let mut triggers = Vec::new();
        for (i, t) in f.triggers.iter().enumerate() {
            let tpath = format!("{path}.triggers.{i}");
            let kinds = t.kinds();
            if kinds.len() != 1 {
                errs.push(
                    Diag::error("trigger-kind", if kinds.is_empty() {
                        "a trigger needs one of `http`, `queue`, `schedule`, `storage` or `topic`".to_owned()
                    } else {
                        format!("one trigger sets {}; each list item is one trigger", kinds.join(" and "))
                    })
                    // Point at the second kind's key: the item itself may span many lines.
                    .at_opt(kinds.get(1).map_or_else(|| spans.find(&tpath), |k| spans.key(&format!("{tpath}.{k}"))))
                    .help("write one trigger per `- ` item"),
                );
                continue;
            }
            let misplaced = |key: &str, owner: &str, set: bool, errs: &mut Vec<Diag>| {
                if set && kinds[0] != owner {
                    errs.push(
                        Diag::error(
                            "unknown-key",
                            format!("`{key}` applies to {owner} triggers, not {}", kinds[0]),
                        )
                        .at_opt(spans.key(&format!("{tpath}.{key}")))
                        .help("remove it"),
                    );
                }
            };
            misplaced("batchSize", "queue", t.batch_size.is_some(), &mut errs);
            misplaced("batchWindow", "queue", t.batch_window.is_some(), &mut errs);
            misplaced("filter", "topic", t.filter.is_some(), &mut errs);
            let trig = if let Some(h) = &t.http {
                Trigger::Http(HttpTrigger {
                    method: h.method.to_ascii_uppercase(),
                    path: h.path.clone(),
                    cors: h.cors,
                    payload: PayloadVersion::V2,
                })
            } else if let Some(q) = &t.queue {
                Trigger::Queue {
                    queue: q.clone(),
                    batch_size: t.batch_size.unwrap_or(DEFAULT_BATCH),
                    batch_window: t.batch_window,
                }
            } else if let Some(s) = &t.schedule {
                Trigger::Schedule {
                    expression: s.expression.trim().to_owned(),
                    enabled: s.enabled,
                    input: s.input.clone(),
                }
            } else if let Some(s) = &t.storage {
                let mut events = if s.events.is_empty() {
                    vec![StorageEvent::Created]
                } else {
                    s.events.clone()
                };
                events.sort();
                events.dedup();
                Trigger::Storage {
                    bucket: s.bucket.clone(),
                    events,
                    prefix: s.prefix.clone(),
                    suffix: s.suffix.clone(),
                }
            } else if let Some(topic) = &t.topic {
                Trigger::Topic {
                    topic: topic.clone(),
                    filter: t.filter.clone(),
                }
            } else {
                unreachable!("one kind is set")
            };
            triggers.push(trig);
        }
        let pkg = f.package.as_ref();
        let shared = m.package.as_ref();
        let package = PackageSpec {
            include: shared
                .into_iter()
                .chain(pkg)
                .flat_map(|p| p.include.clone())
                .collect(),
            exclude: shared
                .into_iter()
                .chain(pkg)
                .flat_map(|p| p.exclude.clone())
                .collect(),
            patterns: vec![],
            artifact: pkg
                .and_then(|p| p.artifact.clone())
                .or_else(|| shared.and_then(|p| p.artifact.clone())),
        };
        functions.insert(
            name.clone(),
            Function {
                handler: f.handler.clone(),
                runtime,
                memory: f.memory.or(p.memory).unwrap_or(DEFAULT_MEMORY),
                timeout: f.timeout.or(p.timeout).unwrap_or(DEFAULT_TIMEOUT),
                architecture: f.architecture.or(p.architecture).unwrap_or_default(),
                description: f.description.clone(),
                environment,
                uses: f.uses.clone(),
                triggers,
                package,
                tags: f
                    .tags
                    .iter()
                    .map(|(k, v)| (k.clone(), v.0.clone()))
                    .collect(),
            },
        );
    }
    let mut settings = BTreeMap::new();
    for (k, v) in [
        ("aws", &p.aws),
        ("azure", &p.azure),
        ("gcp", &p.gcp),
        ("local", &p.local),
    ] {
        if let Some(v) = v {
            settings.insert(k.to_owned(), v.clone());
        }
    }
    let service = Service {
        model_version: MODEL_VERSION,
        service: m.service.clone(),
        stage: stage.to_owned(),
        provider: provider.or(p.name),
        region: region.map(str::to_owned).or_else(|| p.region.clone()),
        dialect: Dialect::Ferry,
        tags: p
            .tags
            .iter()
            .map(|(k, v)| (k.clone(), v.0.clone()))
            .collect(),
        settings,
        services,
        functions,
        cloudformation: None,
        iam_statements: vec![],
    };
    // The model is complete even when some parts had errors, so that the model-level checks
    // run too and the user sees every error at once.
    Ok((service, errs))
}

fn kind_word(k: ServiceType) -> &'static str {
    match k {
        ServiceType::Queue => "queue",
        ServiceType::Bucket => "bucket",
        ServiceType::Table => "table",
        ServiceType::Topic => "topic",
        ServiceType::Secret => "secret",
    }
}

fn parse_runtime(
    r: &str,
    at: Option<crate::source::Span>,
    errs: &mut Vec<Diag>,
) -> Option<Runtime> {
    match Runtime::parse(r) {
        Some(rt) if RUNTIMES.contains(&rt.name().as_str()) => Some(rt),
        parsed => {
            let mut d = Diag::error("unknown-runtime", format!("unknown runtime `{r}`")).at_opt(at);
            let family = |p: &str| {
                RUNTIMES
                    .iter()
                    .copied()
                    .filter(|n| n.starts_with(p))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            d = match (parsed, did_you_mean(r, RUNTIMES.iter().copied())) {
                // A known language at a version ferry does not build: list the versions.
                (Some(Runtime::Node(_)), _) => d.help(format!("ferry builds {}", family("nodejs"))),
                (Some(Runtime::Python(_)), _) => {
                    d.help(format!("ferry builds {}", family("python")))
                }
                (_, Some(s)) => d.help(format!("did you mean `{s}`?")),
                _ => d.help(format!("ferry builds {}", RUNTIMES.join(", "))),
            };
            errs.push(d);
            None
        }
    }
}

/// The node at a dotted path.
pub fn lookup<'a>(root: &'a Node, path: &str) -> Option<&'a Node> {
    let mut cur = root;
    for seg in path.split('.') {
        cur = cur.get(seg)?;
    }
    Some(cur)
}
