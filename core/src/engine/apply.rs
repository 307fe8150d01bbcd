//! Applying a plan: staleness checks under the state lock, then every change in dependency
//! order (deletes in reverse), at most `parallelism` at once, retrying retryable errors, and
//! saving the state as changes complete (one write in flight at a time, overlapping the calls)
//! so an interrupted run resumes.

use super::desired::Desired;
use super::diff::{desired_hash, recorded_value};
use super::events::{Event, EventSink};
use super::graph::Graph;
use super::plan::{Action, Plan, Summary};
use super::provider::{ApplyRequest, Inputs, Operation, Provider, ReadRequest};
use super::redact::Redactor;
use super::resource::{references_in, resolve, Attributes};
use super::retry::{with_retries, RetryPolicy};
use super::state::{State, StateResource, FERRY_VERSION};
use super::{compile, manifest_hash, redactor, EngineError, LockInfo, StateBackend};
use futures_util::future::BoxFuture;
use futures_util::stream::{FuturesUnordered, StreamExt};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Instant;

/// How to apply.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Changes in flight at once (`--parallelism`).
    pub parallelism: usize,
    /// Retries of retryable provider errors.
    pub retry: RetryPolicy,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            parallelism: super::DEFAULT_PARALLELISM,
            retry: RetryPolicy::default(),
        }
    }
}

/// What an apply did.
#[derive(Debug, Clone, PartialEq)]
pub struct ApplyReport {
    /// Each change made, in the order they finished.
    pub applied: Vec<(String, Action)>,
    /// The state's serial afterwards.
    pub serial: u64,
    /// The plan's counts.
    pub summary: Summary,
}

/// Applies a plan (fresh or saved): takes the state lock, refuses a stale plan, then makes
/// the changes. On failure the state holds exactly what was made, and the error says so.
pub async fn apply(
    provider: &dyn Provider,
    inputs: &Inputs<'_>,
    backend: &dyn StateBackend,
    plan: &Plan,
    opts: &ApplyOptions,
    events: &dyn EventSink,
) -> Result<ApplyReport, EngineError> {
    let lock = LockInfo::for_this_process(if plan.destroy { "remove" } else { "deploy" });
    backend.lock(&lock).await?;
    let result = apply_locked(provider, inputs, backend, plan, opts, events).await;
    let unlocked = backend.unlock(&lock.id).await;
    let report = result?;
    unlocked?;
    Ok(report)
}

/// Why a saved plan cannot be applied any more; empty when it still can.
pub fn staleness(
    plan: &Plan,
    state: Option<&State>,
    inputs: &Inputs<'_>,
    provider: &str,
    desired: &Desired,
) -> Vec<String> {
    let mut why = Vec::new();
    if plan.ferry_version != FERRY_VERSION {
        why.push(format!(
            "it was made by ferry {}, this is ferry {FERRY_VERSION}",
            plan.ferry_version
        ));
    }
    let here = format!(
        "{}/{}/{provider}",
        inputs.service.service, inputs.service.stage
    );
    if plan.key() != here {
        why.push(format!("it is for {}, not {here}", plan.key()));
    }
    match (&plan.state, state) {
        (None, Some(s)) => why.push(format!(
            "it was made before any state existed, and a deploy has since written one (serial {})",
            s.serial
        )),
        (Some(_), None) => why.push("the state it was made against no longer exists".into()),
        (Some(p), Some(s)) if p.lineage != s.lineage => why.push(format!(
            "the state lineage is {}, the plan was made against lineage {} (a different deployment)",
            s.lineage, p.lineage
        )),
        (Some(p), Some(s)) if p.serial != s.serial => why.push(format!(
            "the state serial is {}, the plan was made at serial {} (the state changed since: another deploy ran)",
            s.serial, p.serial
        )),
        _ => {}
    }
    if manifest_hash(&plan.salt, inputs) != plan.manifest_hash {
        why.push("the manifest changed since the plan was made".into());
    }
    let now: BTreeMap<&String, &String> = inputs
        .artifacts
        .functions
        .iter()
        .map(|(k, a)| (k, &a.sha256))
        .collect();
    let then: BTreeMap<&String, &String> = plan.artifacts.iter().collect();
    for (f, h) in &then {
        match now.get(f) {
            None => why.push(format!("the package of function `{f}` is gone")),
            Some(n) if n != h => why.push(format!(
                "the package of function `{f}` changed (sha256 {} in the plan, {} now)",
                short(h),
                short(n)
            )),
            _ => {}
        }
    }
    for f in now.keys().filter(|f| !then.contains_key(*f)) {
        why.push(format!(
            "function `{f}` has a package the plan did not have"
        ));
    }
    if why.is_empty() && !plan.destroy {
        let planned: BTreeSet<&str> = plan.changes.iter().map(|c| c.address.as_str()).collect();
        for c in &plan.changes {
            let Some(h) = &c.desired_hash else { continue };
            match desired.resources.get(&c.address) {
                None => why.push(format!("{} is no longer part of the service", c.address)),
                Some(r) if &desired_hash(&plan.salt, r) != h => why.push(format!(
                    "{}'s configuration changed since the plan (an input such as a secret or an environment value differs)",
                    c.address
                )),
                _ => {}
            }
        }
        if plan.targets.is_empty() {
            for a in desired
                .resources
                .keys()
                .filter(|a| !planned.contains(a.as_str()))
            {
                why.push(format!("{a} is new since the plan"));
            }
        }
    }
    why
}

