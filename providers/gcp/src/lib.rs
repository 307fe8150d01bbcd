//! ferry's Google Cloud provider.
//!
//! [`resources`] describes every Google Cloud resource a service needs once, as the REST
//! resource name and request body each API takes: node and python functions become Cloud
//! Functions v2, Runtime API binaries (rust, provided) Cloud Run v2 services deployed from
//! source on a base image (no container build); queues and topics become Pub/Sub topics with
//! push subscriptions, schedules Cloud Scheduler jobs, buckets Cloud Storage buckets with
//! Eventarc triggers, tables Firestore databases, secrets Secret Manager secrets.
//! [`package`] writes each function's source zip with ferry's adapters (`templates/gcp` for
//! node and python, [`adapter`] for Runtime API binaries on Cloud Run), and [`deploy`] applies
//! the resources through the plan/state engine.

#![deny(missing_docs)]

pub mod adapter;
pub mod client;
pub mod deploy;
pub mod package;
pub mod resources;
