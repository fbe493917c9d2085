//! Command-line interface. Scripts depend on it: extend, don't break.
//!
//! Exit codes: 0 all passed; 1 a check failed; 2 usage or scenario error (including a
//! run that selected no scenario); 3 a peer could not be reached or started.

use crate::catalog::{self, Catalog};
use crate::report;
use crate::runner::{self, RunOptions};
use crate::scenario;
use crate::transport::tls::{TlsConfig, TlsConfigError, TlsSettings};
mod usage;
mod validate;

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Exit code for usage and scenario errors.
pub const EXIT_USAGE: i32 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "zbx-conform",
    version,
    about = "Protocol conformance test harness for Zabbix components",
    long_about = "Plays any side of the Zabbix protocols (server, proxy, agent, plugin) from YAML \
scenarios, validates every received message against the JSON Schema of its kind and protocol \
version, and reports as terminal text, JUnit XML, JSON and a self-contained HTML page.\n\n\
Exit codes: 0 all passed, 1 a check failed, 2 usage or scenario error, 3 peer unreachable.",
    after_help = "Examples:\n  zbx-conform run                          # standard suites against the built-in reference peers\n  zbx-conform run scenarios/server-proxy --peer 127.0.0.1:10051 --junit report.xml\n  zbx-conform run scenarios/server-proxy/passive --html report.html   # open report.html in a browser\n  zbx-conform lint scenarios/\n  zbx-conform catalog --family server-proxy --version 6.0"
)]
struct Cli {
    /// Data directory holding schemas/, fixtures/ and scenarios/ [default: found upwards
    /// from the current directory, else the one the binary was built from]
    #[arg(long, global = true, env = "ZBX_CONFORM_ROOT", value_name = "DIR")]
    root: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run scenario files or folders (default: the standard suites in <root>/scenarios)
    Run(RunArgs),
    /// Check scenarios without running them (syntax, structure, catalog references)
    Lint {
        /// Scenario files or folders [default: <root>/scenarios]
        paths: Vec<PathBuf>,
    },
    /// Print the message catalog: family, version, kind, direction, recogniser, files
    Catalog {
        /// Only this protocol family (server-proxy, agent, sender, plugin)
        #[arg(long)]
        family: Option<String>,
        /// Only this protocol version (e.g. 6.0)
        #[arg(long)]
        version: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Show each kind's recogniser and schema file under its row
        #[arg(long, short)]
        verbose: bool,
    },
    /// Validate one message (a JSON file, or a raw ZBXD frame) against the schema of its
    /// kind, recognised as the runner recognises what peers send (or given with --kind)
    Validate {
        /// Protocol family [default: every family whose recognisers accept the message]
        #[arg(long)]
        family: Option<String>,
        /// Protocol version [default: the message's own "version" field when it has one,
        /// else every version]
        #[arg(long)]
        version: Option<String>,
        /// The message kind, instead of recognising it (needs --family and --version)
        #[arg(long)]
        kind: Option<String>,
        /// Who sent it: server, proxy, agent, sender or plugin [default: any side]
        #[arg(long, value_name = "SIDE")]
        from: Option<String>,
        /// The message: JSON text, or bytes starting with "ZBXD"; "-" reads stdin
        file: PathBuf,
    },
    /// Coverage matrix (message kinds × versions: real peer, reference peer, fixture
    /// only) of JSON reports written by `run --json` or `certify-plugin --json`, and of
    /// `mock-plugin --record` files (*.jsonl: messages a real Agent 2 sent)
    Matrix {
        /// Reports and records to merge [none: the catalog alone, every cell `fixture`]
        reports: Vec<PathBuf>,
        /// Only this protocol family (repeatable) [default: the families the reports
        /// touched, or all without reports]
        #[arg(long)]
        family: Vec<String>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// List the built-in reference peers and the faults they can simulate
    References,
    /// Run a built-in reference peer until interrupted: a long-lived stand-in for a real
    /// peer (`run --peer ADDR` against it), or with --fault a deliberately broken one
    Serve(ServeArgs),
    /// Certify an Agent 2 loadable plugin: one PASS/FAIL per protocol requirement
    CertifyPlugin(crate::plugin::CertifyArgs),
    /// Be a loadable plugin for a real Agent 2 (set as Plugins.<Name>.System.Path via a wrapper)
    MockPlugin(crate::plugin::MockArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Json,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Scenario files or folders [default: <root>/scenarios]
    paths: Vec<PathBuf>,
    /// Address of the peer under test (host:port), one someone else started; overrides
    /// every scenario's peer. The harness asks it which protocol version it speaks and
    /// runs only that version's cases; scenarios that change its state take turns
    #[arg(long, value_name = "ADDR", value_parser = parse_addr)]
    peer: Option<String>,
    /// Where the harness listens for a real peer that connects to it (an active proxy's
    /// Server=, an active agent's ServerActive=); overrides every scenario's `listen`
    #[arg(long, value_name = "ADDR", value_parser = parse_addr)]
    listen: Option<String>,
    /// Set a scenario variable (repeatable)
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
    vars: Vec<(String, String)>,
    /// Only run these protocol versions (repeatable or comma-separated) [default: the
    /// version the peer names when asked; all versions against the reference peers]
    #[arg(long = "version", value_name = "V", value_delimiter = ',')]
    versions: Vec<String>,
    /// Only run scenarios carrying one of these tags (repeatable or comma-separated)
    #[arg(long = "tag", value_name = "T", value_delimiter = ',')]
    tags: Vec<String>,
    /// Only run tests whose name ("scenario [version]") or file contains PATTERN
    #[arg(long, value_name = "PATTERN")]
    filter: Option<String>,
    /// Write a JUnit XML report
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write a JSON report
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write an HTML report: one self-contained page with the coverage matrix and each
    /// test's conversation as a sequence diagram, failures marked on their message
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Scenarios run concurrently
    #[arg(long, default_value_t = 4, value_name = "N")]
    jobs: usize,
    /// Accept received messages as the new stored snapshots
    #[arg(long)]
    update_snapshots: bool,
    /// Default timeout for each expectation without its own `within` (e.g. 10s)
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    timeout: std::time::Duration,
    /// Start a real peer for every scenario from this profile (YAML; see ci/peers/)
    #[arg(long, value_name = "PROFILE")]
    start_peer: Option<PathBuf>,
    /// Where started peers keep their config, data and logs [default: $TMPDIR/zbx-conform]
    #[arg(long, value_name = "DIR")]
    run_dir: Option<PathBuf>,
    /// Self-test: make the built-in reference peers misbehave (see `references`)
    #[arg(long, value_name = "FAULT")]
    fault: Option<String>,
    /// Colour the terminal output [default: when stdout is a terminal]
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
    /// Leave out the coverage matrix (message kinds × versions) at the end of the run
    #[arg(long)]
    no_matrix: bool,
    /// Largest frame payload accepted from a peer, e.g. 64MiB (checked against the
    /// declared length before allocating; a larger frame fails the `frame` check)
    #[arg(long, default_value = "1GiB", value_parser = parse_size, value_name = "SIZE")]
    max_frame: u64,
    /// Most bytes received messages may hold at once, across every connection of the run
    /// (frames, inflated payloads, and what parsing them costs); a message that does not
    /// fit fails its step, and the run says so [default: 2GiB, or twice --max-frame if
    /// that is more]
    #[arg(long, value_parser = parse_size, value_name = "SIZE")]
    memory_budget: Option<u64>,
    /// How often a long step or peer start-up says "still waiting for …" on stderr when
    /// stderr is not a terminal (on a terminal a live status line says it instead)
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    progress_every: std::time::Duration,
    /// Print only what failed and the counts line: no line per passing test, no
    /// progress, no coverage matrix
    #[arg(long, short, conflicts_with = "verbose")]
    quiet: bool,
    /// Also print each test's steps and its conversation (time, direction, message kind,
    /// frame flags) under its line
    #[arg(long, short)]
    verbose: bool,
    #[command(flatten)]
    tls: Box<TlsArgs>,
}

/// Encryption of the connections, under the names zabbix_sender and zabbix_get use, so
/// their flags carry over. They override each scenario's `tls:` block (a step's own
/// `tls:`, e.g. a refusal test's, still wins). Without them nothing is encrypted.
#[derive(Debug, Args)]
#[command(next_help_heading = "Encryption (TLS)")]
struct TlsArgs {
    /// How the harness connects to the peer: unencrypted, psk or cert (TLSConnect). The
    /// --tls-* options override a scenario's `tls:` block, not a step's own `tls:`
    #[arg(long, value_name = "MODE")]
    tls_connect: Option<String>,
    /// What the harness accepts from peers that connect to it, comma-separated:
    /// unencrypted, psk, cert (TLSAccept); a connection is told TLS by its first byte
    #[arg(long, value_name = "MODES", value_delimiter = ',')]
    tls_accept: Vec<String>,
    /// PSK identity, at most 128 characters (TLSPSKIdentity)
    #[arg(long, value_name = "IDENTITY")]
    tls_psk_identity: Option<String>,
    /// File holding the PSK, 32 to 512 hex digits on its first line (TLSPSKFile); the
    /// key never appears in a report
    #[arg(long, value_name = "FILE")]
    tls_psk_file: Option<PathBuf>,
    /// CA certificates (PEM) that the peer's certificate must chain to (TLSCAFile)
    #[arg(long, value_name = "FILE")]
    tls_ca_file: Option<PathBuf>,
    /// Revoked certificates (PEM CRL) (TLSCRLFile)
    #[arg(long, value_name = "FILE")]
    tls_crl_file: Option<PathBuf>,
    /// The harness's certificate, PEM, intermediates after it (TLSCertFile)
    #[arg(long, value_name = "FILE")]
    tls_cert_file: Option<PathBuf>,
    /// The private key of --tls-cert-file, PEM (TLSKeyFile)
    #[arg(long, value_name = "FILE")]
    tls_key_file: Option<PathBuf>,
    /// Required issuer of the peer's certificate, RFC 4514 (CN=..,O=..) (TLSServerCertIssuer;
    /// zabbix_get's --tls-agent-cert-issuer is accepted too)
    #[arg(long, value_name = "DN", alias = "tls-agent-cert-issuer")]
    tls_server_cert_issuer: Option<String>,
    /// Required subject of the peer's certificate, RFC 4514 (TLSServerCertSubject;
    /// zabbix_get's --tls-agent-cert-subject is accepted too)
    #[arg(long, value_name = "DN", alias = "tls-agent-cert-subject")]
    tls_server_cert_subject: Option<String>,
    /// TLS 1.2 cipher list, OpenSSL syntax [default: Zabbix's]
    #[arg(long, value_name = "CIPHERS")]
    tls_cipher: Option<String>,
    /// TLS 1.3 ciphersuites, OpenSSL syntax; "" for TLS 1.2 only [default: Zabbix's]
    #[arg(long, value_name = "SUITES")]
    tls_cipher13: Option<String>,
}

impl TlsArgs {
    /// The settings these options give, with absolute paths (a scenario's relative
    /// paths are taken from its own folder, the command line's from here). Checked as
    /// far as they go on their own: a bad key file or mode is a usage error now, not a
    /// failure of every scenario later.
    fn settings(self: Box<Self>) -> Result<TlsSettings, String> {
        let path = |p: Option<PathBuf>, opt: &str| -> Result<Option<String>, String> {
            p.map(|p| {
                std::path::absolute(&p)
                    .map(|a| a.display().to_string())
                    .map_err(|e| format!("{opt} {}: {e}", p.display()))
            })
            .transpose()
        };
        let settings = TlsSettings {
            connect: self.tls_connect,
            accept: (!self.tls_accept.is_empty()).then_some(self.tls_accept),
            psk_identity: self.tls_psk_identity,
            psk_file: path(self.tls_psk_file, "--tls-psk-file")?,
            ca_file: path(self.tls_ca_file, "--tls-ca-file")?,
            crl_file: path(self.tls_crl_file, "--tls-crl-file")?,
            cert_file: path(self.tls_cert_file, "--tls-cert-file")?,
            key_file: path(self.tls_key_file, "--tls-key-file")?,
            server_cert_issuer: self.tls_server_cert_issuer,
            server_cert_subject: self.tls_server_cert_subject,
            cipher: self.tls_cipher,
            cipher13: self.tls_cipher13,
        };
        match TlsConfig::load(&settings, None) {
            // The rest may come from the scenarios (`tls:` with variables).
            Ok(_) | Err(TlsConfigError::Missing { .. }) => Ok(settings),
            Err(e) => Err(e.to_string()),
        }
    }
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// The reference peer (see `zbx-conform references`)
    reference: String,
    /// Protocol version it speaks (e.g. 6.0)
    #[arg(long, value_name = "V")]
    version: String,
    /// Where a listening peer listens (port 0 picks a free one; the address is printed)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0", value_parser = parse_addr)]
    listen: String,
    /// Where a connecting peer (active-proxy, server-poller, agent-active) connects
    #[arg(long, value_name = "ADDR", value_parser = parse_addr)]
    connect: Option<String>,
    /// Make it misbehave (see `zbx-conform references`)
    #[arg(long, value_name = "FAULT")]
    fault: Option<String>,
    /// The peer's own encryption, as a Zabbix daemon's TLSAccept/TLSConnect: what it
    /// accepts (`--tls-accept psk`) and how it connects, with its key or certificates
    #[command(flatten)]
    tls: Box<TlsArgs>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// `host:port` with a numeric port (`127.0.0.1:10051`, `[::1]:10051`, `zbx.example:10051`).
fn parse_addr(s: &str) -> Result<String, String> {
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("expected HOST:PORT, got {s:?} (no port)"))?;
    if host.is_empty() {
        return Err(format!("expected HOST:PORT, got {s:?} (no host)"));
    }
    port.parse::<u16>().map_err(|_| {
        format!("expected HOST:PORT, got {s:?} (the port is not a number up to 65535)")
    })?;
    Ok(s.to_string())
}

fn parse_var(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=VALUE, got {s:?}"))?;
    if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("invalid variable name {k:?}"));
    }
    Ok((k.to_string(), v.to_string()))
}