fn short(h: &str) -> &str {
    &h[..h.len().min(12)]
}

/// One finished provider call.
struct Done {
    node: usize,
    op: Operation,
    result: Result<Attributes, String>,
    elapsed: std::time::Duration,
}

async fn apply_locked(
    provider: &dyn Provider,
    inputs: &Inputs<'_>,
    backend: &dyn StateBackend,
    plan: &Plan,
    opts: &ApplyOptions,
    events: &dyn EventSink,
) -> Result<ApplyReport, EngineError> {
    let recorded = backend.read().await?;
    let mut logs = redactor(inputs, false);
    let desired = if plan.destroy {
        Desired::empty()
    } else {
        compile(provider, inputs, &mut logs)?
    };
    let why = staleness(plan, recorded.as_ref(), inputs, provider.name(), &desired);
    if !why.is_empty() {
        return Err(EngineError::StalePlan(why));
    }
    let mut state = recorded.unwrap_or_else(|| {
        State::new(
            &inputs.service.service,
            &inputs.service.stage,
            provider.name(),
        )
    });

    // Let the provider refuse deletes it knows will fail (a bucket that is not empty)
    // before anything changes, rather than halfway through.
    let priors: Vec<(String, String, Attributes)> = plan
        .changes
        .iter()
        .filter(|c| matches!(c.action, Action::Delete | Action::Replace))
        .filter_map(|c| {
            let rec = state.resources.get(&c.address)?;
            Some((
                c.address.clone(),
                rec.kind.clone(),
                state.prior(&c.address)?,
            ))
        })
        .collect();
    let deletes: Vec<ReadRequest<'_>> = priors
        .iter()
        .map(|(address, kind, recorded)| ReadRequest {
            address,
            kind,
            recorded,
        })
        .collect();
    if !deletes.is_empty() {
        if let Err(e) = provider.check_deletes(&deletes).await {
            return Err(EngineError::ApplyFailed {
                failed: vec![(
                    "(before applying)".into(),
                    logs.scrub(&e.message).into_owned(),
                )],
                not_run: plan
                    .changes
                    .iter()
                    .filter(|c| c.action != Action::NoOp)
                    .map(|c| c.address.clone())
                    .collect(),
                applied: 0,
            });
        }
    }

    // The graph of changes. A create/update/replace waits for its dependencies; a delete
    // waits for everything that (by the state) depended on it.
    let nodes: Vec<&super::plan::ResourceChange> = plan
        .changes
        .iter()
        .filter(|c| c.action != Action::NoOp)
        .collect();
    let mut g = Graph::new(nodes.iter().map(|c| c.address.clone()))?;
    for c in &nodes {
        if c.action == Action::Delete {
            for (other, rec) in &state.resources {
                if rec.depends_on.contains(&c.address) {
                    g.add_edge(&c.address, other);
                }
            }
        } else {
            for d in &c.depends_on {
                g.add_edge(&c.address, d);
            }
        }
    }
    let order = g.topo_order()?;
    let rank: BTreeMap<usize, usize> = order.iter().enumerate().map(|(r, &i)| (i, r)).collect();
    let dependents = g.dependents();
    let mut waiting: Vec<usize> = (0..g.len()).map(|i| g.dependencies(i).len()).collect();
    let mut ready: VecDeque<usize> = order.iter().copied().filter(|&i| waiting[i] == 0).collect();

    let mut inflight: FuturesUnordered<BoxFuture<'_, Done>> = FuturesUnordered::new();
    let mut run_outputs: BTreeMap<String, Attributes> = BTreeMap::new();
    let mut applied = Vec::new();
    let mut failed: Vec<(String, String)> = Vec::new();
    let mut finished: BTreeSet<usize> = BTreeSet::new();
    let mut writes = 0u32;
    let mut write_error = None;
    let parallelism = opts.parallelism.max(1);
    // State writes overlap the provider calls: at most one write in flight, and when it
    // finishes the next one records everything done meanwhile. A write never waits for a
    // call and a call never waits for a write (with hundreds of resources, writing the
    // whole document after each one, in line, took longer than the calls themselves).
    let mut saving: Option<BoxFuture<'_, (u64, Result<(), super::StateError>)>> = None;
    let mut dirty = false;

    loop {
        while failed.is_empty() && write_error.is_none() && inflight.len() < parallelism {
            let Some(i) = ready.pop_front() else { break };
            let c = nodes[i];
            let op = match c.action {
                Action::Create => Operation::Create,
                Action::Update => Operation::Update,
                _ => Operation::Delete,
            };
            inflight.push(launch(
                i,
                op,
                c,
                provider,
                &desired,
                &state,
                &run_outputs,
                &logs,
                opts,
                events,
            ));
        }
        if dirty && saving.is_none() && write_error.is_none() {
            state.serial += 1;
            state.ferry_version = FERRY_VERSION.to_owned();
            let snapshot = state.clone();
            dirty = false;
            writes += 1;
            saving = Some(Box::pin(async move {
                let r = backend.write(&snapshot).await;
                (snapshot.serial, r)
            }));
        }
        let next = match saving.as_mut() {
            Some(w) if !inflight.is_empty() => tokio::select! {
                r = w => Next::Saved(r),
                d = inflight.next() => Next::Done(d),
            },
            Some(w) => Next::Saved(w.await),
            None => Next::Done(inflight.next().await),
        };
        let done = match next {
            Next::Saved((serial, r)) => {
                saving = None;
                match r {
                    Ok(()) => events.event(&Event::StateWritten { serial }),
                    Err(e) => {
                        write_error.get_or_insert(e);
                    }
                }
                continue;
            }
            Next::Done(Some(done)) => done,
            Next::Done(None) => break,
        };
        let c = nodes[done.node];
        let step = step_action(done.op);
        match done.result {
            Err(msg) => {
                events.event(&Event::Failed {
                    address: c.address.clone(),
                    action: step,
                    error: msg.clone(),
                });
                failed.push((c.address.clone(), msg));
                continue;
            }
            Ok(attrs) => {
                events.event(&Event::Applied {
                    address: c.address.clone(),
                    action: step,
                    elapsed: done.elapsed,
                });
                match done.op {
                    Operation::Delete => {
                        state.resources.remove(&c.address);
                        run_outputs.remove(&c.address);
                    }
                    Operation::Create | Operation::Update => {
                        if let Some(r) = desired.resources.get(&c.address) {
                            // Once sensitive, always sensitive: a path stays hashed even
                            // when the secret it held is no longer known.
                            let mut sens = desired.sensitive[&c.address].clone();
                            if let Some(prev) = state.resources.get(&c.address) {
                                sens.extend(prev.sensitive.iter().cloned());
                            }
                            let rec = StateResource::record(r, &sens, &attrs, &logs, &state.salt);
                            state.resources.insert(c.address.clone(), rec);
                        }
                        run_outputs.insert(c.address.clone(), attrs);
                    }
                }
                applied.push((c.address.clone(), step));
                dirty = true;
                if c.action == Action::Replace && done.op == Operation::Delete {
                    // The second half of a replacement, ahead of anything else waiting.
                    if failed.is_empty() && write_error.is_none() {
                        inflight.push(launch(
                            done.node,
                            Operation::Create,
                            c,
                            provider,
                            &desired,
                            &state,
                            &run_outputs,
                            &logs,
                            opts,
                            events,
                        ));
                    }
                    continue;
                }
                finished.insert(done.node);
                let mut now_ready: Vec<usize> = Vec::new();
                for &d in &dependents[done.node] {
                    waiting[d] -= 1;
                    if waiting[d] == 0 {
                        now_ready.push(d);
                    }
                }
                now_ready.sort_by_key(|i| rank[i]);
                ready.extend(now_ready);
            }
        }
    }
    // What finished after the last write.
    if dirty && write_error.is_none() {
        writes += 1;
        if let Err(e) = save(backend, &mut state, events).await {
            write_error.get_or_insert(e);
        }
    }
    if let Some(e) = write_error {
        return Err(e.into());
    }
    if !failed.is_empty() {
        let failed_set: BTreeSet<&str> = failed.iter().map(|(a, _)| a.as_str()).collect();
        let not_run = (0..nodes.len())
            .filter(|i| !finished.contains(i) && !failed_set.contains(nodes[*i].address.as_str()))
            .map(|i| nodes[i].address.clone())
            .collect();
        return Err(EngineError::ApplyFailed {
            failed,
            not_run,
            applied: applied.len(),
        });
    }
    if writes == 0 {
        save(backend, &mut state, events).await?;
    }
    Ok(ApplyReport {
        applied,
        serial: state.serial,
        summary: plan.summary,
    })
}

