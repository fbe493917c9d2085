//! certify-plugin against the in-repo fake plugin (fast, no Go) and, when built, the Go
//! SDK plugin from ci/plugins: a correct plugin passes every required requirement, each
//! deliberately broken variant fails exactly the requirements that name its defect, a
//! departure from an advisory requirement (a variadic metric, a lax option check) is a
//! warning that leaves the exit code at 0, and certifying the same plugin again gives
//! the same verdicts.

mod plugin_support;

use plugin_support::*;
use rstest::rstest;
use std::path::PathBuf;
use zbx_conform::plugin::{certify, Certification, PluginVersion, RequirementId, Severity};
use zbx_conform::plugin::{Verdict, REQUIREMENTS};
use zbx_conform::runner::result::Outcome;

use RequirementId as R;

async fn run_fake(mode: &str, version: PluginVersion) -> Option<Certification> {
    let script = fake_plugin()?;
    let opts = fake_options(&script, mode, version);
    Some(certify(&opts, checker()).await)
}

fn report(c: &Certification) -> String {
    format!("{}\n{}", c.human_report(), c.plugin_output)
}

/// Each defect mode of the fake plugin with the requirements it must fail and those it
/// must warn about (ci/plugins/fake/fake_plugin.py). Modes with nothing to fail show
/// that an advisory departure is a warning and no failure.
const DEFECTS: &[(&str, &[RequirementId], &[RequirementId])] = &[
    (
        "wrong-id",
        &[
            R::ExportMetrics,
            R::ExportManyParameters,
            R::ExportConcurrent,
        ],
        &[R::ExportUnknownKey, R::WireIgnored],
    ),
    ("any-version", &[R::RegisterWrongVersion], &[]),
    (
        "crash-export",
        &[
            R::ExportMetrics,
            R::ExportManyParameters,
            R::ExportConcurrent,
        ],
        &[R::ExportUnknownKey],
    ),
    (
        "silent",
        &[
            R::RegisterHandshake,
            R::TerminateRegistration,
            R::RegisterWrongVersion,
        ],
        &[],
    ),
    ("bad-frame", &[R::WireClean], &[]),
    ("bad-interfaces", &[], &[R::RegisterInterfaceBits]),
    ("text-interfaces", &[R::RegisterInterfaces], &[]),
    ("odd-metrics", &[R::RegisterMetrics], &[]),
    ("bad-descriptions", &[R::RegisterMetrics], &[]),
    (
        "no-exit",
        &[R::TerminateRegistration, R::TerminateOperation],
        &[],
    ),
    ("bad-log", &[R::LogShape], &[R::LogSeverity]),
    (
        "lax-options",
        &[],
        &[R::ValidateUnknownOption, R::ConfigureUnknownOption],
    ),
    ("strict-options", &[R::ValidateOptions], &[]),
    (
        "crash-configure",
        &[
            R::ConfigureOptions,
            R::ExportMetrics,
            R::ExportManyParameters,
            R::ExportConcurrent,
        ],
        &[R::ConfigureUnknownOption, R::ExportUnknownKey],
    ),
    ("crash-parameters", &[R::ExportManyParameters], &[]),
    ("not-json", &[R::WireClean], &[]),
    ("trailing-bytes", &[R::WireClean], &[]),
    ("extra-members", &[], &[R::WireIgnored]),
    ("variadic", &[], &[R::ExportBadParameters]),
];

fn defect(mode: &str) -> (&'static [RequirementId], &'static [RequirementId]) {
    DEFECTS
        .iter()
        .find(|(m, _, _)| *m == mode)
        .map(|(_, f, w)| (*f, *w))
        .unwrap_or_else(|| panic!("mode {mode} is not in DEFECTS"))
}

#[rstest]
#[case(pv("6.0"))]
#[case(pv("6.4"))]
#[case(pv("7.0"))]
#[tokio::test]
async fn good_fake_plugin_passes_every_requirement(#[case] version: PluginVersion) {
    let Some(c) = run_fake("good", version).await else {
        return;
    };
    assert_eq!(c.exit_code(), 0, "{}", report(&c));
    assert_eq!(c.requirements.len(), REQUIREMENTS.len());
    for r in &c.requirements {
        assert_eq!(
            r.verdict(),
            Verdict::Pass,
            "{} should pass:\n{}",
            r.id,
            report(&c)
        );
    }
    let text = c.human_report();
    for r in REQUIREMENTS {
        assert!(
            text.contains(&format!("PASS    {}", r.id)),
            "{} missing:\n{text}",
            r.id
        );
        assert!(
            text.contains(&format!("{}; source: {}", r.severity, r.source_text())),
            "source of {} missing:\n{text}",
            r.id
        );
    }
}

