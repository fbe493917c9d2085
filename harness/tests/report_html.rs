//! The HTML report: a real run against the reference peers (one broken on purpose, so
//! there are failures), written as HTML; failures are marked on the message they
//! concern, hostile text is escaped, no secret reaches the page; then the page is
//! opened in headless Chromium, which must see the summary, the scenarios and the
//! messages, and draw a real screenshot.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use zbx_conform::report;
use zbx_conform::runner::result::*;

const SECRET: &str = "PSK-HTML-5ecret-0042";
const HOSTILE: &str = "</pre></details><script>alert(\"x\")</script><img src=x onerror='y'>";

/// A run with passes and failures: the passive proxy suites against a reference proxy
/// that leaves required fields out (schema failures), plus planted hostile text and a
/// secret in places a report shows.
fn failing_run() -> RunResult {
    let mut run = support::run(
        &[
            "scenarios/server-proxy/passive/data-ack.yaml",
            "scenarios/server-proxy/passive/config-push.yaml",
            "scenarios/server-proxy/passive/unknown-request.yaml",
        ],
        Some("missing-fields"),
        Duration::from_secs(10),
    );
    assert!(
        run.count(|o| *o == Outcome::Failed) > 0 && run.count(|o| *o == Outcome::Passed) > 0,
        "passes and failures expected:\n{}",
        support::describe(&run)
    );
    let s = &mut run.scenarios[0];
    s.properties.insert("planted".into(), HOSTILE.into());
    s.transcript.push(TranscriptEntry {
        at: Duration::from_millis(7),
        direction: Direction::Received,
        kind: Some("planted.kind".into()),
        flags: Some(0x03),
        body: format!(
            r#"{{"note":"{}","tls_psk":"{SECRET}"}}"#,
            HOSTILE.replace('"', "\\\"")
        ),
        step: None,
    });
    s.peer_log = Some(format!("started\ntls_psk={SECRET}\n{HOSTILE}\n"));
    run
}

/// The text of the message block with `id` (up to the next message, note or the end
/// of the diagram).
fn block<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no element {id}"));
    let rest = &html[start..];
    let end = [
        "<div class=\"msg ",
        "<div class=\"note",
        "<div class=\"failures loose",
    ]
    .iter()
    .filter_map(|m| rest[1..].find(m).map(|i| i + 1))
    .min()
    .unwrap_or(rest.len());
    &rest[..end]
}

#[test]
fn failures_are_marked_on_their_message_text_is_escaped_and_secrets_stay_out() {
    let run = failing_run();
    let matrices = report::matrix::for_run(support::catalog(), &run);
    let html = report::html::render(&run, &matrices);

    // Every failing step is shown on the last message received in that step, and that
    // message is marked with the failed check.
    let mut marked = 0;
    for (n, s) in run.scenarios.iter().enumerate() {
        for step in s.steps.iter().filter(|st| !st.failures.is_empty()) {
            let last = s
                .transcript
                .iter()
                .rposition(|e| {
                    e.step.as_deref() == Some(step.index.as_str())
                        && e.direction == Direction::Received
                })
                .unwrap_or_else(|| {
                    panic!(
                        "{}: no message received in failed step {} carries its index:\n{:#?}",
                        s.test_name(),
                        step.index,
                        s.transcript
                    )
                });
            let id = format!("t{n}-m{last}");
            assert!(
                html.contains(&format!("<div class=\"msg received fail\" id=\"{id}\">")),
                "{}: message {id} not marked",
                s.test_name()
            );
            let b = block(&html, &id);
            for f in &step.failures {
                assert!(
                    b.contains(&format!(
                        "<span class=\"check\">{}</span> step {}",
                        f.check.as_str(),
                        step.index
                    )),
                    "{}: {} failure not on {id}:\n{b}",
                    s.test_name(),
                    f.check.as_str()
                );
            }
            marked += 1;
        }
        // Messages of passing scenarios carry no mark.
        if s.outcome == Outcome::Passed {
            let start = html.find(&format!("id=\"t{n}\"")).unwrap();
            let end = html[start..].find("</section>").unwrap() + start;
            assert!(!html[start..end].contains(" fail\""), "{}", s.test_name());
        }
    }
    assert!(marked > 0, "no failed step found");
    assert!(html.contains("<span class=\"check\">schema</span>"));

    // Hostile text is text: no element of it survives, in bodies, properties and logs.
    assert!(!html.contains("<script"), "a script element in the report");
    assert!(!html.contains("<img"), "an img element in the report");
    assert!(html.contains("&lt;script&gt;alert("));
    assert!(html.contains("onerror=&#39;y&#39;"));
    // Bodies are pretty-printed JSON with the secret redacted.
    assert!(
        html.contains("\n  &quot;tls_psk&quot;: &quot;[redacted]&quot;"),
        "pretty, redacted body"
    );
    assert!(
        !html.contains(SECRET),
        "the planted secret is in the report"
    );
    // Flags named on the arrow; a message sent without a declared kind is named by its
    // request (unknown-request's); the self-contained rule: nothing fetched.
    assert!(html.contains("ZBXD|compressed 0x03"));
    assert!(
        html.contains("<span class=\"kind\">&quot;no such request&quot; request</span>"),
        "a kindless message is not named by its request"
    );
    for remote in ["http://", "https://", "<link", "@import", "url("] {
        assert!(!html.contains(remote), "the page refers to {remote}");
    }
    // The summary counts and the coverage matrix.
    let failed = run.count(|o| *o == Outcome::Failed);
    assert!(html.contains(&format!(
        "<div class=\"count failed\"><b>{failed}</b> <span>failed</span></div>"
    )));
    assert!(html.contains("<table class=\"matrix\">") && html.contains("cov-ref"));
}