/// `1048576`, `512KiB`, `64MiB`, `1GiB` (also KB/MB/GB, taken as powers of 1024 like
/// Zabbix's own size suffixes).
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("expected a size such as 64MiB, got {s:?}"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        other => {
            return Err(format!(
                "unknown size unit {other:?} (use B, KiB, MiB or GiB)"
            ))
        }
    };
    let size = n
        .checked_shl(shift)
        .filter(|v| v >> shift == n)
        .ok_or_else(|| format!("size {s:?} is too large"))?;
    if size == 0 {
        return Err("the maximum frame size must be above 0".into());
    }
    Ok(size)
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    scenario::model::DurationSpec::parse(s)
}

/// Entry point; returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_USAGE } else { 0 };
        }
    };
    let root = match find_root(cli.root.as_deref()) {
        Ok(r) => r,
        Err(e) => {
            complain!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let catalog = match Catalog::load(&root) {
        Ok(c) => c,
        Err(e) => {
            complain!("error: {e}");
            return EXIT_USAGE;
        }
    };
    match cli.command {
        Command::Run(args) => cmd_run(catalog, &root, args),
        Command::Lint { paths } => cmd_lint(&catalog, &root, paths),
        Command::Catalog {
            family,
            version,
            format,
            verbose,
        } => cmd_catalog(
            &catalog,
            family.as_deref(),
            version.as_deref(),
            format,
            verbose,
        ),
        Command::Validate {
            family,
            version,
            kind,
            from,
            file,
        } => {
            let want = validate::Wanted {
                family,
                version,
                kind,
                from,
            };
            validate::run(&catalog, &want, &file)
        }
        Command::Matrix {
            reports,
            family,
            format,
        } => cmd_matrix(&catalog, &reports, family, format),
        Command::References => cmd_references(),
        Command::Serve(args) => cmd_serve(&catalog, args),
        Command::CertifyPlugin(args) => crate::plugin::certify_main(args, &catalog),
        Command::MockPlugin(args) => crate::plugin::mock_main(args, &catalog),
    }
}

/// The data root: explicit, else the nearest ancestor of the current directory holding
/// `schemas/`, else the source tree the binary was built from.
fn find_root(explicit: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(p) = explicit {
        return if p.join("schemas").is_dir() {
            Ok(p.to_path_buf())
        } else {
            Err(format!("--root {}: no schemas/ folder there", p.display()))
        };
    }
    if let Ok(mut dir) = std::env::current_dir() {
        loop {
            if dir.join("schemas").is_dir() && dir.join("fixtures").is_dir() {
                return Ok(dir);
            }
            if !dir.pop() {
                break;
            }
        }
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    if built.join("schemas").is_dir() {
        return Ok(built.canonicalize().unwrap_or(built));
    }
    Err("cannot find the data directory (schemas/, fixtures/): run from the project folder or pass --root DIR".into())
}

fn default_paths(root: &Path, paths: Vec<PathBuf>) -> Vec<PathBuf> {
    if paths.is_empty() {
        vec![root.join("scenarios")]
    } else {
        paths
    }
}

fn cmd_run(catalog: Catalog, root: &Path, args: RunArgs) -> i32 {
    let style = terminal_style(args.color);
    let reports = Reports {
        junit: args.junit.clone(),
        json: args.json.clone(),
        html: args.html.clone(),
    };
    let no_matrix = args.no_matrix;
    let (quiet, verbose) = (args.quiet, args.verbose);
    if let Err(e) = usage::check_run(
        &catalog,
        &args.versions,
        &[
            ("--junit", &reports.junit),
            ("--json", &reports.json),
            ("--html", &reports.html),
        ],
    ) {
        complain!("error: {e}");
        return EXIT_USAGE;
    }
    let (progress, status) = report::live::progress(args.progress_every, quiet);
    let opts = match run_options(root, args, progress) {
        Ok(o) => o,
        Err(e) => {
            complain!("error: {e}");
            return EXIT_USAGE;
        }
    };
    // Output to stdout clears the live status line first (stderr, same terminal).
    let out = |text: &str| match &status {
        Some(s) => s.print(|| say!("{text}")),
        None => say!("{text}"),
    };
    let catalog = Arc::new(catalog);
    let Some(rt) = runtime() else {
        return EXIT_USAGE;
    };
    let plan = rt.block_on(runner::prepare(&catalog, &opts, &mut |line| {
        if !quiet {
            out(line)
        }
    }));
    let plan = match plan {
        Ok(p) => p,
        // Scenario errors as `lint` prints them: `file:line:col: error: ...` on each
        // line, which editors and CI annotations read.
        Err(runner::RunError::Scenarios(errors)) => {
            for e in errors {
                complain!("{}", scenario::Finding::from(e));
            }
            return EXIT_USAGE;
        }
        Err(e) => {
            drop(status);
            complain!("error: {e}");
            return e.exit_code();
        }
    };
    for note in &plan.notes {
        if note.starts_with("warning:") {
            if let Some(s) = &status {
                s.print(|| complain!("{note}"));
            } else {
                complain!("{note}");
            }
        } else if !quiet {
            out(note);
        }
    }
    if let Some(s) = &status {
        s.set_total(plan.jobs.len());
    }
    // On a terminal a line per scenario as it finishes; in a log (CI) the same lines in
    // a stable order (file, then version), released as soon as the ones before are in.
    let live = std::io::stdout().is_terminal();
    let mut in_order = report::ordered::InOrder::new(
        plan.jobs
            .iter()
            .map(|j| (j.scenario.path.clone(), j.version.clone())),
    );
    // Quiet: only the tests that did not pass; verbose: their steps and messages too.
    let lines_of = |r: &runner::ScenarioResult| -> Option<String> {
        if quiet && r.outcome.is_pass() {
            return None;
        }
        let mut text = report::terminal::scenario_line_styled(r, style);
        if verbose {
            for l in report::terminal::step_lines(r) {
                text.push('\n');
                text.push_str(&l);
            }
        }
        Some(text)
    };
    let result = rt.block_on(runner::run_jobs(catalog.clone(), plan.jobs, &opts, |r| {
        if let Some(s) = &status {
            s.finished_one();
        }
        let text = lines_of(r).unwrap_or_default();
        if live {
            if !text.is_empty() {
                out(&text);
            }
        } else {
            for l in in_order.push(r, text) {
                if !l.is_empty() {
                    out(&l);
                }
            }
        }
    }));
    for l in in_order.rest() {
        if !l.is_empty() {
            out(&l);
        }
    }
    drop(status);
    let matrices = report::matrix::for_run(&catalog, &result);
    let matrix = if no_matrix || quiet {
        String::new()
    } else {
        report::matrix::render(&matrices)
    };
    for d in report::junit::duplicate_names(&result) {
        complain!("{d}");
    }
    let summary = report::terminal::summary_with(&result, style, &matrix);
    say_raw!("{summary}");
    if !summary.ends_with('\n') {
        say!();
    }
    result
        .exit_code()
        .max(write_reports(&result, &matrices, &reports))
}

/// The report files `run` was asked to write.
struct Reports {
    junit: Option<PathBuf>,
    json: Option<PathBuf>,
    html: Option<PathBuf>,
}

/// Colour when asked, or by default when stdout is a terminal and `NO_COLOR` is unset.
fn terminal_style(choice: ColorChoice) -> report::terminal::Style {
    let color = match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
        }
    };
    if color {
        report::terminal::Style::Color
    } else {
        report::terminal::Style::Plain
    }
}

