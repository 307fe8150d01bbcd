//! Variable resolution: `${env:..}`, `${self:..}`, `${opt:..}`, `${param:..}`, `${file(..):..}`,
//! `${sls:stage}` / `${stage}`, fallbacks, nesting and interpolation, with cycle detection that
//! prints the chain. Resolution runs on the YAML tree, so every resolved value keeps the span
//! of the string that produced it.

use crate::diag::{did_you_mean, Diag};
use crate::source::{Sources, Span};
use crate::yaml::{self, Node, Value};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// Everything variables can read besides the manifest itself.
#[derive(Debug, Clone, Default)]
pub struct VarContext {
    /// `--stage`.
    pub stage: Option<String>,
    /// `--region`.
    pub region: Option<String>,
    /// Every CLI option by name (`stage`, `region`, `provider`, `config`, ...), for `${opt:..}`.
    pub opts: BTreeMap<String, String>,
    /// `--param key=value`, for `${param:..}`; wins over the manifest's `params`.
    pub params: BTreeMap<String, String>,
    /// The environment, for `${env:..}` (the process environment plus `.env` files).
    pub env: HashMap<String, String>,
    /// The folder of the manifest: `${file(..)}` paths and `.env` files are relative to it.
    pub base_dir: PathBuf,
    /// Keep values that must come from outside the repository (environment variables, CLI
    /// options, files) as written, with a warning, when they are missing. For validating in
    /// jobs that have no secrets, the way `terraform validate` checks without variable values.
    pub allow_unresolved: bool,
}

impl VarContext {
    /// A context that reads the process environment.
    pub fn from_process_env(base_dir: impl Into<PathBuf>) -> Self {
        VarContext {
            env: std::env::vars().collect(),
            base_dir: base_dir.into(),
            ..Default::default()
        }
    }
}

/// The outcome of resolving a manifest.
#[derive(Debug)]
pub struct Resolved {
    /// The tree with every variable replaced.
    pub root: Node,
    /// The effective stage (`--stage`, then `provider.stage`, then `dev`).
    pub stage: String,
    /// Warnings (values that can only be known in the cloud, ...).
    pub warnings: Vec<Diag>,
}

/// Sources whose values only exist in a cloud account; they are left in place for the
/// provider to resolve at deploy time.
const DEFERRED: &[&str] = &[
    "ssm",
    "cf",
    "s3",
    "secrets",
    "aws",
    "construct",
    "sls",
    "cfn",
    "terraform",
    "vault",
];
/// Every source ferry knows, for did-you-mean.
const SOURCES: &[&str] = &[
    "env", "self", "opt", "param", "file", "sls", "stage", "ssm", "cf", "s3", "aws",
];

/// Resolves all variables in `root`.
pub fn resolve(root: Node, ctx: &VarContext, sources: &mut Sources) -> Result<Resolved, Vec<Diag>> {
    let mut r = Resolver::new(root, ctx.clone(), sources);
    // The stage decides which `.env.<stage>` file is read, so it is found first.
    let stage = r.stage().map_err(|e| vec![e])?;
    if r.raw
        .get("useDotenv")
        .map(|n| n.value == Value::Bool(true))
        .unwrap_or(false)
    {
        r.load_dotenv(&stage).map_err(|e| vec![e])?;
        r.cache.clear();
        r.stage = None;
    }
    let stage = r.stage().map_err(|e| vec![e])?;
    let raw = Rc::clone(&r.raw);
    let root = r.resolve_node(&raw, "");
    if !r.errors.is_empty() {
        let mut all = std::mem::take(&mut r.errors);
        all.append(&mut r.warnings);
        return Err(all);
    }
    Ok(Resolved {
        root,
        stage,
        warnings: r.warnings,
    })
}

struct Resolver<'s> {
    /// The manifest as written; shared so that lookups walk it without copying it.
    raw: Rc<Node>,
    ctx: VarContext,
    sources: &'s mut Sources,
    cache: HashMap<String, Node>,
    stack: Vec<String>,
    files: HashMap<PathBuf, Rc<Node>>,
    stage: Option<String>,
    computing_stage: bool,
    errors: Vec<Diag>,
    warnings: Vec<Diag>,
    warned: HashSet<String>,
    /// Paths already reported as part of a cycle, so one cycle is one error.
    failed: HashSet<String>,
}

