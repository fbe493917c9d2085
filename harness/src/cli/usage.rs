//! Usage errors found before anything runs: a mistake in the command line should be
//! answered at once, with the valid choices, not after a long run (exit 2).

use crate::catalog::Catalog;
use crate::report::output_path::check_writable;
use std::path::PathBuf;

/// Check `run`'s versions against the catalog and its report paths for writability.
pub fn check_run(
    catalog: &Catalog,
    versions: &[String],
    reports: &[(&str, &Option<PathBuf>)],
) -> Result<(), String> {
    check_versions(catalog, versions)?;
    check_reports(reports)
}

/// Every `--version` must be one the catalog knows.
pub fn check_versions(catalog: &Catalog, versions: &[String]) -> Result<(), String> {
    let known: Vec<&str> = catalog
        .all_versions()
        .iter()
        .map(|v| v.version.as_str())
        .collect();
    let unknown: Vec<&str> = versions
        .iter()
        .map(String::as_str)
        .filter(|v| !known.contains(v))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(format!(
        "--version {}: unknown protocol version{} (known: {})",
        unknown.join(","),
        if unknown.len() > 1 { "s" } else { "" },
        known.join(", ")
    ))
}

/// Every report path given (`--junit FILE`, `--json FILE`, `--html FILE`) must be
/// writable.
pub fn check_reports(reports: &[(&str, &Option<PathBuf>)]) -> Result<(), String> {
    for (flag, path) in reports {
        if let Some(p) = path {
            check_writable(p).map_err(|e| format!("{flag} {}: {e}", p.display()))?;
        }
    }
    Ok(())
}