/// The runner's options from `run`'s arguments: the `--start-peer` profile loaded, the
/// run directory made absolute, the memory budget defaulted from `--max-frame`.
fn run_options(
    root: &Path,
    args: RunArgs,
    progress: runner::progress::Progress,
) -> Result<RunOptions, String> {
    let start_peer = match &args.start_peer {
        None => None,
        Some(p) => Some(Arc::new(runner::peer::LoadedProfile::load(p)?)),
    };
    // Absolute: a started peer runs in its run dir, and its config names files there.
    let run_dir = std::path::absolute(
        args.run_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("zbx-conform")),
    )
    .map_err(|e| format!("--run-dir: {e}"))?;
    let tls = args.tls.settings()?;
    Ok(RunOptions {
        tls,
        start_peer,
        run_dir,
        paths: default_paths(root, args.paths),
        vars: args.vars.into_iter().collect::<BTreeMap<_, _>>(),
        peer: args.peer,
        listen: args.listen,
        versions: args.versions,
        tags: args.tags,
        filter: args.filter,
        jobs: args.jobs.max(1),
        update_snapshots: args.update_snapshots,
        fault: args.fault,
        timeout: args.timeout,
        max_frame: args.max_frame,
        progress,
        memory_budget: args.memory_budget.unwrap_or(
            args.max_frame
                .saturating_mul(2)
                .max(crate::frame::budget::DEFAULT_BUDGET),
        ),
    })
}

