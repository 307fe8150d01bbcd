//! ferry-core: everything about a ferry service that does not depend on a cloud.
//!
//! The data flow is `load` (find, read, parse YAML with spans) → `vars` (resolve variables) →
//! `lower` / `sf` (ferry dialect or Serverless Framework v3 into the neutral [`model`]) →
//! `validate`. Errors are [`diag::Diag`]s that point at file, line and column.
#![deny(missing_docs)]

pub mod de;
pub mod diag;
pub mod engine;
pub mod load;
pub mod lower;
pub mod manifest;
pub mod model;
pub mod names;
pub mod package;
pub mod schedule;
pub mod sf;
pub mod source;
pub mod spans;
pub mod validate;
pub mod vars;
pub mod yaml;

pub use diag::{Diag, Severity};
pub use load::{load, LoadFailure, LoadOptions, Loaded};
pub use model::Service;