#[rstest]
#[case("wrong-id")]
#[case("any-version")]
#[case("crash-export")]
#[case("silent")]
#[case("bad-frame")]
#[case("bad-interfaces")]
#[case("text-interfaces")]
#[case("odd-metrics")]
#[case("bad-descriptions")]
#[case("no-exit")]
#[case("bad-log")]
#[case("lax-options")]
#[case("strict-options")]
#[case("crash-configure")]
#[case("crash-parameters")]
#[case("not-json")]
#[case("trailing-bytes")]
#[case("extra-members")]
#[case("variadic")]
#[tokio::test]
async fn each_fake_defect_fails_or_warns_exactly_the_named_requirements(#[case] mode: &str) {
    let (failed, warned) = defect(mode);
    let Some(c) = run_fake(mode, pv("6.0")).await else {
        return;
    };
    let text = c.human_report();
    assert_eq!(c.failed(), failed, "mode {mode}:\n{}", report(&c));
    assert_eq!(c.warned(), warned, "mode {mode}:\n{}", report(&c));
    // Warnings never change the exit code.
    let code = if failed.is_empty() { 0 } else { 1 };
    assert_eq!(c.exit_code(), code, "{}", report(&c));
    assert_eq!(c.to_run_result().exit_code(), code);
    for id in failed {
        let r = c.requirement(*id).expect("requirement exists");
        assert_eq!(r.outcome, Outcome::Failed);
        assert!(!r.failures.is_empty(), "{id} failed without a reason");
        assert!(text.contains(&format!("FAIL    {id}")), "{text}");
    }
    for id in warned {
        let r = c.requirement(*id).expect("requirement exists");
        assert_eq!(r.outcome, Outcome::Passed, "a warning is no failure");
        assert!(r.failures.is_empty() && !r.warnings.is_empty(), "{r:?}");
        assert!(text.contains(&format!("WARN    {id}")), "{text}");
    }
}

/// Every required requirement can fail and every advisory one can warn: some defect
/// mode shows it, and each mode of the table runs in the test above.
#[test]
fn the_defect_modes_exercise_every_requirement() {
    let src = include_str!("plugin_certify.rs");
    for (mode, failed, warned) in DEFECTS {
        assert!(
            src.contains(&format!("#[case(\"{mode}\")]")),
            "{mode} is not run"
        );
        assert!(
            failed.iter().all(|id| id.severity() == Severity::Required),
            "{mode}: only required requirements fail"
        );
        assert!(
            warned.iter().all(|id| id.severity() == Severity::Advisory),
            "{mode}: only advisory requirements warn"
        );
    }
    for r in REQUIREMENTS {
        let shown = DEFECTS
            .iter()
            .any(|(_, failed, warned)| failed.contains(&r.id) || warned.contains(&r.id));
        assert!(shown, "no defect mode shows {} ({})", r.id, r.severity);
    }
}

#[tokio::test]
async fn plugin_built_for_another_version_fails_the_handshake() {
    let Some(script) = fake_plugin() else { return };
    let mut opts = fake_options(&script, "good", pv("6.4"));
    opts.env[1].1 = "6.0.13".into();
    let c = certify(&opts, checker()).await;
    let h = c.requirement(R::RegisterHandshake).expect("exists");
    assert_eq!(h.outcome, Outcome::Failed, "{}", report(&c));
    assert!(h.failures[0].detail.contains("6.4.0"), "{:?}", h.failures);
    assert_eq!(
        c.requirement(R::ExportMetrics).map(|r| r.outcome.clone()),
        Some(Outcome::Skipped(
            "blocked: the registration run did not yield a usable Register response".into()
        ))
    );
}

#[tokio::test]
async fn expected_name_is_checked() {
    let Some(script) = fake_plugin() else { return };
    let mut opts = fake_options(&script, "good", pv("6.0"));
    opts.name = Some("Other".into());
    let c = certify(&opts, checker()).await;
    let h = c.requirement(R::RegisterHandshake).expect("exists");
    assert_eq!(h.outcome, Outcome::Failed);
    assert!(
        h.failures.iter().any(|f| f.expected.contains("Other")),
        "{:?}",
        h.failures
    );
}

