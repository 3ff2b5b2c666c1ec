//! Integration tests: the real service on a real SQLite file and a real PostgreSQL server,
//! spoken to over HTTP, plus the crash test, the CLI and the OpenAPI snapshot. One test binary.

mod common;

mod auth;
mod browser;
pub mod campaigns;
mod cli;
mod consent;
mod crash;
mod decisions;
pub mod evidence;
mod faults;
mod holds;
mod japan;
pub mod labels;
mod lists;
mod log_api;
mod metrics;
mod openapi;
mod operator;
mod readme;
mod receipts;
pub mod relabel;
pub mod report;
mod sdk;
mod signup;
mod snapshots;
mod suppression;
mod tenant_evidence;
mod tokens;
pub mod unsubscribe;
mod vectors;
mod webhooks;
mod witness;