/// Write the JUnit, JSON and HTML reports asked for; a report that cannot be written
/// makes the exit code at least [`EXIT_USAGE`].
fn write_reports(
    result: &runner::RunResult,
    matrices: &[report::matrix::FamilyMatrix],
    reports: &Reports,
) -> i32 {
    let mut code = 0;
    if let Some(path) = &reports.junit {
        if let Err(e) = report::junit::write(result, path) {
            complain!("error: cannot write JUnit report {}: {e}", path.display());
            code = EXIT_USAGE;
        }
    }
    if let Some(path) = &reports.json {
        if let Err(e) = report::json::write(result, path) {
            complain!("error: cannot write JSON report {}: {e}", path.display());
            code = EXIT_USAGE;
        }
    }
    if let Some(path) = &reports.html {
        if let Err(e) = report::html::write(result, matrices, path) {
            complain!("error: cannot write HTML report {}: {e}", path.display());
            code = EXIT_USAGE;
        }
    }
    code
}

/// Largest report or record `matrix` reads: far above what a run writes (bodies are
/// truncated to 4000 characters), far below what would exhaust memory.
const MAX_REPORT_BYTES: u64 = 512 << 20;

/// Read a text file of at most `max` bytes; a larger one is an error, not an allocation.
fn read_bounded(path: &Path, max: u64) -> Result<String, String> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut text = String::new();
    file.take(max + 1)
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    if text.len() as u64 > max {
        return Err(format!("larger than {max} bytes: not a zbx-conform report"));
    }
    Ok(text)
}

