//! Checks on the lowered model that hold for every dialect: references resolve, routes are
//! unique, schedules parse, sizes and names fit the providers.

use crate::diag::{did_you_mean, Diag};
use crate::model::{ProviderName, Runtime, Service, Trigger};
use crate::schedule;
use crate::spans::SpanIndex;
use std::collections::BTreeMap;

/// Memory (MB) and timeout (s) limits of one provider.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Who.
    pub provider: &'static str,
    /// Smallest memory.
    pub memory_min: u32,
    /// Largest memory.
    pub memory_max: u32,
    /// Longest timeout for a function with an HTTP trigger.
    pub timeout_http: u32,
    /// Longest timeout for other functions.
    pub timeout_event: u32,
    /// Longest physical function name (`service-stage-function`).
    pub name_max: usize,
}

/// Published limits. AWS Lambda: 128–10,240 MB, 900 s. Azure Flex Consumption: instance memory
/// up to 4,096 MB (smaller values round up to the 512 MB instance), HTTP responses cut at 230 s
/// by the front end, function timeout otherwise configurable; 3,600 s used as ferry's bound.
/// Google Cloud Functions v2: up to 32 GiB, 3,600 s for HTTP and 540 s for event functions,
/// names of at most 63 characters.
pub const LIMITS: &[Limits] = &[
    Limits {
        provider: "aws",
        memory_min: 128,
        memory_max: 10240,
        timeout_http: 900,
        timeout_event: 900,
        name_max: 64,
    },
    Limits {
        provider: "azure",
        memory_min: 128,
        memory_max: 4096,
        timeout_http: 230,
        timeout_event: 3600,
        name_max: 60,
    },
    Limits {
        provider: "gcp",
        memory_min: 128,
        memory_max: 32768,
        timeout_http: 3600,
        timeout_event: 540,
        name_max: 63,
    },
];

fn limits_for(p: Option<ProviderName>) -> Vec<Limits> {
    match p {
        None => LIMITS.to_vec(),
        Some(ProviderName::Local) => vec![],
        Some(p) => LIMITS
            .iter()
            .filter(|l| l.provider == p.as_str())
            .copied()
            .collect(),
    }
}

const METHODS: &[&str] = &[
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY",
];