/// A piece of a string that holds variables.
#[derive(Debug, PartialEq)]
enum Part<'a> {
    Lit(&'a str),
    /// The text between `${` and the matching `}`, and its byte range in the string.
    Var(&'a str, usize, usize),
}

/// Splits a string into literal text and top-level `${...}` expressions (nesting respected).
fn split_vars(s: &str) -> Result<Vec<Part<'_>>, usize> {
    let b = s.as_bytes();
    let mut parts = Vec::new();
    let mut lit_start = 0;
    let mut i = 0;
    while i + 1 < b.len() {
        if b[i] == b'$' && b[i + 1] == b'{' {
            let start = i;
            let mut depth = 0;
            let mut j = i;
            let mut quote: Option<u8> = None;
            let end = loop {
                if j >= b.len() {
                    return Err(start);
                }
                match (quote, b[j]) {
                    (Some(q), c) if c == q => quote = None,
                    (Some(_), _) => {}
                    (None, b'\'' | b'"') if depth > 0 => quote = Some(b[j]),
                    (None, b'{') => depth += 1,
                    (None, b'}') => {
                        depth -= 1;
                        if depth == 0 {
                            break j;
                        }
                    }
                    _ => {}
                }
                j += 1;
            };
            if lit_start < start {
                parts.push(Part::Lit(&s[lit_start..start]));
            }
            parts.push(Part::Var(&s[start + 2..end], start, end + 1));
            i = end + 1;
            lit_start = i;
        } else {
            i += 1;
        }
    }
    if lit_start < s.len() {
        parts.push(Part::Lit(&s[lit_start..]));
    }
    Ok(parts)
}