fn cmd_matrix(catalog: &Catalog, reports: &[PathBuf], family: Vec<String>, format: Format) -> i32 {
    let mut exercised = Vec::new();
    for path in reports {
        let is_record = path.extension().is_some_and(|e| e == "jsonl");
        let parsed = read_bounded(path, MAX_REPORT_BYTES).and_then(|t| {
            if is_record {
                report::matrix::exercised_in_plugin_record(&t)
            } else {
                serde_json::from_str(&t)
                    .map_err(|e| e.to_string())
                    .and_then(|v| report::matrix::exercised_in_json_report(&v))
            }
        });
        match parsed {
            Ok(mut e) => exercised.append(&mut e),
            Err(e) => {
                complain!("error: {}: {e}", path.display());
                return EXIT_USAGE;
            }
        }
    }
    for f in &family {
        if catalog.family(f).is_none() {
            complain!("error: --family {f}: no such family in the catalog");
            return EXIT_USAGE;
        }
    }
    let families = if family.is_empty() && !reports.is_empty() {
        report::matrix::families_in(catalog, &exercised)
    } else {
        family
    };
    let matrices = report::matrix::build(catalog, &exercised, &families);
    match format {
        Format::Table => say_raw!("{}", report::matrix::render(&matrices)),
        Format::Json => match serde_json::to_string_pretty(&matrices) {
            Ok(t) => say!("{t}"),
            Err(e) => {
                complain!("error: {e}");
                return EXIT_USAGE;
            }
        },
    }
    0
}

