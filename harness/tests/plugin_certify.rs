//! certify-plugin against the in-repo fake plugin (fast, no Go) and, when built, the Go
//! SDK plugin from ci/plugins: a correct plugin passes every requirement, and each
//! deliberately broken variant fails exactly the requirement that names its defect.

mod plugin_support;

use plugin_support::*;
use rstest::rstest;
use std::path::PathBuf;
use zbx_conform::plugin::certify::REQUIREMENTS;
use zbx_conform::plugin::{certify, Certification, PluginVersion};
use zbx_conform::runner::result::Outcome;

async fn run_fake(mode: &str, version: PluginVersion) -> Option<Certification> {
    let script = fake_plugin()?;
    let opts = fake_options(&script, mode, version);
    Some(certify(&opts, checker()).await)
}

fn report(c: &Certification) -> String {
    format!("{}\n{}", c.human_report(), c.plugin_output)
}

#[rstest]
#[case(PluginVersion::V6_0)]
#[case(PluginVersion::V6_4)]
#[case(PluginVersion::V7_0)]
#[tokio::test]
async fn good_fake_plugin_passes_every_requirement(#[case] version: PluginVersion) {
    let Some(c) = run_fake("good", version).await else {
        return;
    };
    assert_eq!(c.exit_code(), 0, "{}", report(&c));
    assert_eq!(c.requirements.len(), REQUIREMENTS.len());
    for r in &c.requirements {
        assert_eq!(
            r.outcome,
            Outcome::Passed,
            "{} should pass:\n{}",
            r.id,
            report(&c)
        );
    }
    let text = c.human_report();
    for (id, _) in REQUIREMENTS {
        assert!(
            text.contains(&format!("PASS    {id}")),
            "{id} missing:\n{text}"
        );
    }
}

#[rstest]
#[case("wrong-id", &["export.metrics", "export.unknown-key", "export.bad-parameters", "export.concurrent", "wire.clean"])]
#[case("any-version", &["register.wrong-version"])]
#[case("crash-export", &["export.metrics", "export.unknown-key", "export.bad-parameters", "export.concurrent"])]
#[case("silent", &["register.handshake", "terminate.registration", "register.wrong-version"])]
#[case("bad-frame", &["wire.clean"])]
#[case("bad-interfaces", &["register.interfaces"])]
#[case("odd-metrics", &["register.metrics"])]
#[case("no-exit", &["terminate.registration", "terminate.operation"])]
#[case("bad-log", &["log.shape"])]
#[case("lax-options", &["validate.options"])]
#[case("not-json", &["wire.clean"])]
#[case("trailing-bytes", &["wire.clean"])]
#[tokio::test]
async fn broken_fake_plugin_fails_the_named_requirements(
    #[case] mode: &str,
    #[case] expected: &[&str],
) {
    let Some(c) = run_fake(mode, PluginVersion::V6_0).await else {
        return;
    };
    assert_eq!(c.exit_code(), 1, "{}", report(&c));
    let mut failed = c.failed();
    failed.retain(|id| {
        !matches!(
            c.requirement(id).map(|r| &r.outcome),
            Some(Outcome::Skipped(_))
        )
    });
    assert_eq!(failed, expected, "mode {mode}:\n{}", report(&c));
    for id in expected {
        let r = c.requirement(id).expect("requirement exists");
        assert!(!r.failures.is_empty(), "{id} failed without a reason");
        assert!(c.human_report().contains(&format!("FAIL    {id}")));
    }
}

#[tokio::test]
async fn plugin_built_for_another_version_fails_the_handshake() {
    let Some(script) = fake_plugin() else { return };
    let mut opts = fake_options(&script, "good", PluginVersion::V6_4);
    opts.env[1].1 = "6.0.13".into();
    let c = certify(&opts, checker()).await;
    let h = c.requirement("register.handshake").expect("exists");
    assert_eq!(h.outcome, Outcome::Failed, "{}", report(&c));
    assert!(h.failures[0].detail.contains("6.4.0"), "{:?}", h.failures);
    assert_eq!(
        c.requirement("export.metrics").map(|r| r.outcome.clone()),
        Some(Outcome::Skipped(
            "blocked: the registration run did not yield a usable Register response".into()
        ))
    );
}