/// Splits `a, b, 'c, d'` at top-level commas.
fn split_alternatives(s: &str) -> Vec<&str> {
    let b = s.as_bytes();
    let (mut out, mut depth, mut quote, mut start) = (Vec::new(), 0i32, None::<u8>, 0);
    for (i, &c) in b.iter().enumerate() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, b'\'' | b'"') => quote = Some(c),
            (None, b'{' | b'(') => depth += 1,
            (None, b'}' | b')') => depth -= 1,
            (None, b',') if depth == 0 => {
                out.push(s[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(s[start..].trim());
    out
}

impl<'s> Resolver<'s> {
    fn new(raw: Node, ctx: VarContext, sources: &'s mut Sources) -> Self {
        Resolver {
            raw: Rc::new(raw),
            ctx,
            sources,
            cache: HashMap::new(),
            stack: Vec::new(),
            files: HashMap::new(),
            stage: None,
            computing_stage: false,
            errors: Vec::new(),
            warnings: Vec::new(),
            warned: HashSet::new(),
            failed: HashSet::new(),
        }
    }

    fn stage(&mut self) -> Result<String, Diag> {
        if let Some(s) = &self.stage {
            return Ok(s.clone());
        }
        let stage = if let Some(s) = self.ctx.stage.clone() {
            s
        } else {
            if self.computing_stage {
                return Err(Diag::error(
                    "variable-cycle",
                    "`provider.stage` refers to the stage it defines",
                )
                .help("give `provider.stage` a literal value or `${opt:stage, 'dev'}`"));
            }
            self.computing_stage = true;
            let found = self.lookup_self("provider.stage", Span::default());
            self.computing_stage = false;
            match found? {
                Some(n) if n.value != Value::Null => {
                    n.scalar_text().unwrap_or_else(|| "dev".into())
                }
                _ => "dev".to_owned(),
            }
        };
        self.stage = Some(stage.clone());
        Ok(stage)
    }

    fn load_dotenv(&mut self, stage: &str) -> Result<(), Diag> {
        // `.env` first, then `.env.<stage>` on top; the process environment wins over both,
        // as with dotenv everywhere.
        let mut loaded: Vec<(String, String)> = Vec::new();
        for name in [".env".to_owned(), format!(".env.{stage}")] {
            let path = self.ctx.base_dir.join(&name);
            if !path.exists() {
                continue;
            }
            let iter = dotenvy::from_path_iter(&path).map_err(|e| {
                Diag::error("dotenv", format!("cannot read {}: {e}", path.display()))
            })?;
            for item in iter {
                let (k, v) = item.map_err(|e| {
                    Diag::error("dotenv", format!("invalid line in {}: {e}", path.display()))
                })?;
                loaded.push((k, v));
            }
        }
        let process: HashSet<String> = std::env::vars().map(|(k, _)| k).collect();
        for (k, v) in loaded {
            if !process.contains(&k) {
                self.ctx.env.insert(k, v);
            }
        }
        Ok(())
    }

    fn resolve_node(&mut self, node: &Node, path: &str) -> Node {
        match &node.value {
            Value::Str(s) if s.contains("${") => {
                if let Some(hit) = self.cache.get(path) {
                    return hit.clone();
                }
                if self.failed.contains(path) {
                    return Node::new(Value::Null, node.span);
                }
                match self.resolve_string_at(s, node.span, path) {
                    Ok(n) => {
                        self.cache.insert(path.to_owned(), n.clone());
                        n
                    }
                    Err(e) => {
                        if !self.errors.contains(&e) {
                            self.errors.push(e);
                        }
                        Node::new(Value::Null, node.span)
                    }
                }
            }
            Value::Seq(items) => Node::new(
                Value::Seq(
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, n)| self.resolve_node(n, &join(path, &i.to_string())))
                        .collect(),
                ),
                node.span,
            ),
            Value::Map(entries) => {
                let mut out = Vec::with_capacity(entries.len());
                for (k, v) in entries {
                    let key_text = k.scalar_text().unwrap_or_default();
                    let key = if key_text.contains("${") {
                        self.resolve_node(k, &join(path, &format!("<key {key_text}>")))
                    } else {
                        k.clone()
                    };
                    let v = self.resolve_node(v, &join(path, &key_text));
                    out.push((key, v));
                }
                Node::new(Value::Map(out), node.span)
            }
            _ => node.clone(),
        }
    }

    /// Resolves the string at `path`, guarding against cycles.
    fn resolve_string_at(&mut self, s: &str, span: Span, path: &str) -> Result<Node, Diag> {
        if let Some(pos) = self.stack.iter().position(|p| p == path) {
            let mut chain: Vec<String> = self.stack[pos..].to_vec();
            chain.push(path.to_owned());
            self.failed.extend(chain.iter().cloned());
            return Err(Diag::error(
                "variable-cycle",
                format!(
                    "variables refer to each other in a cycle: {}",
                    chain.join(" → ")
                ),
            )
            .at(span)
            .help("break the cycle by giving one of these keys a literal value"));
        }
        self.stack.push(path.to_owned());
        let r = self.interpolate(s, span);
        self.stack.pop();
        r
    }

    fn interpolate(&mut self, s: &str, span: Span) -> Result<Node, Diag> {
        let parts = split_vars(s).map_err(|_| {
            Diag::error("variable-syntax", "unclosed `${` in a variable")
                .at(span)
                .help("close the variable with `}`")
        })?;
        if let [Part::Var(inner, _, _)] = parts.as_slice() {
            return self.eval(inner, span);
        }
        let mut out = String::new();
        for part in parts {
            match part {
                Part::Lit(l) => out.push_str(l),
                Part::Var(inner, _, _) => {
                    let n = self.eval(inner, span)?;
                    match n.scalar_text() {
                        Some(t) => out.push_str(&t),
                        None => return Err(Diag::error(
                            "variable-type",
                            format!(
                                "`${{{inner}}}` is {} and cannot be placed inside a longer string",
                                n.type_name()
                            ),
                        )
                        .at(span)
                        .help(
                            "use the variable as the whole value, or point it at a single value",
                        )),
                    }
                }
            }
        }
        Ok(Node::new(Value::Str(out), span))
    }

    /// Evaluates the inside of one `${...}`: alternatives are tried in order.
    fn eval(&mut self, inner: &str, span: Span) -> Result<Node, Diag> {
        if is_cloudformation_sub(inner) {
            return Ok(Node::new(Value::Str(format!("${{{inner}}}")), span));
        }
        if is_deferred(inner) {
            // Kept whole, fallbacks included, for the provider to resolve at deploy time.
            let whole = format!("${{{inner}}}");
            if self.warned.insert(whole.clone()) {
                self.warnings.push(
                    Diag::warning("variable-deferred", format!("`{whole}` can only be resolved in the cloud account; it is kept as written"))
                        .at(span)
                        .help("ferry passes it through; set it through `--param` or `${env:..}` to resolve it locally"),
                );
            }
            return Ok(Node::new(Value::Str(whole), span));
        }
        let alts = split_alternatives(inner);
        let mut misses = Vec::new();
        for alt in &alts {
            if alt.is_empty() {
                continue;
            }
            if let Some(lit) = quoted(alt) {
                return Ok(Node::new(Value::Str(lit.to_owned()), span));
            }
            if alt.parse::<f64>().is_ok() {
                return Ok(Node::new(yaml::resolve_plain(alt), span));
            }
            if *alt == "null" {
                return Ok(Node::new(Value::Null, span));
            }
            // A fallback may be written as `${...}` itself.
            let reference: String =
                if let [Part::Var(i2, 0, end)] = split_vars(alt).unwrap_or_default().as_slice() {
                    if *end == alt.len() {
                        match self.eval(i2, span) {
                            Ok(n) => return Ok(n),
                            Err(e) if e.code == "variable-missing" => {
                                misses.push(alt.to_string());
                                continue;
                            }
                            Err(e) => return Err(e),
                        }
                    }
                    alt.to_string()
                } else if alt.contains("${") {
                    let n = self.interpolate(alt, span)?;
                    n.scalar_text().unwrap_or_default()
                } else {
                    alt.to_string()
                };
            match self.eval_ref(&reference, span)? {
                Some(n) => return Ok(n),
                None => misses.push(reference),
            }
        }
        let external = |m: &String| {
            m.starts_with("env:")
                || m.starts_with("opt:")
                || m.starts_with("file(")
                || m.starts_with("param:")
        };
        if self.ctx.allow_unresolved && !misses.is_empty() && misses.iter().all(external) {
            let whole = format!("${{{inner}}}");
            let d = missing(inner, &misses, span);
            self.warnings.push(
                Diag::warning(
                    "variable-unresolved",
                    format!("{} (kept as written)", d.message),
                )
                .at(span)
                .help("set it before deploying"),
            );
            return Ok(Node::new(Value::Str(whole), span));
        }
        Err(missing(inner, &misses, span))
    }

    /// Evaluates one `source:address`; `None` when the source has no such value.
    fn eval_ref(&mut self, r: &str, span: Span) -> Result<Option<Node>, Diag> {
        let (source, address) = if r.starts_with("file(") {
            ("file", r)
        } else {
            match r.split_once(':') {
                Some((s, a)) => (s.trim(), a.trim()),
                None => (r.trim(), ""),
            }
        };
        // `${cf(us-east-1):stack.output}`, `${ssm(raw):/path}`: a source may take arguments.
        let source = source.split_once('(').map_or(source, |(s, _)| s);
        let text = |v: String| Some(Node::new(Value::Str(v), span));
        Ok(match source {
            "env" => self.ctx.env.get(address).cloned().and_then(text),
            "opt" => self.ctx.opts.get(address).cloned().and_then(text),
            "stage" if address.is_empty() => text(self.stage()?),
            "sls" if address == "stage" => text(self.stage()?),
            "self" => {
                if address.is_empty() {
                    return Err(Diag::error(
                        "variable-syntax",
                        "`${self:}` needs a path, such as `${self:service}`",
                    )
                    .at(span));
                }
                let n = self.lookup_self(address, span)?;
                // `service: { name: x }` is an old form of `service: x`.
                match n {
                    Some(Node {
                        value: Value::Map(_),
                        ..
                    }) if address == "service" => n.and_then(|m| m.get("name").cloned()),
                    other => other,
                }
            }
            "param" => self.param(address, span)?,
            "file" => self.file_ref(r, span)?,
            "aws" if address == "region" => {
                let region = match self.ctx.region.clone() {
                    Some(r) => Some(r),
                    None => self
                        .lookup_self("provider.region", span)?
                        .and_then(|n| n.scalar_text()),
                };
                text(region.unwrap_or_else(|| "us-east-1".into()))
            }
            s if DEFERRED.contains(&s) => {
                let whole = format!("${{{r}}}");
                if self.warned.insert(whole.clone()) {
                    self.warnings.push(
                        Diag::warning("variable-deferred", format!("`{whole}` can only be resolved in the cloud account; it is kept as written"))
                            .at(span)
                            .help("ferry passes it through; set it through `--param` or `${env:..}` to resolve it locally"),
                    );
                }
                text(whole)
            }
            other => {
                let mut d = Diag::error(
                    "variable-source",
                    format!("unknown variable source `{other}` in `${{{r}}}`"),
                )
                .at(span);
                d = match did_you_mean(other, SOURCES.iter().copied()) {
                    Some(s) => d.help(format!("did you mean `{s}`?")),
                    None => d.help(format!("ferry resolves the sources {}", SOURCES.join(", "))),
                };
                return Err(d);
            }
        })
    }

    fn param(&mut self, name: &str, span: Span) -> Result<Option<Node>, Diag> {
        if let Some(v) = self.ctx.params.get(name) {
            return Ok(Some(Node::new(Value::Str(v.clone()), span)));
        }
        let stage = self.stage()?;
        if let Some(n) = self.lookup_self(&format!("params.{stage}.{name}"), span)? {
            return Ok(Some(n));
        }
        self.lookup_self(&format!("params.default.{name}"), span)
    }

    /// Finds `a.b.c` in the manifest, resolving variables met on the way.
    fn lookup_self(&mut self, address: &str, span: Span) -> Result<Option<Node>, Diag> {
        let raw = Rc::clone(&self.raw);
        let found = self.walk(&raw, "", address, span)?;
        if found.is_some() || self.computing_stage {
            return Ok(found);
        }
        // Like the Serverless Framework, `provider.stage` and `provider.region` have defaults
        // that `${self:..}` sees.
        Ok(match address {
            "provider.stage" => Some(Node::new(Value::Str(self.stage()?), span)),
            "provider.region" => Some(Node::new(
                Value::Str(
                    self.ctx
                        .region
                        .clone()
                        .unwrap_or_else(|| "us-east-1".into()),
                ),
                span,
            )),
            _ => None,
        })
    }

    fn walk(
        &mut self,
        start: &Node,
        base: &str,
        address: &str,
        span: Span,
    ) -> Result<Option<Node>, Diag> {
        // Borrowed while walking the tree as written; owned once a variable was resolved.
        let mut cur: Cow<'_, Node> = Cow::Borrowed(start);
        let mut path = base.to_owned();
        for seg in address.split('.').filter(|s| !s.is_empty()) {
            if let Value::Str(s) = &cur.value {
                if s.contains("${") {
                    cur = Cow::Owned(self.resolve_string_at(&s.clone(), cur.span, &path)?);
                    if self.ctx.allow_unresolved && cur.as_str().is_some_and(|s| s.contains("${")) {
                        // Walking into a value kept unresolved: what is found there is
                        // unresolved too (its cause was reported already).
                        let addr = if base.is_empty() {
                            format!("self:{address}")
                        } else {
                            format!("{base}:{address}")
                        };
                        return Ok(Some(Node::new(Value::Str(format!("${{{addr}}}")), span)));
                    }
                }
            }
            let next = match cur {
                Cow::Borrowed(c) => child(c, seg).map(Cow::Borrowed),
                Cow::Owned(ref c) => child(c, seg).cloned().map(Cow::Owned),
            };
            let Some(next) = next else { return Ok(None) };
            path = join(&path, seg);
            cur = next;
        }
        let before = self.errors.len();
        let n = self.resolve_node(&cur, &path);
        if self.errors.len() > before {
            let e = self.errors.pop().expect("error recorded");
            self.errors.truncate(before);
            let _ = span;
            return Err(e);
        }
        Ok(Some(n))
    }

    /// `file(./x.yml)` or `file(./x.yml):a.b`.
    fn file_ref(&mut self, r: &str, span: Span) -> Result<Option<Node>, Diag> {
        let rest = &r["file(".len()..];
        let Some(close) = rest.find(')') else {
            return Err(Diag::error(
                "variable-syntax",
                format!("`${{{r}}}` is missing the `)` of `file(`"),
            )
            .at(span));
        };
        let rel = rest[..close].trim().trim_matches(|c| c == '\'' || c == '"');
        let address = rest[close + 1..].strip_prefix(':').unwrap_or("").trim();
        let path = self.ctx.base_dir.join(rel);
        let ext = Path::new(rel)
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("");
        if matches!(ext, "js" | "cjs" | "mjs" | "ts") {
            return Err(Diag::error(
                "variable-file-js",
                format!("`${{{r}}}` loads JavaScript, which ferry does not run"),
            )
            .at(span)
            .help("export the values to a YAML or JSON file and point `file()` at it"));
        }
        let node = match self.files.get(&path) {
            Some(n) => Rc::clone(n),
            None => {
                let Ok(text) = std::fs::read_to_string(&path) else {
                    // Like the Serverless Framework: a missing file is a missing value, so a
                    // fallback can take over.
                    return Ok(None);
                };
                let id = self.sources.add(pretty_path(&path), text);
                let text = self.sources.get(id).text.clone();
                // YAML and JSON files are read as data; any other file is its text (a key, a
                // certificate), as in the Serverless Framework.
                let n = if matches!(ext, "yml" | "yaml" | "json") {
                    yaml::parse(&text, id)?
                } else {
                    Node::new(Value::Str(text.to_string()), Span::new(id, 0, text.len()))
                };
                let n = Rc::new(n);
                self.files.insert(path.clone(), Rc::clone(&n));
                n
            }
        };
        let base = format!("file({})", path.display());
        self.walk(&node, &base, address, span)
    }
}

