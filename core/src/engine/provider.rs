//! The seam providers plug into: compile the model into resources, read live resources, and
//! apply one change at a time. Everything else (diff, order, retries, state) is the engine's.

use super::resource::{Attributes, Resource};
use crate::model::Service;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The built package of each function: what the provider uploads and the plan hashes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifacts {
    /// Function name → its artifact.
    pub functions: BTreeMap<String, Artifact>,
}

/// One function's package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    /// Hex sha256 of the package file.
    pub sha256: String,
    /// Where the package is on disk.
    pub path: PathBuf,
}

/// Secret values by secret service name, as the CLI obtained them (never from the manifest
/// file itself). The engine redacts them, and anything containing them, everywhere.
pub type SecretValues = BTreeMap<String, String>;

/// Everything a provider compiles from.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// The service model for one stage.
    pub service: &'a Service,
    /// Built packages.
    pub artifacts: &'a Artifacts,
    /// Values of `secret` services.
    pub secrets: &'a SecretValues,
}

/// What a provider is asked to do to one resource. A replacement reaches the provider as a
/// `Delete` followed by a `Create`, with the state written in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    /// Make a new resource.
    Create,
    /// Change a resource in place.
    Update,
    /// Remove a resource. Must succeed when the resource is already gone.
    Delete,
}

/// One change for [`Provider::apply`].
#[derive(Debug, Clone)]
pub struct ApplyRequest<'a> {
    /// The resource's address.
    pub address: &'a str,
    /// The resource's type.
    pub kind: &'a str,
    /// What to do.
    pub operation: Operation,
    /// Desired input attributes with every reference resolved (`None` for a delete).
    pub desired: Option<&'a Attributes>,
    /// What the state recorded after the last apply: inputs merged with outputs (`None` for a
    /// create). Sensitive values in it are salted hashes, not the values.
    pub prior: Option<&'a Attributes>,
}

/// One resource for [`Provider::read`].
#[derive(Debug, Clone)]
pub struct ReadRequest<'a> {
    /// The resource's address.
    pub address: &'a str,
    /// The resource's type.
    pub kind: &'a str,
    /// What the state recorded (inputs merged with outputs), to find the live resource by.
    pub recorded: &'a Attributes,
}

/// A provider's error, classified so the engine knows whether trying again may help.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ProviderError {
    /// What went wrong, for people.
    pub message: String,
    /// Throttling, eventual consistency (a new IAM role not visible yet), timeouts: worth
    /// another try after a pause.
    pub retryable: bool,
}

impl ProviderError {
    /// An error that another try will not fix.
    pub fn fatal(message: impl Into<String>) -> Self {
        ProviderError {
            message: message.into(),
            retryable: false,
        }
    }
    /// An error that may go away by itself.
    pub fn retryable(message: impl Into<String>) -> Self {
        ProviderError {
            message: message.into(),
            retryable: true,
        }
    }

    /// An error of a cloud API call: a timeout (408), a conflict with an operation in progress
    /// (409), throttling (429), a server error or a failed connection (no status) may go away
    /// by itself; any other status will not.
    pub fn http(status: Option<u16>, message: impl Into<String>) -> Self {
        ProviderError {
            message: message.into(),
            retryable: matches!(status, Some(408 | 409 | 429 | 500..=599) | None),
        }
    }
}

/// A cloud (or the local runtime, or a test double) as the engine sees it.
///
/// Implementations must be safe to call concurrently: the engine runs up to `parallelism`
/// reads or applies at once.
#[async_trait]
pub trait Provider: Send + Sync {
    /// The provider's name, as in the state file name (`aws`, `gcp`, ...).
    fn name(&self) -> &str;

    /// The desired resources for these inputs. Must be deterministic: same inputs, same
    /// resources, so that an unchanged service plans as no change.
    fn compile(&self, inputs: &Inputs<'_>) -> Result<Vec<Resource>, ProviderError>;

    /// The live attributes of a recorded resource, or `None` when it no longer exists.
    async fn read(&self, request: &ReadRequest<'_>) -> Result<Option<Attributes>, ProviderError>;

    /// Called once before a refresh with every read that will follow, so that a provider can
    /// list live resources in bulk instead of reading them one by one. Optional: the default
    /// does nothing, and a provider must still answer each read if listing failed.
    async fn prefetch(&self, reads: &[ReadRequest<'_>]) {
        let _ = reads;
    }

    /// Applies one change and returns the resource's attributes afterwards, including values
    /// known only now (an ARN, a URL). A delete returns an empty map.
    async fn apply(&self, request: &ApplyRequest<'_>) -> Result<Attributes, ProviderError>;

    /// A server-side dry run of one create or update, for `ferry plan`: the cloud checks the
    /// request (`validateOnly`) without making or changing anything. `Ok(true)` when it
    /// accepted, `Ok(false)` when it offers no dry run for this kind (the default), an error
    /// with the cloud's reason when it refused.
    async fn dry_run(&self, request: &ApplyRequest<'_>) -> Result<bool, ProviderError> {
        let _ = request;
        Ok(false)
    }

    /// Called once before an apply that deletes (or replaces) these recorded resources, to
    /// refuse up front what cannot succeed, so that nothing is half removed. The default
    /// accepts everything.
    async fn check_deletes(&self, deletes: &[ReadRequest<'_>]) -> Result<(), ProviderError> {
        let _ = deletes;
        Ok(())
    }
}
