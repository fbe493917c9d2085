//! `zbx-conform certify-plugin PLUGIN`: arguments and entry point.
//!
//! Exit codes: 0 every required requirement passed (or was skipped as not applicable;
//! warnings on advisory ones do not count), 1 a required requirement failed, 2 usage
//! error, 3 the plugin could not be started.

use super::certify::{certify, CertifyOptions};
use super::host::MessageChecker;
use super::options::PluginOption;
use super::PluginVersion;
use crate::catalog::Catalog;
use crate::report;
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Arguments of `certify-plugin`.
#[derive(Debug, Clone, Args)]
pub struct CertifyArgs {
    /// The plugin executable (started as `PLUGIN <socket> true|false`, like Agent 2 does)
    pub plugin: PathBuf,
    /// Agent generation to imitate: 6.0 (Register version "6.0.13"), 6.4 or 7.0 ("6.4.0")
    /// [default: the generation whose Register version the plugin accepts]
    #[arg(long, value_name = "V")]
    pub version: Option<String>,
    /// Expected plugin name (the <Name> of Plugins.<Name>.System.Path)
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Private option sent with Validate and Configure, as in Plugins.<Name>.OPTION=VALUE
    /// (repeatable)
    #[arg(long = "option", value_name = "OPTION=VALUE", value_parser = PluginOption::parse)]
    pub options: Vec<PluginOption>,
    /// Per-request timeout (agent2's PluginTimeout)
    #[arg(long, default_value = "3s", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Duration,
    /// How long the plugin may take to exit after Terminate
    #[arg(long, default_value = "3s", value_parser = parse_duration, value_name = "DURATION")]
    pub exit_within: Duration,
    /// Write a JUnit XML report
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// How often a long certification says "still waiting for …" on stderr
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub progress_every: Duration,
    /// Write a JSON report
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write an HTML report: one self-contained page, each requirement's conversation
    /// with the plugin as a sequence diagram
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::scenario::model::DurationSpec::parse(s)
}

impl CertifyArgs {
    /// The suite options these arguments ask for.
    pub fn options(&self, version: PluginVersion) -> CertifyOptions {
        let mut o = CertifyOptions::new(&self.plugin, version);
        o.name = self.name.clone();
        o.options = self.options.clone();
        o.request_timeout = self.timeout;
        o.exit_within = self.exit_within;
        o
    }
}

/// Run the certification and print the report; returns the process exit code.
/// `catalog` is the loaded message catalog (it must hold the `plugin` family).
pub fn certify_main(args: CertifyArgs, catalog: &Catalog) -> i32 {
    if catalog.family(super::FAMILY).is_none() {
        complain!("error: the catalog has no `plugin` family (schemas/plugin/catalog.yaml)");
        return 2;
    }
    if !args.plugin.is_file() {
        complain!("error: {}: no such file", args.plugin.display());
        return 2;
    }
    // A report that cannot be written is a usage error now, not after the certification.
    for (flag, path) in [
        ("--junit", &args.junit),
        ("--json", &args.json),
        ("--html", &args.html),
    ] {
        if let Some(p) = path {
            if let Err(e) = report::output_path::check_writable(p) {
                complain!("error: {flag} {}: {e}", p.display());
                return 2;
            }
        }
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            complain!("error: cannot start the async runtime: {e}");
            return 2;
        }
    };
    let checker = Arc::new(MessageChecker::new(catalog.clone()));
    let version = match &args.version {
        Some(v) => match PluginVersion::parse(catalog, v) {
            Ok(v) => v,
            Err(e) => {
                complain!("error: --version: {e}");
                return 2;
            }
        },
        None => {
            let (progress, status) = crate::report::live::progress(args.progress_every, false);
            let what = format!(
                "plugin {} to accept a Register version",
                args.plugin.display()
            );
            let found = rt.block_on(progress.watch(
                &what,
                None,
                super::discover::register_version(
                    &args.plugin,
                    checker.clone(),
                    &PluginVersion::all(catalog),
                    args.timeout,
                ),
            ));
            drop(status);
            match found {
                Ok(d) => {
                    say!(
                        "plugin {}: accepts Register version \"{}\" → protocol {}",
                        args.plugin.display(),
                        d.wire,
                        d.version
                    );
                    if let Some(n) = &d.note {
                        say!("note: {n}");
                    }
                    d.version
                }
                Err(e @ super::discover::DiscoverError::Start(_)) => {
                    complain!("error: {e}");
                    return 3;
                }
                Err(e) => {
                    complain!("error: {}: {e}", args.plugin.display());
                    return 2;
                }
            }
        }
    };
    let mut opts = args.options(version);
    // A hanging plugin makes each request wait out --timeout: say which requirement
    // waits for what.
    let (progress, status) = crate::report::live::progress(args.progress_every, false);
    opts.progress = progress.labelled(format!("plugin {}", args.plugin.display()));
    let cert = rt.block_on(certify(&opts, checker));
    drop(status);
    say_raw!("{}", cert.human_report());
    let run = cert.to_run_result();
    if let Some(path) = &args.junit {
        if let Err(e) = report::junit::write(&run, path) {
            complain!("error: cannot write {}: {e}", path.display());
            return 2;
        }
    }
    if let Some(path) = &args.json {
        if let Err(e) = cert.write_json(path) {
            complain!("error: cannot write {}: {e}", path.display());
            return 2;
        }
    }
    if let Some(path) = &args.html {
        let matrices = report::matrix::for_run(catalog, &run);
        if let Err(e) = report::html::write(&run, &matrices, path) {
            complain!("error: cannot write {}: {e}", path.display());
            return 2;
        }
    }
    cert.exit_code()
}
