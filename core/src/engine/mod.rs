//! The provider-independent plan/state/apply engine.
//!
//! A [`Provider`] compiles the service model into [`Resource`]s; [`plan()`] reads the state
//! from a [`StateBackend`], refreshes it through the provider, and diffs, giving a [`Plan`]
//! (data, rendered by [`render`]); [`apply()`] takes a plan, checks it is not stale, and
//! applies it in dependency order with bounded parallelism and retries, saving the state
//! as changes complete.

pub mod apply;
pub mod backend;
pub mod desired;
pub mod diff;
pub mod events;
pub mod graph;
pub mod plan;
pub mod provider;
pub mod redact;
pub mod render;
pub mod resource;
pub mod retry;
pub mod state;

pub use apply::{apply, ApplyOptions, ApplyReport};
pub use backend::{LocalBackend, LockInfo, StateBackend, StateError};
pub use events::{CollectEvents, Event, EventSink, NoEvents};
pub use graph::GraphError;
pub use plan::{
    Action, Plan, PlanValue, ResourceChange, ServerCheck, Summary, PLAN_FORMAT_VERSION,
};
pub use provider::{
    ApplyRequest, Artifact, Artifacts, Inputs, Operation, Provider, ProviderError, ReadRequest,
    SecretValues,
};
pub use resource::{project_live, reference, Attributes, Resource};
pub use retry::RetryPolicy;
pub use state::{State, StateResource, FERRY_VERSION, STATE_VERSION};

use desired::Desired;
use diff::{diff, DiffInput, Live};
use futures_util::stream::{self, StreamExt};
use redact::{random_salt, salted_hash, Redactor};
use std::collections::{BTreeMap, BTreeSet};

/// Default number of resources read or applied at once.
pub const DEFAULT_PARALLELISM: usize = 8;

/// Engine errors. [`EngineError::is_user_error`] tells the CLI which exit code to use.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The provider could not compile the service.
    #[error("the {provider} provider could not compile the service: {message}")]
    Compile {
        /// Provider name.
        provider: String,
        /// Why (secrets scrubbed).
        message: String,
    },
    /// The compiled resources do not form a valid graph.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// State storage failed or is locked.
    #[error(transparent)]
    State(#[from] StateError),
    /// `--target` names no function.
    #[error("--target `{name}`: no such function; functions: {}", if .known.is_empty() { "(none)".to_owned() } else { .known.join(", ") })]
    UnknownTarget {
        /// The name given.
        name: String,
        /// The functions there are.
        known: Vec<String>,
    },
    /// Reading a live resource failed.
    #[error("refreshing {address} failed: {message}; fix the cause, or plan from state alone with --refresh=false")]
    Refresh {
        /// Address.
        address: String,
        /// Why (secrets scrubbed).
        message: String,
    },
    /// A saved plan no longer matches.
    #[error("the saved plan is stale: {}; nothing was changed. Make a new plan with `ferry plan --out plan.json`", .0.join("; "))]
    StalePlan(Vec<String>),
    /// A reference could not be resolved at apply time.
    #[error("{address}: cannot resolve `{reference}`: {why}")]
    Unresolved {
        /// The resource being applied.
        address: String,
        /// The reference.
        reference: String,
        /// Why.
        why: String,
    },
    /// Some changes failed; the state holds exactly what was made.
    #[error("{} of the changes failed ({}){}; the state holds what was made ({} change{} applied); fix the cause and run the same command again to finish", .failed.len(), .failed.iter().map(|(a, e)| format!("{a}: {e}")).collect::<Vec<_>>().join("; "), if .not_run.is_empty() { String::new() } else { format!(", {} not attempted", .not_run.len()) }, .applied, if *.applied == 1 { "" } else { "s" })]
    ApplyFailed {
        /// Address and error (secrets scrubbed) of each failure.
        failed: Vec<(String, String)>,
        /// Changes not attempted because of the failures.
        not_run: Vec<String>,
        /// Changes that succeeded.
        applied: usize,
    },
}

impl EngineError {
    /// True when the user's input (target, saved plan, lock) is at fault rather than ferry or
    /// the cloud: exit code 2 instead of 1.
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            EngineError::UnknownTarget { .. }
                | EngineError::StalePlan(_)
                | EngineError::State(StateError::Locked(_))
        )
    }
}

/// How to plan.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// Read live resources first (`--refresh=false` turns it off).
    pub refresh: bool,
    /// Plan to delete everything (or the targets).
    pub destroy: bool,
    /// Only these functions (and what they depend on; for a destroy, what depends on them).
    pub targets: Vec<String>,
    /// Reads at once.
    pub parallelism: usize,
    /// Retries of retryable read errors.
    pub retry: RetryPolicy,
    /// Show sensitive values in the plan (the explicit flag); the state never holds them.
    pub reveal_sensitive: bool,
    /// Ask the provider for server-side dry runs of the creates and updates whose every input
    /// is known ([`Provider::dry_run`]).
    pub dry_run: bool,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            refresh: true,
            destroy: false,
            targets: vec![],
            parallelism: DEFAULT_PARALLELISM,
            retry: RetryPolicy::default(),
            reveal_sensitive: false,
            dry_run: false,
        }
    }
}