fn cmd_lint(catalog: &Catalog, root: &Path, paths: Vec<PathBuf>) -> i32 {
    let files = match scenario::discover(&default_paths(root, paths)) {
        Ok(f) => f,
        Err(e) => {
            complain!("{e}");
            return EXIT_USAGE;
        }
    };
    if files.is_empty() {
        complain!("error: no scenario files found");
        return EXIT_USAGE;
    }
    let references = crate::runner::plan::reference_names();
    let mut bad = 0;
    let mut worst = 0;
    for f in &files {
        let findings: Vec<scenario::Finding> = match scenario::load_file(f) {
            Ok(l) => scenario::lint(&l, catalog, &references),
            Err(e) => vec![e.into()],
        };
        for finding in &findings {
            say!("{finding}");
        }
        let code = scenario::finding::exit_code(&findings);
        if code == 0 {
            say!("ok      {}", f.display());
        } else {
            bad += 1;
        }
        worst = worst.max(code);
    }
    say!("{} files, {} with errors", files.len(), bad);
    if worst > 0 {
        EXIT_USAGE
    } else {
        0
    }
}

fn cmd_catalog(
    catalog: &Catalog,
    family: Option<&str>,
    version: Option<&str>,
    format: Format,
    verbose: bool,
) -> i32 {
    let rows = catalog.rows(family, version);
    if rows.is_empty() {
        complain!(
            "error: no message kinds for family {} version {} (families: {})",
            family.unwrap_or("*"),
            version.unwrap_or("*"),
            catalog
                .families()
                .iter()
                .map(|f| f.family.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        return EXIT_USAGE;
    }
    match format {
        Format::Json => say!("{}", catalog::print::json(&rows)),
        Format::Table => say_raw!("{}", catalog::print::table(&rows, verbose)),
    }
    0
}

fn cmd_serve(catalog: &Catalog, args: ServeArgs) -> i32 {
    let Some(rt) = runtime() else {
        return EXIT_USAGE;
    };
    rt.block_on(async {
        let connect_to = match &args.connect {
            None => None,
            Some(a) => match tokio::net::lookup_host(a).await.map(|mut i| i.next()) {
                Ok(Some(addr)) => Some(addr),
                _ => {
                    complain!("error: --connect {a}: cannot resolve the address");
                    return EXIT_USAGE;
                }
            },
        };
        // The peer's own side: nothing is missing here, no scenario fills anything in.
        let tls = match args
            .tls
            .settings()
            .and_then(|s| TlsConfig::load(&s, None).map_err(|e| e.to_string()))
        {
            Ok(t) => t,
            Err(e) => {
                complain!("error: {e}");
                return EXIT_USAGE;
            }
        };
        let encryption = if tls.is_plaintext() {
            String::new()
        } else {
            let accept: Vec<&str> = tls.accept.iter().map(|m| m.as_str()).collect();
            format!(", TLS accept {} connect {}", accept.join(","), tls.connect)
        };
        let cfg = crate::reference::ReferenceConfig {
            name: args.reference.clone(),
            version: args.version.clone(),
            fault: args.fault.clone(),
            connect_to,
            listen: Some(args.listen.clone()),
        };
        let peer = match crate::reference::start_with_tls(&cfg, catalog, tls).await {
            Ok(p) => p,
            Err(e) => {
                complain!("error: {e}");
                return if e.starts_with("cannot listen") {
                    3
                } else {
                    EXIT_USAGE
                };
            }
        };
        match (peer.listen, &args.connect) {
            (Some(a), _) => say!(
                "serving {} on {a} (Ctrl-C stops it{encryption})",
                peer.describe
            ),
            (None, Some(c)) => say!(
                "serving {}, connecting to {c} (Ctrl-C stops it{encryption})",
                peer.describe
            ),
            (None, None) => say!("serving {} (Ctrl-C stops it{encryption})", peer.describe),
        }
        let _ = std::io::Write::flush(&mut std::io::stdout());
        wait_for_stop().await;
        peer.stop().await;
        0
    })
}

/// The async runtime of a command, or `None` after saying why it could not start.
fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => Some(rt),
        Err(e) => {
            complain!("error: cannot start the async runtime: {e}");
            None
        }
    }
}

