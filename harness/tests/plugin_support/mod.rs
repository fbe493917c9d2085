//! Shared helpers for the plugin tests: the data root, the catalog, the in-repo fake
//! plugin (Python) and the skip-unless-CI rule.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use zbx_conform::catalog::Catalog;
use zbx_conform::plugin::{CertifyOptions, MessageChecker, PluginVersion};

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn checker() -> Arc<MessageChecker> {
    let catalog = Catalog::load(&root()).expect("catalog loads");
    Arc::new(MessageChecker::new(catalog))
}

/// Whether a missing tool must fail the test rather than skip it.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// `Some(path)` of the fake plugin when python3 can run it; otherwise prints why the
/// test is skipped (and panics under CI=true).
pub fn fake_plugin() -> Option<PathBuf> {
    let script = root().join("ci/plugins/fake/fake_plugin.py");
    let ok = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        let msg = "python3 is not installed: the fake-plugin tests need it";
        assert!(!in_ci(), "{msg} (CI=true)");
        eprintln!("SKIPPED: {msg}");
        return None;
    }
    Some(script)
}

/// Certification options for the fake plugin in `mode`, with short timeouts.
pub fn fake_options(script: &Path, mode: &str, version: PluginVersion) -> CertifyOptions {
    let proto = version.wire_version().to_string();
    let mut o = CertifyOptions::new(script, version);
    o.env = vec![
        ("ZBXC_FAKE_MODE".into(), mode.into()),
        ("ZBXC_FAKE_PROTO".into(), proto),
    ];
    o.request_timeout = Duration::from_millis(1500);
    o.exit_within = Duration::from_millis(1500);
    o
}

/// The plugin protocol of catalog version `v` (from `schemas/versions.yaml`).
pub fn pv(v: &str) -> zbx_conform::plugin::PluginVersion {
    let catalog = zbx_conform::catalog::Catalog::load(&root()).expect("catalog");
    zbx_conform::plugin::PluginVersion::parse(&catalog, v).expect("a plugin version")
}