/// The redactor for a run: every secret value, never revealing (state, logs), or revealing
/// when the user asked (plan output).
pub(crate) fn redactor(inputs: &Inputs<'_>, reveal: bool) -> Redactor {
    Redactor::new(inputs.secrets.values().cloned(), reveal)
}

/// Compiles and checks the desired resources.
pub(crate) fn compile(
    provider: &dyn Provider,
    inputs: &Inputs<'_>,
    redactor: &mut Redactor,
) -> Result<Desired, EngineError> {
    let list = provider.compile(inputs).map_err(|e| EngineError::Compile {
        provider: provider.name().to_owned(),
        message: redactor.scrub(&e.message).into_owned(),
    })?;
    Ok(Desired::build(list, redactor)?)
}

/// The salted hash of the service model that a plan records.
pub(crate) fn manifest_hash(salt: &str, inputs: &Inputs<'_>) -> String {
    salted_hash(
        salt,
        &serde_json::to_value(inputs.service).unwrap_or(serde_json::Value::Null),
    )
}

/// Which desired and recorded addresses a plan covers.
fn scopes(
    desired: &Desired,
    state: Option<&State>,
    inputs: &Inputs<'_>,
    opts: &PlanOptions,
) -> Result<(BTreeSet<String>, BTreeSet<String>), EngineError> {
    let recorded: BTreeMap<String, StateResource> =
        state.map(|s| s.resources.clone()).unwrap_or_default();
    if opts.targets.is_empty() {
        return Ok((
            desired.resources.keys().cloned().collect(),
            recorded.keys().cloned().collect(),
        ));
    }
    let mut known: BTreeSet<String> = inputs.service.functions.keys().cloned().collect();
    known.extend(recorded.values().filter_map(|r| r.function.clone()));
    for t in &opts.targets {
        if !known.contains(t) {
            return Err(EngineError::UnknownTarget {
                name: t.clone(),
                known: known.into_iter().collect(),
            });
        }
    }
    let targeted = |f: &Option<String>| f.as_ref().is_some_and(|f| opts.targets.contains(f));
    // Desired: the targets' resources and everything they depend on.
    let mut want: Vec<String> = desired
        .resources
        .values()
        .filter(|r| targeted(&r.function))
        .map(|r| r.address.clone())
        .collect();
    let mut desired_scope = BTreeSet::new();
    while let Some(a) = want.pop() {
        if desired_scope.insert(a.clone()) {
            if let Some(r) = desired.resources.get(&a) {
                want.extend(r.all_dependencies());
            }
        }
    }
    // Recorded: the targets' resources and, for a destroy, everything depending on them.
    let mut state_scope: BTreeSet<String> = recorded
        .iter()
        .filter(|(_, r)| targeted(&r.function))
        .map(|(a, _)| a.clone())
        .collect();
    if opts.destroy {
        loop {
            let more: Vec<String> = recorded
                .iter()
                .filter(|(a, r)| {
                    !state_scope.contains(*a)
                        && r.depends_on.iter().any(|d| state_scope.contains(d))
                })
                .map(|(a, _)| a.clone())
                .collect();
            if more.is_empty() {
                break;
            }
            state_scope.extend(more);
        }
    }
    Ok((desired_scope, state_scope))
}