/// What the apply loop woke up for.
enum Next {
    /// A state write finished (its serial and result).
    Saved((u64, Result<(), super::StateError>)),
    /// A provider call finished (`None`: none is running).
    Done(Option<Done>),
}

fn step_action(op: Operation) -> Action {
    match op {
        Operation::Create => Action::Create,
        Operation::Update => Action::Update,
        Operation::Delete => Action::Delete,
    }
}

async fn save(
    backend: &dyn StateBackend,
    state: &mut State,
    events: &dyn EventSink,
) -> Result<(), super::StateError> {
    state.serial += 1;
    state.ferry_version = FERRY_VERSION.to_owned();
    backend.write(state).await?;
    events.event(&Event::StateWritten {
        serial: state.serial,
    });
    Ok(())
}

/// Where a reference's value comes from at apply time.
enum Source {
    Value(Value),
    /// Only a hash is recorded (a sensitive output): ask the provider for the live value.
    Read {
        kind: String,
        prior: Attributes,
    },
}

/// Starts one provider call. Everything the call needs is gathered now (the state changes
/// while calls are in flight).
#[allow(clippy::too_many_arguments)]
fn launch<'a>(
    node: usize,
    op: Operation,
    change: &'a super::plan::ResourceChange,
    provider: &'a dyn Provider,
    desired: &'a Desired,
    state: &State,
    run_outputs: &BTreeMap<String, Attributes>,
    logs: &'a Redactor,
    opts: &'a ApplyOptions,
    events: &'a dyn EventSink,
) -> BoxFuture<'a, Done> {
    let address = change.address.as_str();
    let prior = state.prior(address);
    let resource = desired.resources.get(address);
    let mut sources: BTreeMap<(String, String), Source> = BTreeMap::new();
    if let (Some(r), Operation::Create | Operation::Update) = (resource, op) {
        for v in r.attributes.values() {
            for rf in references_in(v) {
                let key = (rf.address.clone(), rf.attribute.clone());
                if sources.contains_key(&key) {
                    continue;
                }
                let from_run = run_outputs
                    .get(&rf.address)
                    .and_then(|o| o.get(&rf.attribute))
                    .cloned();
                let from_desired = desired
                    .resources
                    .get(&rf.address)
                    .and_then(|d| d.attributes.get(&rf.attribute))
                    .filter(|v| references_in(v).is_empty())
                    .cloned();
                let rec = state.resources.get(&rf.address);
                let src = match (from_run, from_desired, rec) {
                    (Some(v), _, _) | (None, Some(v), _) => Some(Source::Value(v)),
                    (None, None, Some(rec)) => Some(match recorded_value(rec, &rf.attribute) {
                        Some(v) => Source::Value(v),
                        None => Source::Read {
                            kind: rec.kind.clone(),
                            prior: state.prior(&rf.address).unwrap_or_else(|| rec.prior()),
                        },
                    }),
                    (None, None, None) => None,
                };
                if let Some(src) = src {
                    sources.insert(key, src);
                }
            }
        }
    }
    Box::pin(async move {
        let start = Instant::now();
        let step = step_action(op);
        events.event(&Event::Applying {
            address: address.to_owned(),
            action: step,
        });
        let result = async {
            let resolved = match (resource, op) {
                (Some(r), Operation::Create | Operation::Update) => Some(
                    resolve_attrs(
                        provider,
                        address,
                        &r.attributes,
                        sources,
                        opts,
                        events,
                        logs,
                    )
                    .await?,
                ),
                _ => None,
            };
            let what = format!("{} {address}", step.as_str());
            let kind = resource
                .map(|r| r.kind.as_str())
                .unwrap_or(change.kind.as_str());
            let req = ApplyRequest {
                address,
                kind,
                operation: op,
                desired: resolved.as_ref(),
                prior: if op == Operation::Create {
                    None
                } else {
                    prior.as_ref()
                },
            };
            let (r, _) =
                with_retries(&opts.retry, &what, events, logs, || provider.apply(&req)).await;
            r.map_err(|e| logs.scrub(&e.message).into_owned())
        }
        .await;
        Done {
            node,
            op,
            result,
            elapsed: start.elapsed(),
        }
    })
}

