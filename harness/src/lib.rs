//! zbx-conform: a protocol conformance test harness for Zabbix components.
//!
//! The modules follow the flow of data (see README, "Architecture"):
//! `frame` (bytes <-> frames) → `transport` (frames over sockets, with timeouts) →
//! `catalog` (message kinds as data) → `scenario` (YAML model, loader, lint, variables) →
//! `runner` (plays a side, step by step) → `check` (schemas, matchers, snapshots) →
//! `report` (terminal, JUnit, JSON). `reference` holds the built-in reference peers.

#[macro_use]
pub mod console;

pub mod catalog;
pub mod check;
pub mod cli;
pub mod discover;
pub mod frame;
pub mod message;
pub mod plugin;
pub mod reference;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod suggest;
pub mod transport;
