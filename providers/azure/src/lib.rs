//! ferry's Azure provider.
//!
//! [`app::compile`] turns the neutral model into the files of Azure Functions apps: one app per
//! runtime family (a Function App has one language worker: node, python, or `custom` for
//! binaries speaking the Lambda Runtime API through ferry's adapter), each with its
//! `host.json` and one folder per Azure function holding its `function.json`.
//! [`ncrontab`] translates schedules to the timer trigger's six-field NCRONTAB.

#![deny(missing_docs)]

pub mod app;
pub mod arm;
pub mod ncrontab;
pub mod package;