/// Resolves every reference, reading live values the state could only keep as hashes.
async fn resolve_attrs(
    provider: &dyn Provider,
    address: &str,
    attrs: &Attributes,
    sources: BTreeMap<(String, String), Source>,
    opts: &ApplyOptions,
    events: &dyn EventSink,
    logs: &Redactor,
) -> Result<Attributes, String> {
    let mut values: BTreeMap<(String, String), Value> = BTreeMap::new();
    let mut live: BTreeMap<String, Option<Attributes>> = BTreeMap::new();
    for ((dep, attr), src) in sources {
        let v = match src {
            Source::Value(v) => Some(v),
            Source::Read { kind, prior } => {
                if !live.contains_key(&dep) {
                    let what = format!("read {dep}");
                    let req = ReadRequest {
                        address: &dep,
                        kind: &kind,
                        recorded: &prior,
                    };
                    let (r, _) =
                        with_retries(&opts.retry, &what, events, logs, || provider.read(&req))
                            .await;
                    live.insert(
                        dep.clone(),
                        r.map_err(|e| logs.scrub(&e.message).into_owned())?,
                    );
                }
                live[&dep].as_ref().and_then(|a| a.get(&attr)).cloned()
            }
        };
        if let Some(v) = v {
            values.insert((dep, attr), v);
        }
    }
    let mut out = Attributes::new();
    for (k, v) in attrs {
        let mut missing = None;
        let r = resolve(v, &mut |rf| {
            let got = values
                .get(&(rf.address.clone(), rf.attribute.clone()))
                .cloned();
            if got.is_none() {
                missing = Some(rf.clone());
            }
            got
        });
        match r {
            Some(x) => {
                out.insert(k.clone(), x);
            }
            None => {
                let rf = missing.map(|m| super::resource::reference(&m.address, &m.attribute));
                return Err(EngineError::Unresolved {
                    address: address.to_owned(),
                    reference: rf.unwrap_or_default(),
                    why: "the referenced resource has no such attribute (it was not created, or the provider returned no such output)".into(),
                }
                .to_string());
            }
        }
    }
    Ok(out)
}