/// Computes a plan: reads the state, compiles the desired resources, refreshes the recorded
/// ones through the provider (unless `opts.refresh` is false), and diffs. Changes nothing.
pub async fn plan(
    provider: &dyn Provider,
    inputs: &Inputs<'_>,
    backend: &dyn StateBackend,
    opts: &PlanOptions,
    events: &dyn EventSink,
) -> Result<Plan, EngineError> {
    let state = backend.read().await?;
    let mut shown = redactor(inputs, opts.reveal_sensitive);
    let mut logs = redactor(inputs, false);
    let desired = if opts.destroy {
        Desired::empty()
    } else {
        let d = compile(provider, inputs, &mut logs)?;
        shown = if opts.reveal_sensitive {
            shown
        } else {
            logs.clone()
        };
        d
    };
    let (desired_scope, state_scope) = scopes(&desired, state.as_ref(), inputs, opts)?;

    let mut live = BTreeMap::new();
    if let (true, Some(st)) = (opts.refresh, state.as_ref()) {
        let to_read: Vec<(&String, &StateResource)> = st
            .resources
            .iter()
            .filter(|(a, _)| desired_scope.contains(*a) || state_scope.contains(*a))
            .collect();
        let priors: Vec<(&String, &StateResource, Attributes)> = to_read
            .iter()
            .map(|(a, r)| (*a, *r, st.prior(a).unwrap_or_else(|| r.prior())))
            .collect();
        let reads: Vec<ReadRequest<'_>> = priors
            .iter()
            .map(|(address, rec, recorded)| ReadRequest {
                address,
                kind: &rec.kind,
                recorded,
            })
            .collect();
        provider.prefetch(&reads).await;
        let results: Vec<(String, Result<Option<Attributes>, ProviderError>)> =
            stream::iter(reads.iter())
                .map(|req| {
                    let logs = &logs;
                    async move {
                        events.event(&Event::Refreshing {
                            address: req.address.to_owned(),
                        });
                        let what = format!("read {}", req.address);
                        let (r, _) = retry::with_retries(&opts.retry, &what, events, logs, || {
                            provider.read(req)
                        })
                        .await;
                        (req.address.to_owned(), r)
                    }
                })
                .buffer_unordered(opts.parallelism.max(1))
                .collect()
                .await;
        for (addr, r) in results {
            match r {
                Ok(Some(attrs)) => {
                    live.insert(addr, Live::Present(attrs));
                }
                Ok(None) => {
                    live.insert(addr, Live::Gone);
                }
                Err(e) => {
                    return Err(EngineError::Refresh {
                        address: addr,
                        message: logs.scrub(&e.message).into_owned(),
                    })
                }
            }
        }
    }

    let salt = random_salt();
    let changes = diff(&DiffInput {
        desired: &desired,
        desired_scope: &desired_scope,
        state: state.as_ref(),
        state_scope: &state_scope,
        live: &live,
        redactor: &shown,
        plan_salt: &salt,
    });
    for c in &changes {
        if let Some(d) = &c.drift {
            events.event(&Event::Drifted {
                address: c.address.clone(),
                gone: d.gone,
            });
        }
    }
    let checks = if opts.dry_run {
        dry_runs(provider, &desired, state.as_ref(), &changes, &logs).await
    } else {
        Vec::new()
    };
    Ok(Plan {
        format_version: PLAN_FORMAT_VERSION,
        ferry_version: FERRY_VERSION.to_owned(),
        service: inputs.service.service.clone(),
        stage: inputs.service.stage.clone(),
        provider: provider.name().to_owned(),
        destroy: opts.destroy,
        targets: opts.targets.clone(),
        refreshed: opts.refresh,
        sensitive_revealed: opts.reveal_sensitive,
        state: state.as_ref().map(|s| plan::StateRef {
            lineage: s.lineage.clone(),
            serial: s.serial,
        }),
        manifest_hash: manifest_hash(&salt, inputs),
        artifacts: inputs
            .artifacts
            .functions
            .iter()
            .map(|(k, a)| (k.clone(), a.sha256.clone()))
            .collect(),
        salt,
        summary: plan::Summary::of(&changes),
        changes,
        checks,
    })
}

/// Server-side dry runs of the creates and updates whose inputs are all known now: every
/// resource they depend on is in the state and unchanged by this plan, so each reference
/// resolves to its recorded value. (A change that waits on a resource this plan makes or
/// remakes is left to the deploy: the cloud would refuse it for a reason the deploy removes.)
async fn dry_runs(
    provider: &dyn Provider,
    desired: &Desired,
    state: Option<&State>,
    changes: &[ResourceChange],
    logs: &Redactor,
) -> Vec<plan::ServerCheck> {
    let Some(state) = state else {
        // Nothing exists yet: every change waits on another.
        return Vec::new();
    };
    let actions: BTreeMap<&str, Action> = changes
        .iter()
        .map(|c| (c.address.as_str(), c.action))
        .collect();
    let mut out = Vec::new();
    for c in changes {
        let op = match c.action {
            Action::Create => Operation::Create,
            Action::Update => Operation::Update,
            _ => continue,
        };
        let Some(r) = desired.resources.get(&c.address) else {
            continue;
        };
        let ready = r.all_dependencies().iter().all(|d| {
            state.resources.contains_key(d)
                && matches!(actions.get(d.as_str()), None | Some(Action::NoOp))
        });
        if !ready {
            continue;
        }
        let resolved: Option<Attributes> = r
            .attributes
            .iter()
            .map(|(k, v)| {
                resource::resolve(v, &mut |rf| diff::lookup_recorded(&state.resources, rf))
                    .map(|x| (k.clone(), x))
            })
            .collect();
        let Some(attrs) = resolved else {
            continue;
        };
        let prior = state.prior(&c.address);
        let req = ApplyRequest {
            address: &c.address,
            kind: &r.kind,
            operation: op,
            desired: Some(&attrs),
            prior: prior.as_ref().filter(|_| op == Operation::Update),
        };
        match provider.dry_run(&req).await {
            Ok(false) => {}
            Ok(true) => out.push(plan::ServerCheck {
                address: c.address.clone(),
                accepted: true,
                message: None,
            }),
            Err(e) => out.push(plan::ServerCheck {
                address: c.address.clone(),
                accepted: false,
                message: Some(logs.scrub(&e.message).into_owned()),
            }),
        }
    }
    out
}