/// The child of a mapping (by key) or a sequence (by index).
fn child<'a>(n: &'a Node, seg: &str) -> Option<&'a Node> {
    match &n.value {
        Value::Map(_) => n.get(seg),
        Value::Seq(items) => seg.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    }
}

fn pretty_path(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir
                if out.file_name().is_some() && out.file_name() != Some("..".as_ref()) =>
            {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn missing(inner: &str, misses: &[String], span: Span) -> Diag {
    let first = misses.first().map(String::as_str).unwrap_or(inner);
    let what = match first.split_once(':') {
        Some(("env", name)) => format!("the environment variable `{name}` is not set"),
        Some(("opt", name)) => format!("the option `--{name}` was not given"),
        Some(("self", path)) => format!("the manifest has no value at `{path}`"),
        Some(("param", name)) => {
            format!("no parameter `{name}` (from --param, params.<stage> or params.default)")
        }
        _ if first.starts_with("file(") => {
            format!("`{first}` found no file or no value at that key")
        }
        _ => format!("`{first}` has no value"),
    };
    Diag::error(
        "variable-missing",
        format!("cannot resolve `${{{inner}}}`: {what}"),
    )
    .at(span)
    .help(format!(
        "set it, or give a fallback: `${{{}, 'default'}}`",
        inner.trim()
    ))
}

/// `${AWS::Region}`, `${MyBucket}`, `${MyBucket.Arn}` and `${!Literal}` belong to
/// CloudFormation's `Fn::Sub`, not to ferry: they have no `source:` and are left as written.
fn is_cloudformation_sub(inner: &str) -> bool {
    let t = inner.trim();
    t.starts_with("AWS::")
        || t.starts_with('!')
        || (t != "stage"
            && !t.is_empty()
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.'))
}

/// Whether the first alternative reads a source only a cloud account can answer.
fn is_deferred(inner: &str) -> bool {
    let first = split_alternatives(inner)[0];
    let source = first.split([':', '(']).next().unwrap_or_default().trim();
    let address = first.split_once(':').map_or("", |(_, a)| a.trim());
    DEFERRED.contains(&source)
        && !(source == "sls" && address == "stage")
        && !(source == "aws" && address == "region")
}

fn quoted(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    if b.len() >= 2 && (b[0] == b'\'' || b[0] == b'"') && b[b.len() - 1] == b[0] {
        Some(&s[1..s.len() - 1])
    } else {
        None
    }
}

fn join(base: &str, seg: &str) -> String {
    if base.is_empty() {
        seg.to_owned()
    } else {
        format!("{base}.{seg}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(src: &str, ctx: VarContext) -> Result<serde_json::Value, Vec<Diag>> {
        let mut sources = Sources::new();
        let id = sources.add("serverless.yml", src.to_owned());
        let root = yaml::parse(src, id).map_err(|e| vec![e])?;
        resolve(root, &ctx, &mut sources).map(|r| r.root.to_json())
    }

    fn ctx() -> VarContext {
        let mut c = VarContext::default();
        c.env.insert("REGION".into(), "eu-west-1".into());
        c.env.insert("prod_URL".into(), "https://prod".into());
        c
    }

    #[test]
    fn self_env_opt_and_fallbacks() {
        let mut c = ctx();
        c.opts.insert("stage".into(), "prod".into());
        c.stage = Some("prod".into());
        let v = run(
            "service: shop\nprovider:\n  stage: ${opt:stage, 'dev'}\n  region: ${env:REGION}\nx: ${self:service}-${sls:stage}\ny: ${env:NOPE, 'fallback'}\nz: ${env:${opt:stage}_URL}\nw: ${opt:nope, self:provider.region}\nn: ${env:NOPE, 3}\n",
            c,
        )
        .unwrap();
        assert_eq!(v["provider"]["stage"], "prod");
        assert_eq!(v["x"], "shop-prod");
        assert_eq!(v["y"], "fallback");
        assert_eq!(v["z"], "https://prod");
        assert_eq!(v["w"], "eu-west-1");
        assert_eq!(v["n"], 3);
    }

    #[test]
    fn whole_value_variables_keep_their_type() {
        let v = run("custom:\n  list: [a, b]\n  n: 5\nfunctions:\n  f:\n    items: ${self:custom.list}\n    mem: ${self:custom.n}\n", ctx()).unwrap();
        assert_eq!(v["functions"]["f"]["items"], serde_json::json!(["a", "b"]));
        assert_eq!(v["functions"]["f"]["mem"], 5);
    }

    #[test]
    fn params_stage_wins_over_default_and_cli_wins_over_both() {
        let src = "provider: {stage: prod}\nparams:\n  default: {a: d, b: d}\n  prod: {a: p}\nx: ${param:a}\ny: ${param:b}\nz: ${param:c}\n";
        let mut c = ctx();
        c.params.insert("c".into(), "cli".into());
        let v = run(src, c).unwrap();
        assert_eq!(
            (v["x"].as_str(), v["y"].as_str(), v["z"].as_str()),
            (Some("p"), Some("d"), Some("cli"))
        );
    }

    #[test]
    fn stage_defaults_to_dev() {
        let v = run("x: ${sls:stage}-${stage}\n", ctx()).unwrap();
        assert_eq!(v["x"], "dev-dev");
    }

    #[test]
    fn cloudformation_sub_placeholders_are_left_alone() {
        let v = run(
            "a: ${AWS::Region}-${Bucket.Arn}-${!Literal}\nb: ${Thing}\n",
            ctx(),
        )
        .unwrap();
        assert_eq!(v["a"], "${AWS::Region}-${Bucket.Arn}-${!Literal}");
        assert_eq!(v["b"], "${Thing}");
    }

    #[test]
    fn cycles_print_the_chain() {
        let e = run("a: ${self:b}\nb: ${self:c}\nc: ${self:a}\n", ctx()).unwrap_err();
        assert_eq!(e.len(), 1, "one cycle, one error: {e:?}");
        assert_eq!(e[0].code, "variable-cycle");
        assert!(e[0].message.contains("a → b → c → a"), "{}", e[0].message);
    }

    #[test]
    fn missing_values_say_what_is_missing() {
        let e = run("a: ${env:NOT_SET_ANYWHERE}\n", ctx()).unwrap_err();
        assert!(e[0].message.contains("`NOT_SET_ANYWHERE` is not set"));
        assert!(e[0].help.as_deref().unwrap().contains("'default'"));
        let e = run("a: ${evn:X}\n", ctx()).unwrap_err();
        assert!(e[0].help.as_deref().unwrap().contains("`env`"));
    }

    #[test]
    fn file_references_and_dotenv() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("cfg.yml"),
            "prod:\n  url: https://x\n  name: ${self:service}\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("data.json"), "{\"k\": [1, 2]}").unwrap();
        std::fs::write(dir.path().join(".env"), "FROM_DOTENV=yes\nOVER=base\n").unwrap();
        std::fs::write(dir.path().join(".env.prod"), "OVER=prod\n").unwrap();
        let mut c = ctx();
        c.base_dir = dir.path().to_owned();
        c.stage = Some("prod".into());
        c.opts.insert("stage".into(), "prod".into());
        let v = run(
            "service: s\nuseDotenv: true\na: ${file(./cfg.yml):${opt:stage}.url}\nb: ${file(./cfg.yml):prod.name}\nc: ${file(./data.json):k}\nd: ${env:FROM_DOTENV}\ne: ${env:OVER}\nf: ${file(./none.yml):x, 'fb'}\n",
            c,
        )
        .unwrap();
        assert_eq!(v["a"], "https://x");
        assert_eq!(v["b"], "s");
        assert_eq!(v["c"], serde_json::json!([1, 2]));
        assert_eq!(v["d"], "yes");
        assert_eq!(v["e"], "prod");
        assert_eq!(v["f"], "fb");
    }

    #[test]
    fn splitting_respects_nesting_and_quotes() {
        assert_eq!(
            split_alternatives("opt:stage, 'a, b', ${x:y, z}"),
            vec!["opt:stage", "'a, b'", "${x:y, z}"]
        );
        assert_eq!(
            split_vars("a-${x:${y:z}}-b").unwrap(),
            vec![
                Part::Lit("a-"),
                Part::Var("x:${y:z}", 2, 13),
                Part::Lit("-b")
            ]
        );
        assert!(split_vars("${oops").is_err());
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Arbitrary text full of `${`, `}`, `:`, `,` and quotes never panics the resolver.
        #[test]
        fn resolver_never_panics(values in prop::collection::vec("([a-z.:,' ]|\\$\\{|\\}|self:|env:|opt:|file\\(|param:|sls:|\\)){0,40}", 1..6)) {
            let mut src = String::from("service: s\ncustom:\n");
            for (i, v) in values.iter().enumerate() {
                src.push_str(&format!("  k{i}: {}\n", serde_json::to_string(v).unwrap()));
            }
            let mut sources = Sources::new();
            let id = sources.add("serverless.yml", src.clone());
            let root = yaml::parse(&src, id).unwrap();
            let ctx = VarContext { base_dir: std::env::temp_dir(), ..Default::default() };
            let _ = resolve(root, &ctx, &mut sources);
        }

        /// References between keys resolve or fail with a diagnostic, never loop forever.
        #[test]
        fn self_references_terminate(edges in prop::collection::vec((0usize..6, 0usize..6), 1..10)) {
            let mut src = String::from("custom:\n");
            for i in 0..6 {
                let targets: Vec<String> = edges.iter().filter(|(a, _)| *a == i).map(|(_, b)| format!("${{self:custom.k{b}}}")).collect();
                let value = if targets.is_empty() { "leaf".to_owned() } else { targets.join("-") };
                src.push_str(&format!("  k{i}: \"{value}\"\n"));
            }
            let mut sources = Sources::new();
            let id = sources.add("serverless.yml", src.clone());
            let root = yaml::parse(&src, id).unwrap();
            match resolve(root, &VarContext::default(), &mut sources) {
                Ok(r) => {
                    let text = r.root.to_json().to_string();
                    prop_assert!(!text.contains("${"), "unresolved: {}", text);
                }
                Err(e) => prop_assert!(e.iter().all(|d| d.code == "variable-cycle"), "{:?}", e),
            }
        }
    }
}