/// Chromium: `ZBXC_CHROMIUM`, else `chromium` on PATH. Missing: skipped with a message,
/// but a failure under CI (a missing tool must never pass silently).
fn chromium() -> Option<PathBuf> {
    let found = std::env::var_os("ZBXC_CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                .map(|d| d.join("chromium"))
                .find(|p| p.is_file())
        })
        .filter(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "chromium is missing and CI=true: run `bash ci/install-report-tools.sh` (or set ZBXC_CHROMIUM)"
        );
        eprintln!(
            "SKIPPED: chromium is not installed (apt-get install chromium, or set ZBXC_CHROMIUM)"
        );
    }
    found
}

/// Run headless Chromium on `page` with `args`; its stdout. Killed after two minutes.
fn headless(bin: &Path, profile: &Path, args: &[String], page: &Path) -> String {
    let mut child = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium starts");
    let (out, err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let read = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = r.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let (out, err) = (read(Box::new(out)), read(Box::new(err)));
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 2 minutes");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    assert!(status.success(), "chromium {args:?}: {status}\n{err}");
    out
}

#[test]
fn chromium_reads_the_report_and_draws_it() {
    let Some(bin) = chromium() else { return };
    let run = failing_run();
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    report::html::write(
        &run,
        &report::matrix::for_run(support::catalog(), &run),
        &page,
    )
    .unwrap();
    let profile = dir.path().join("profile");

    let dom = headless(&bin, &profile, &["--dump-dom".into()], &page);
    let failed = run.count(|o| *o == Outcome::Failed);
    let passed = run.count(|o| *o == Outcome::Passed);
    assert!(
        dom.contains(&format!("<b>{failed}</b> <span>failed</span>"))
            && dom.contains(&format!("<b>{passed}</b> <span>passed</span>")),
        "summary counts not in the DOM:\n{dom}"
    );
    let name = &run.scenarios[1].name;
    assert!(
        dom.contains(name.as_str()),
        "scenario {name} not in the DOM"
    );
    let kind = run
        .scenarios
        .iter()
        .flat_map(|s| &s.transcript)
        .find_map(|e| {
            (e.direction == Direction::Received)
                .then_some(e.kind.as_deref())
                .flatten()
        })
        .expect("a received message with a kind");
    assert!(
        dom.contains(&format!("<span class=\"kind\">{kind}</span>")),
        "kind {kind} not in the DOM"
    );
    // The browser parsed hostile text as text: no element came out of it.
    assert!(dom.contains("&lt;script&gt;alert("), "hostile text missing");
    assert!(!dom.contains("<script"), "a script element in the DOM");
    assert!(!dom.contains(SECRET));

    let shot = dir.path().join("shot.png");
    headless(
        &bin,
        &profile,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,2000".into(),
        ],
        &page,
    );
    let png = std::fs::read(&shot).expect("screenshot written");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    // IHDR: width and height as asked.
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    assert_eq!(&png[12..16], b"IHDR");
    assert_eq!((be(&png[16..20]), be(&png[20..24])), (1280, 2000));
    // A blank page compresses to a few kilobytes; a drawn report does not.
    assert!(
        png.len() > 30_000,
        "screenshot of {} bytes: blank?",
        png.len()
    );
}

#[test]
fn run_html_writes_the_report_file() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("sub/report.html");
    let o = support::zbx([
        "run".as_ref(),
        "scenarios/server-proxy/passive/config-push.yaml".as_ref(),
        "--html".as_ref(),
        page.as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", support::output_text(&o));
    let html = std::fs::read_to_string(&page).expect("report written");
    assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
    assert!(html.contains("passive proxy accepts a full configuration push"));
    assert!(html.contains("<span class=\"verdict pass\">PASS</span>"));
    assert!(html.contains("<div class=\"msg sent\""));
    assert!(html.contains("<div class=\"msg received\""));
}