#[tokio::test]
async fn expected_name_is_checked() {
    let Some(script) = fake_plugin() else { return };
    let mut opts = fake_options(&script, "good", PluginVersion::V6_0);
    opts.name = Some("Other".into());
    let c = certify(&opts, checker()).await;
    let h = c.requirement("register.handshake").expect("exists");
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
        let mut opts = zbx_conform::plugin::CertifyOptions::new(&program, PluginVersion::V6_0);
        opts.request_timeout = std::time::Duration::from_millis(500);
        let c = certify(&opts, checker.clone()).await;
        assert_eq!(c.exit_code(), 3, "{}", c.human_report());
        assert!(c.unreachable.is_some());
        assert!(matches!(
            c.requirement("register.handshake").map(|r| &r.outcome),
            Some(Outcome::Unreachable(_))
        ));
        assert_eq!(c.to_run_result().exit_code(), 3);
    }
}

#[tokio::test]
async fn junit_and_json_name_each_requirement() {
    let Some(c) = run_fake("odd-metrics", PluginVersion::V6_0).await else {
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
    assert!(xml.contains("register.metrics: metrics is a flat"), "{xml}");
    assert_eq!(xml.matches("<failure").count(), 1, "{xml}");
    let json = zbx_conform::report::json::to_string(&run).expect("json");
    let v: serde_json::Value = serde_json::from_str(&json).expect("valid json");
    let failed: Vec<&str> = v["scenarios"]
        .as_array()
        .expect("array")
        .iter()
        .filter(|s| s["outcome"]["status"] == "failed")
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(failed.len(), 1);
    assert!(failed[0].starts_with("register.metrics"), "{failed:?}");
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

#[tokio::test]
async fn go_sdk_plugin_certifies_against_the_6_0_agent() {
    let Some(bin) = go_plugin() else { return };
    let c = certify(&go_options(&bin, PluginVersion::V6_0, None), checker()).await;
    eprintln!("{}", c.human_report());
    assert_eq!(c.exit_code(), 0, "{}", report(&c));
    let notes = c
        .requirement("log.shape")
        .map(|r| r.notes.join(" "))
        .unwrap_or_default();
    assert!(notes.contains("log requests, all valid"), "{notes}");
    for r in &c.requirements {
        assert_eq!(r.outcome, Outcome::Passed, "{}:\n{}", r.id, report(&c));
    }
}

/// The plugin is built against the 6.0 SDK (protocol version "6.0.13"); 6.4 and 7.0
/// agents send "6.4.0", so it does not certify there: Register is refused (exact string
/// match), everything after it is skipped. Measured the same way with the real agent2
/// 7.0.22 (ci/NOTES-trixie.md section 6).
#[rstest]
#[case(PluginVersion::V6_4)]
#[case(PluginVersion::V7_0)]
#[tokio::test]
async fn go_sdk_6_0_plugin_refuses_newer_agents_by_version(#[case] version: PluginVersion) {
    let Some(bin) = go_plugin() else { return };
    let c = certify(&go_options(&bin, version, None), checker()).await;
    assert_eq!(c.exit_code(), 1, "{}", report(&c));
    let h = c.requirement("register.handshake").expect("exists");
    assert_eq!(h.outcome, Outcome::Failed, "{}", report(&c));
    let detail = &h.failures[0].detail;
    assert!(
        detail.contains("6.4.0") && detail.contains("6.0.13"),
        "{detail}"
    );
    assert_eq!(
        c.requirement("register.wrong-version")
            .map(|r| r.outcome.clone()),
        Some(Outcome::Passed)
    );
}

#[rstest]
#[case("crash-export", &["export.metrics", "export.unknown-key", "export.bad-parameters", "export.concurrent"])]
#[case("hang-export", &["configure.options", "export.metrics", "export.unknown-key", "export.bad-parameters", "export.concurrent", "terminate.operation"])]
#[tokio::test]
async fn go_sdk_plugin_with_a_fault_fails_the_named_requirements(
    #[case] fault: &str,
    #[case] expected: &[&str],
) {
    let Some(bin) = go_plugin() else { return };
    let c = certify(
        &go_options(&bin, PluginVersion::V6_0, Some(fault)),
        checker(),
    )
    .await;
    assert_eq!(c.exit_code(), 1, "{}", report(&c));
    assert_eq!(c.failed(), expected, "fault {fault}:\n{}", report(&c));
}

#[tokio::test]
async fn a_relative_plugin_path_is_resolved_before_the_plugin_runs_in_its_private_dir() {
    if fake_plugin().is_none() {
        return;
    }
    // cargo runs integration tests in the package directory (harness/).
    let rel = PathBuf::from("../ci/plugins/fake/fake_plugin.py");
    assert!(rel.is_file(), "test expects to run in harness/");
    let c = certify(&fake_options(&rel, "good", PluginVersion::V6_0), checker()).await;
    assert_eq!(c.exit_code(), 0, "{}", report(&c));
}
