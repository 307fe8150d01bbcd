//! ferry's Azure provider.
//!
//! [`app::compile`] turns the neutral model into the files of Azure Functions apps: one app per
//! runtime family (a Function App has one language worker: node, python, or `custom` for
//! binaries speaking the Lambda Runtime API through ferry's adapter), each with its
//! `host.json` and one folder per Azure function holding its `function.json`.
//! [`ncrontab`] translates schedules to the timer trigger's six-field NCRONTAB.
//! [`package`] writes each app's folder and zip with ferry's adapters (`templates/azure`).
//! [`resources`] lists the Azure resources once; [`template`] renders them as an ARM template.

#![deny(missing_docs)]

pub mod adapter;
pub mod app;
pub mod arm;
pub mod deploy;
pub mod ncrontab;
pub mod package;
pub mod resources;
pub mod template;