/// Runs every check; returns the diagnostics (errors and warnings).
pub fn validate(s: &Service, spans: &SpanIndex) -> Vec<Diag> {
    let mut out = Vec::new();
    check_name("service", &s.service, 128, spans.find("service"), &mut out);
    for name in s.services.keys() {
        check_name(
            "service",
            name,
            64,
            spans.key(&format!("services.{name}")),
            &mut out,
        );
    }
    let mut injected: BTreeMap<String, &str> = BTreeMap::new();
    for (name, r) in &s.services {
        let var = crate::model::injected_env_name(name, &r.kind);
        if let Some(other) = injected.insert(var.clone(), name) {
            out.push(
                Diag::error(
                    "name-collision",
                    format!("services `{other}` and `{name}` would both inject `{var}`"),
                )
                .at_opt(spans.key(&format!("services.{name}")))
                .help("rename one of them so that their names differ in more than punctuation"),
            );
        }
    }
    let mut routes: BTreeMap<(String, String), String> = BTreeMap::new();
    let limits = limits_for(s.provider);
    for (fname, f) in &s.functions {
        let fpath = format!("functions.{fname}");
        check_name("function", fname, 64, spans.key(&fpath), &mut out);
        let physical = format!("{}-{}-{}", s.service, s.stage, fname);
        for l in &limits {
            if physical.len() > l.name_max {
                out.push(
                    Diag::error(
                        "name-too-long",
                        format!(
                            "the deployed name `{physical}` has {} characters; {} allows {}",
                            physical.len(),
                            l.provider,
                            l.name_max
                        ),
                    )
                    .at_opt(spans.key(&fpath))
                    .help("shorten the service, stage or function name"),
                );
            }
        }
        // Handler shape.
        if matches!(f.runtime, Runtime::Node(_) | Runtime::Python(_))
            && !f.handler.contains('.')
            && f.package.artifact.is_none()
        {
            out.push(
                Diag::error(
                    "handler-format",
                    format!(
                        "handler `{}` of function `{fname}` needs the form `file.function`",
                        f.handler
                    ),
                )
                .at_opt(spans.find(&format!("{fpath}.handler")))
                .help(format!("for example `{}.handler`", f.handler)),
            );
        }
        // Memory and timeout.
        let has_http = f.triggers.iter().any(|t| matches!(t, Trigger::Http(_)));
        // One error per value: the first (strictest) provider whose range it leaves. A value
        // inherited from `provider` is reported where it is written.
        let at = |key: &str, sf_key: &str| {
            spans
                .exact(&format!("{fpath}.{key}"))
                .or_else(|| spans.exact(&format!("provider.{key}")))
                .or_else(|| spans.exact(&format!("provider.{sf_key}")))
                .or_else(|| spans.key(&fpath))
        };
        if let Some(l) = limits
            .iter()
            .find(|l| f.memory < l.memory_min || f.memory > l.memory_max)
        {
            out.push(
                Diag::error(
                    "memory-range",
                    format!("memory {} MB of function `{fname}` is outside {}'s range {}–{} MB", f.memory, l.provider, l.memory_min, l.memory_max),
                )
                .at_opt(at("memory", "memorySize"))
                .help(if s.provider.is_none() {
                    "with no provider chosen the strictest range applies; choose one with `--provider` or `provider.name`"
                } else {
                    "pick a value inside the range"
                }),
            );
        }
        let max_timeout = |l: &Limits| {
            if has_http {
                l.timeout_http
            } else {
                l.timeout_event
            }
        };
        if let Some(l) = limits
            .iter()
            .find(|l| f.timeout == 0 || f.timeout > max_timeout(l))
        {
            out.push(
                Diag::error(
                    "timeout-range",
                    format!(
                        "timeout {} s of function `{fname}` is outside {}'s range 1–{} s{}",
                        f.timeout,
                        l.provider,
                        max_timeout(l),
                        if has_http { " for HTTP functions" } else { "" }
                    ),
                )
                .at_opt(at("timeout", "timeout"))
                .help("pick a value inside the range"),
            );
        }
        // References.
        for (i, u) in f.uses.iter().enumerate() {
            if !s.services.contains_key(u) {
                out.push(unknown_ref(
                    "service",
                    u,
                    s,
                    spans.find(&format!("{fpath}.uses.{i}")),
                ));
            }
        }
        for (i, t) in f.triggers.iter().enumerate() {
            let tpath = format!("{fpath}.triggers.{i}");
            match t {
                Trigger::Http(h) => {
                    let at = spans.find(&format!("{tpath}.http"));
                    if !METHODS.contains(&h.method.as_str()) {
                        let mut d = Diag::error(
                            "http-method",
                            format!("`{}` is not an HTTP method", h.method),
                        )
                        .at_opt(at);
                        if let Some(m) = did_you_mean(&h.method, METHODS.iter().copied()) {
                            d = d.help(format!("did you mean `{m}`?"));
                        }
                        out.push(d);
                    }
                    if let Err(m) = check_path(&h.path) {
                        out.push(
                            Diag::error("http-path", format!("route path `{}`: {m}", h.path))
                                .at_opt(at)
                                .help("write paths like `/carts/{id}` or `/files/{proxy+}`"),
                        );
                    }
                    let key = (h.method.clone(), normalize_path(&h.path));
                    let clash = routes.get(&key).cloned().or_else(|| {
                        // ANY overlaps every method on the same path.
                        routes
                            .iter()
                            .find(|((m, p), _)| *p == key.1 && (m == "ANY" || key.0 == "ANY"))
                            .map(|(_, v)| v.clone())
                    });
                    match clash {
                        Some(other) => out.push(
                            Diag::error(
                                "http-duplicate-route",
                                format!(
                                    "route `{} {}` is already served by function `{other}`",
                                    h.method, h.path
                                ),
                            )
                            .at_opt(at)
                            .help("each method and path may go to one function only"),
                        ),
                        None => {
                            routes.insert(key, fname.clone());
                        }
                    }
                }
                Trigger::Queue {
                    queue, batch_size, ..
                } => {
                    check_kind(
                        s,
                        queue,
                        "queue",
                        spans.find(&format!("{tpath}.queue")),
                        &mut out,
                    );
                    if *batch_size == 0 || *batch_size > 10_000 {
                        out.push(
                            Diag::error(
                                "batch-size",
                                format!("batch size {batch_size} is outside 1–10000"),
                            )
                            .at_opt(spans.find(&format!("{tpath}.batchSize"))),
                        );
                    }
                }
                Trigger::Schedule { expression, .. } => {
                    if let Err(m) = schedule::parse(expression) {
                        out.push(
                            Diag::error("schedule", m)
                                .at_opt(spans.find(&format!("{tpath}.schedule"))),
                        );
                    }
                }
                Trigger::Storage { bucket, .. } => check_kind(
                    s,
                    bucket,
                    "bucket",
                    spans.find(&format!("{tpath}.storage")),
                    &mut out,
                ),
                Trigger::Topic { topic, .. } => check_kind(
                    s,
                    topic,
                    "topic",
                    spans.find(&format!("{tpath}.topic")),
                    &mut out,
                ),
            }
        }
    }
    out
}