#[tokio::test]
async fn plugin_that_cannot_start_is_unreachable() {
    let checker = checker();
    for program in [
        PathBuf::from("/nonexistent/plugin"),
        PathBuf::from("/bin/true"),
    ] {
        let mut opts = zbx_conform::plugin::CertifyOptions::new(&program, pv("6.0"));
        opts.request_timeout = std::time::Duration::from_millis(500);
        let c = certify(&opts, checker.clone()).await;
        assert_eq!(c.exit_code(), 3, "{}", c.human_report());
        assert!(c.unreachable.is_some());
        assert!(matches!(
            c.requirement(R::RegisterHandshake).map(|r| &r.outcome),
            Some(Outcome::Unreachable(_))
        ));
        assert_eq!(c.to_run_result().exit_code(), 3);
    }
}

#[tokio::test]
async fn junit_and_json_name_each_requirement() {
    let Some(c) = run_fake("odd-metrics", pv("6.0")).await else {
        return;
    };
    let run = c.to_run_result();
    assert_eq!(run.scenarios.len(), REQUIREMENTS.len());
    assert!(run
        .scenarios
        .iter()
        .all(|s| s.family == "plugin" && s.version == "6.0"));
    let mut xml = Vec::new();
    zbx_conform::report::junit::write_to(&run, &mut xml).expect("junit");
    let xml = String::from_utf8(xml).expect("utf8");
    assert!(
        xml.contains("testsuite") && xml.contains("name=\"plugin\""),
        "{xml}"
    );
    // Named by requirement id (a stable name for CI history); the title is a property.
    assert!(
        xml.contains(r#"<testcase name="register.metrics [6.0]""#)
            && xml.contains(
                r#"<property name="register.metrics [6.0]: description" value="metrics is a flat"#
            ),
        "{xml}"
    );
    assert_eq!(xml.matches("<failure").count(), 1, "{xml}");
    let json = c.json_report().expect("json");
    let v: serde_json::Value = serde_json::from_str(&json).expect("valid json");
    let scenarios = v["scenarios"].as_array().expect("array");
    let failed: Vec<&str> = scenarios
        .iter()
        .filter(|s| s["outcome"]["status"] == "failed")
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(failed.len(), 1);
    assert!(failed[0].starts_with("register.metrics"), "{failed:?}");
    // Every requirement carries its severity and source as properties.
    for (s, r) in scenarios.iter().zip(REQUIREMENTS) {
        let p = &s["properties"];
        assert_eq!(p["requirement"], r.id.as_str(), "{s}");
        assert_eq!(p["severity"], r.severity.as_str(), "{s}");
        assert_eq!(p["source"], r.source_text().as_str(), "{s}");
    }
}

/// A plugin whose metric takes any number of parameters: the bad-parameters
/// requirement is advisory, so it is a warning in every report, never a failure
/// element, and the exit code stays 0.
#[tokio::test]
async fn a_variadic_metric_is_a_warning_in_every_report_and_not_a_failure() {
    let Some(c) = run_fake("variadic", pv("6.0")).await else {
        return;
    };
    assert_eq!(c.exit_code(), 0, "{}", report(&c));
    assert_eq!(c.warned(), [R::ExportBadParameters], "{}", report(&c));
    let r = c.requirement(R::ExportBadParameters).expect("exists");
    assert!(
        r.warnings.iter().any(|w| w.detail.contains("fake.echo")),
        "{:?}",
        r.warnings
    );
    let text = c.human_report();
    assert!(text.contains("WARN    export.bad-parameters"), "{text}");
    assert!(text.contains("advisory; source: protocol §4.2"), "{text}");
    assert!(text.contains("19 passed, 1 warned, 0 failed"), "{text}");

    let run = c.to_run_result();
    assert_eq!(run.exit_code(), 0);
    let mut xml = Vec::new();
    zbx_conform::report::junit::write_to(&run, &mut xml).expect("junit");
    let xml = String::from_utf8(xml).expect("utf8");
    assert_eq!(xml.matches("<failure").count(), 0, "{xml}");
    assert!(
        xml.contains("requirement export.bad-parameters (advisory); source: protocol §4.2")
            && xml.contains("verdict: warning")
            && xml.contains("warning: [match]"),
        "{xml}"
    );

    let v: serde_json::Value = serde_json::from_str(&c.json_report().expect("json")).expect("json");
    let s = v["scenarios"]
        .as_array()
        .expect("array")
        .iter()
        .find(|s| s["properties"]["requirement"] == "export.bad-parameters")
        .expect("scenario");
    assert_eq!(s["outcome"]["status"], "passed", "{s}");
    assert_eq!(s["properties"]["verdict"], "warning", "{s}");
    assert_eq!(s["properties"]["severity"], "advisory", "{s}");
    assert_eq!(s["warnings"].as_array().map(Vec::len), Some(1), "{s}");
}

/// What must not change between two certifications of the same plugin: each
/// requirement's verdict and the kinds of its findings.
fn fingerprint(c: &Certification) -> Vec<String> {
    c.requirements
        .iter()
        .map(|r| {
            let kinds: Vec<&str> = r
                .failures
                .iter()
                .chain(&r.warnings)
                .map(|f| f.check.as_str())
                .collect();
            format!("{} {} {}", r.id, r.verdict().as_str(), kinds.join(","))
        })
        .collect()
}

/// Certify `n` times in a row; every fingerprint must equal the first.
async fn assert_same_verdicts(n: usize, opts: &zbx_conform::plugin::CertifyOptions) {
    let checker = checker();
    let first = certify(opts, checker.clone()).await;
    let want = fingerprint(&first);
    for i in 2..=n {
        let c = certify(opts, checker.clone()).await;
        assert_eq!(
            fingerprint(&c),
            want,
            "run {i} differs from run 1:\n{}\n--- run 1:\n{}",
            report(&c),
            report(&first)
        );
    }
}

#[tokio::test]
async fn certifying_the_fake_plugin_again_gives_the_same_verdicts() {
    let Some(script) = fake_plugin() else { return };
    for mode in ["variadic", "crash-export"] {
        assert_same_verdicts(3, &fake_options(&script, mode, pv("6.0"))).await;
    }
}

/// The Go SDK plugin, built by ci/plugins/build.sh (idempotent; offline). `None` with a
/// printed reason when go or the SDK is missing; a panic instead under CI=true.
fn go_plugin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ZBXC_GOOD_PLUGIN") {
        return Some(PathBuf::from(p));
    }
    // Build once per test binary (build.sh also serialises itself with a lock).
    static BUILT: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    BUILT.get_or_init(build_go_plugin).clone()
}