/// Until SIGINT or SIGTERM.
async fn wait_for_stop() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn cmd_references() -> i32 {
    use crate::reference;
    say!("Reference peers (peer.reference in a scenario; zbx-conform serve NAME):");
    for r in reference::REFERENCES {
        say!("  {:<18} {}", r.name, r.description);
        if let Some(to) = r.reach.connects() {
            say!("  {:<18} connects (--connect) to: {to}", "");
        }
        if let Some(what) = r.reach.listens() {
            say!("  {:<18} listens (--listen) for: {what}", "");
        }
        say!(
            "  {:<18} faults: {}",
            "",
            reference::faults_for(r.name).join(", ")
        );
    }
    say!("\nFaults (run --fault NAME, for self-tests):");
    for (name, about) in reference::faults() {
        say!("  {name:<18} {about}");
    }
    0
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn reports_are_read_up_to_a_bound() {
        let dir = std::env::temp_dir().join(format!("zbxc-read-bounded-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("r.json");
        std::fs::write(&f, "0123456789").unwrap();
        assert_eq!(super::read_bounded(&f, 10).unwrap(), "0123456789");
        assert!(super::read_bounded(&f, 9)
            .unwrap_err()
            .contains("larger than 9 bytes"));
        assert!(super::read_bounded(&dir.join("missing"), 9).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn sizes_parse_with_binary_units_and_reject_nonsense() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("512KiB"), Ok(512 << 10));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("1 GiB"), Ok(1 << 30));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert!(parse_size("").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("12TB")
            .unwrap_err()
            .contains("unknown size unit"));
        assert!(parse_size("0").is_err());
        assert!(parse_size("99999999999999GiB")
            .unwrap_err()
            .contains("too large"));
    }
}