fn unknown_ref(kind: &str, name: &str, s: &Service, at: Option<crate::source::Span>) -> Diag {
    let d = Diag::error(
        "unknown-reference",
        format!("there is no {kind} named `{name}`"),
    )
    .at_opt(at);
    match did_you_mean(name, s.services.keys().map(String::as_str)) {
        Some(m) => d.help(format!("did you mean `{m}`?")),
        None if s.services.is_empty() => d.help(format!(
            "declare it under `services:`, e.g. `{name}: {{ type: queue }}`"
        )),
        None => d.help(format!(
            "declare it under `services:`; the services are {}",
            s.services
                .keys()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

fn check_kind(
    s: &Service,
    name: &str,
    want: &str,
    at: Option<crate::source::Span>,
    out: &mut Vec<Diag>,
) {
    match s.services.get(name) {
        None => out.push(unknown_ref(want, name, s, at)),
        Some(r) if r.kind.name() != want => out.push(
            Diag::error(
                "reference-kind",
                format!(
                    "`{name}` is a {}, but this trigger needs a {want}",
                    r.kind.name()
                ),
            )
            .at_opt(at)
            .help(format!("point the trigger at a service of `type: {want}`")),
        ),
        Some(_) => {}
    }
}

fn check_name(
    what: &str,
    name: &str,
    max: usize,
    at: Option<crate::source::Span>,
    out: &mut Vec<Diag>,
) {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    let starts = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    if !ok_chars || !starts || name.len() > max {
        out.push(
            Diag::error("name", format!("{what} name `{name}` must start with a letter and hold only letters, digits, `-` and `_` (at most {max})"))
                .at_opt(at)
                .help("rename it; names become parts of cloud resource names"),
        );
    }
}

fn check_path(p: &str) -> Result<(), String> {
    if !p.starts_with('/') {
        return Err("must start with `/`".into());
    }
    let segs: Vec<&str> = p.split('/').skip(1).collect();
    for (i, seg) in segs.iter().enumerate() {
        if let Some(inner) = seg.strip_prefix('{') {
            let Some(name) = inner.strip_suffix('}') else {
                return Err(format!("`{seg}` is missing its `}}`"));
            };
            let greedy = name.ends_with('+');
            let name = name.trim_end_matches('+');
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(format!("`{seg}` is not a valid path parameter"));
            }
            if greedy && i + 1 != segs.len() {
                return Err(format!(
                    "the greedy parameter `{seg}` must be the last segment"
                ));
            }
        } else if seg.contains(['{', '}']) {
            return Err(format!("`{seg}`: a parameter must be a whole segment"));
        }
    }
    Ok(())
}

/// `/a/{id}` and `/a/{x}` are the same route.
fn normalize_path(p: &str) -> String {
    p.trim_end_matches('/')
        .split('/')
        .map(|s| {
            if s.starts_with('{') {
                if s.ends_with("+}") {
                    "{+}"
                } else {
                    "{}"
                }
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}
