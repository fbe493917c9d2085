//! Checks applied to received messages: JSON Schema validation (compiled once, cached),
//! `match` expectations, captures, snapshots with redaction of volatile fields, and
//! redaction of secrets for everything that leaves the process (reports, logs).

pub mod excerpt;
pub mod failure;
pub mod matcher;
pub mod message;
pub mod redact;
pub mod schema;
pub mod snapshot;

pub use failure::{CheckFailure, CheckKind};
pub use matcher::{check_matches, MatchFailure};
pub use redact::redact_secrets;
pub use schema::{SchemaCache, SchemaViolation};
pub use snapshot::{compare_snapshot, redact_volatile, SnapshotOutcome};
