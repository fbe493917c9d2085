//! `certify-plugin` entry point: argument parsing, exit codes 0/1/2/3, report files.

mod plugin_support;

use clap::Parser;
use plugin_support::*;
use std::path::Path;
use zbx_conform::catalog::Catalog;
use zbx_conform::plugin::{certify_main, CertifyArgs};

#[derive(Debug, Parser)]
struct Wrapper {
    #[command(flatten)]
    args: CertifyArgs,
}

fn parse(argv: &[&str]) -> Result<CertifyArgs, clap::Error> {
    let mut full = vec!["certify-plugin"];
    full.extend_from_slice(argv);
    Wrapper::try_parse_from(full).map(|w| w.args)
}

fn catalog() -> Catalog {
    Catalog::load(&root()).expect("catalog")
}

/// A wrapper script that runs the fake plugin in `mode` (the CLI has no --env).
fn wrapper(dir: &Path, script: &Path, mode: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(format!("fake-{mode}.sh"));
    let text = format!(
        "#!/bin/sh\nZBXC_FAKE_MODE={mode} exec python3 {} \"$@\"\n",
        script.display()
    );
    std::fs::write(&p, text).expect("write");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    p
}

#[test]
fn arguments_parse_with_defaults_and_reject_unknown_versions() {
    let a = parse(&["./p"]).expect("parses");
    // No --version: the plugin is asked which Register version it accepts.
    assert_eq!(a.version, None);
    assert_eq!(a.timeout, std::time::Duration::from_secs(3));
    assert!(a.junit.is_none() && a.json.is_none() && a.name.is_none());
    let a = parse(&[
        "./p",
        "--version",
        "7.0",
        "--name",
        "Good",
        "--junit",
        "j.xml",
        "--json",
        "r.json",
        "--option",
        "Session.Uri=tcp://x",
        "--timeout",
        "500ms",
    ])
    .expect("parses");
    assert_eq!(a.version.as_deref(), Some("7.0"));
    let o = a.options(pv("7.0"));
    assert_eq!(o.name.as_deref(), Some("Good"));
    assert_eq!(o.options.len(), 1);
    assert_eq!(o.request_timeout, std::time::Duration::from_millis(500));
    // A version without a plugin protocol in the catalog is a usage error, before the
    // plugin is started (here an executable that is not a plugin at all).
    let a = parse(&["/bin/sh", "--version", "5.4"]).expect("parses");
    assert_eq!(certify_main(a, &catalog()), 2);
    assert!(parse(&[]).is_err(), "PLUGIN is required");
}

#[test]
fn missing_plugin_file_is_a_usage_error() {
    let a = parse(&["/nonexistent/zbxc-plugin"]).expect("parses");
    assert_eq!(certify_main(a, &catalog()), 2);
}

#[test]
fn exit_codes_and_report_files() {
    let Some(script) = fake_plugin() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let junit = dir.path().join("out/junit.xml");
    let json = dir.path().join("out/report.json");
    let good = wrapper(dir.path(), &script, "good");
    let a = parse(&[
        good.to_str().expect("utf8"),
        "--name",
        "Fake",
        "--timeout",
        "1500ms",
        "--junit",
        junit.to_str().expect("utf8"),
        "--json",
        json.to_str().expect("utf8"),
    ])
    .expect("parses");
    assert_eq!(certify_main(a, &catalog()), 0);
    let xml = std::fs::read_to_string(&junit).expect("junit written");
    assert!(
        xml.contains("register.handshake") && !xml.contains("<failure"),
        "{xml}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json written")).expect("json");
    assert_eq!(
        report["scenarios"].as_array().map(Vec::len),
        Some(zbx_conform::plugin::REQUIREMENTS.len())
    );
    assert_eq!(report["scenarios"][0]["properties"]["severity"], "required");

    // An advisory departure (a metric that takes any number of parameters) is a
    // warning: exit code 0, no failure element, the verdict in the JSON properties.
    let variadic = wrapper(dir.path(), &script, "variadic");
    let a = parse(&[
        variadic.to_str().expect("utf8"),
        "--timeout",
        "1500ms",
        "--junit",
        junit.to_str().expect("utf8"),
        "--json",
        json.to_str().expect("utf8"),
    ])
    .expect("parses");
    assert_eq!(certify_main(a, &catalog()), 0);
    let xml = std::fs::read_to_string(&junit).expect("junit written");
    assert!(
        !xml.contains("<failure") && xml.contains("verdict: warning"),
        "{xml}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json written")).expect("json");
    let warned: Vec<&serde_json::Value> = report["scenarios"]
        .as_array()
        .expect("array")
        .iter()
        .filter(|s| s["properties"]["verdict"] == "warning")
        .collect();
    assert_eq!(warned.len(), 1, "{report}");
    assert_eq!(
        warned[0]["properties"]["requirement"],
        "export.bad-parameters"
    );

    let bad = wrapper(dir.path(), &script, "any-version");
    let html = dir.path().join("out/report.html");
    let a = parse(&[
        bad.to_str().expect("utf8"),
        "--timeout",
        "1s",
        "--junit",
        junit.to_str().expect("utf8"),
        "--html",
        html.to_str().expect("utf8"),
    ])
    .expect("parses");
    assert_eq!(certify_main(a, &catalog()), 1);
    let xml = std::fs::read_to_string(&junit).expect("junit written");
    assert_eq!(xml.matches("<failure").count(), 1, "{xml}");
    assert!(xml.contains("register.wrong-version"), "{xml}");
    // The HTML report: the failed requirement, its failure on the plugin's answer.
    let page = std::fs::read_to_string(&html).expect("html written");
    assert!(page.contains("<span class=\"verdict fail\">FAIL</span>"));
    assert!(page.contains("<span class=\"name\">register.wrong-version</span>"));
    assert_eq!(
        page.matches("<div class=\"msg received fail\"").count(),
        1,
        "one message marked"
    );

    let a = parse(&["/bin/true", "--timeout", "1s"]).expect("parses");
    assert_eq!(
        certify_main(a, &catalog()),
        3,
        "a plugin that never connects"
    );
}

/// A wrapper running the fake plugin in its normal mode, built for Register `proto`.
fn wrapper_for_proto(dir: &Path, script: &Path, proto: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(format!("fake-proto-{proto}.sh"));
    let text = format!(
        "#!/bin/sh\nZBXC_FAKE_MODE=good ZBXC_FAKE_PROTO={proto} exec python3 {} \"$@\"\n",
        script.display()
    );
    std::fs::write(&p, text).expect("write");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    p
}

#[test]
fn without_version_the_plugin_is_asked_which_register_version_it_accepts() {
    let Some(script) = fake_plugin() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("r.json");
    // Built for 6.4-7.4 agents ("6.4.0"): certified as the newest generation a real
    // agent was measured at (7.0), not the documented-only 7.4.
    let newer = wrapper_for_proto(dir.path(), &script, "6.4.0");
    let a = parse(&[
        newer.to_str().expect("utf8"),
        "--timeout",
        "1500ms",
        "--json",
        json.to_str().expect("utf8"),
    ])
    .expect("parses");
    assert_eq!(certify_main(a, &catalog()), 0);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json written")).expect("json");
    assert_eq!(report["scenarios"][0]["version"], "7.0", "{report}");
    // A plugin that accepts none of the known strings is a usage error naming them.
    let none = wrapper_for_proto(dir.path(), &script, "9.9.9");
    let a = parse(&[none.to_str().expect("utf8"), "--timeout", "1500ms"]).expect("parses");
    assert_eq!(certify_main(a, &catalog()), 2);
}