fn build_go_plugin() -> Option<PathBuf> {
    let script = root().join("ci/plugins/build.sh");
    let out = std::process::Command::new("bash").arg(&script).output();
    let reason = match out {
        Ok(o) if o.status.success() => {
            let bin = root().join("target/ci-plugins/bin/good-plugin");
            if bin.is_file() {
                return Some(bin);
            }
            format!(
                "{} succeeded but produced no {}",
                script.display(),
                bin.display()
            )
        }
        Ok(o) if o.status.code() == Some(3) => format!(
            "go or the plugin SDK is missing ({})",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Ok(o) => {
            // A build failure is a real failure, CI or not.
            panic!(
                "{} failed ({}):\n{}{}",
                script.display(),
                o.status,
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
        }
        Err(e) => format!("cannot run {}: {e}", script.display()),
    };
    assert!(
        !in_ci(),
        "Go SDK plugin unavailable under CI=true: {reason}"
    );
    eprintln!("SKIPPED: {reason}");
    None
}

fn go_options(
    bin: &std::path::Path,
    version: PluginVersion,
    fault: Option<&str>,
) -> zbx_conform::plugin::CertifyOptions {
    let mut o = zbx_conform::plugin::CertifyOptions::new(bin, version);
    o.name = Some("Good".into());
    o.request_timeout = std::time::Duration::from_millis(1500);
    o.exit_within = std::time::Duration::from_secs(2);
    if let Some(f) = fault {
        o.env = vec![("ZBXC_GO_FAULT".into(), f.into())];
    }
    o
}

/// The Go SDK plugin's good.echo is variadic (it joins any number of parameters), so
/// it answers the many-parameters Export with a value: a warning on the advisory
/// export.bad-parameters, nothing else, and the certification passes.
#[tokio::test]
async fn go_sdk_plugin_with_a_variadic_metric_certifies_against_the_6_0_agent() {
    let Some(bin) = go_plugin() else { return };
    let c = certify(&go_options(&bin, pv("6.0"), None), checker()).await;
    eprintln!("{}", c.human_report());
    assert_eq!(c.exit_code(), 0, "{}", report(&c));
    assert!(c.failed().is_empty(), "{}", report(&c));
    assert_eq!(c.warned(), [R::ExportBadParameters], "{}", report(&c));
    let bad = c.requirement(R::ExportBadParameters).expect("exists");
    assert!(
        bad.warnings.iter().all(|w| w.detail.contains("good.echo")),
        "only the variadic metric answers with a value: {:?}",
        bad.warnings
    );
    assert!(
        bad.notes.iter().any(|n| n.starts_with("good.ping: error")),
        "the fixed-arity metric still refuses: {:?}",
        bad.notes
    );
    let many = c.requirement(R::ExportManyParameters).expect("exists");
    assert_eq!(many.verdict(), Verdict::Pass, "{}", report(&c));
    let notes = c
        .requirement(R::LogShape)
        .map(|r| r.notes.join(" "))
        .unwrap_or_default();
    assert!(notes.contains("log requests, all valid"), "{notes}");
}

/// Certifying the Go plugin (whose SDK lists its metrics from a Go map, in random
/// order) several times gives the same verdicts; the 20-run measurement under load is
/// in ci/plugins/README.md.
#[tokio::test]
async fn certifying_the_go_sdk_plugin_again_gives_the_same_verdicts() {
    let Some(bin) = go_plugin() else { return };
    assert_same_verdicts(5, &go_options(&bin, pv("6.0"), None)).await;
}

/// The plugin is built against the 6.0 SDK (protocol version "6.0.13"); 6.4 and 7.0
/// agents send "6.4.0", so it does not certify there: Register is refused (exact string
/// match), everything after it is skipped. Measured the same way with the real agent2
/// 7.0.22 (ci/NOTES-trixie.md section 6).
#[rstest]
#[case(pv("6.4"))]
#[case(pv("7.0"))]
#[tokio::test]
async fn go_sdk_6_0_plugin_refuses_newer_agents_by_version(#[case] version: PluginVersion) {
    let Some(bin) = go_plugin() else { return };
    let c = certify(&go_options(&bin, version, None), checker()).await;
    assert_eq!(c.exit_code(), 1, "{}", report(&c));
    let h = c.requirement(R::RegisterHandshake).expect("exists");
    assert_eq!(h.outcome, Outcome::Failed, "{}", report(&c));
    let detail = &h.failures[0].detail;
    assert!(
        detail.contains("6.4.0") && detail.contains("6.0.13"),
        "{detail}"
    );
    assert_eq!(
        c.requirement(R::RegisterWrongVersion)
            .map(|r| r.outcome.clone()),
        Some(Outcome::Passed)
    );
}

/// A fault in Export fails the export requirements only: the plugin is started again
/// for the checks after a crash or a hang, so Configure and Terminate are not blamed.
#[rstest]
#[case("crash-export")]
#[case("hang-export")]
#[tokio::test]
async fn go_sdk_plugin_with_a_fault_fails_the_named_requirements(#[case] fault: &str) {
    let Some(bin) = go_plugin() else { return };
    let c = certify(&go_options(&bin, pv("6.0"), Some(fault)), checker()).await;
    assert_eq!(c.exit_code(), 1, "{}", report(&c));
    assert_eq!(
        c.failed(),
        [
            R::ExportMetrics,
            R::ExportManyParameters,
            R::ExportConcurrent
        ],
        "fault {fault}:\n{}",
        report(&c)
    );
    assert_eq!(
        c.warned(),
        [R::ExportUnknownKey],
        "fault {fault}:\n{}",
        report(&c)
    );
}

#[tokio::test]
async fn a_relative_plugin_path_is_resolved_before_the_plugin_runs_in_its_private_dir() {
    if fake_plugin().is_none() {
        return;
    }
    // cargo runs integration tests in the package directory (harness/).
    let rel = PathBuf::from("../ci/plugins/fake/fake_plugin.py");
    assert!(rel.is_file(), "test expects to run in harness/");
    let c = certify(&fake_options(&rel, "good", pv("6.0")), checker()).await;
    assert_eq!(c.exit_code(), 0, "{}", report(&c));
}
