//! "Still waiting for …" lines from the runner: a peer that takes its time to start is
//! not a silent run. (A long step through the binary: `cli.rs`.)

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;
use zbx_conform::runner::peer::LoadedProfile;
use zbx_conform::runner::progress::Progress;
use zbx_conform::runner::{Outcome, RunOptions};

#[test]
fn a_slow_peer_start_says_what_it_is_still_waiting_for() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("slow.yaml");
    std::fs::write(
        &profile,
        r#"name: slow starter
program: /bin/sh
args: [-c, "sleep 1; echo ready > ${run_dir}/peer.log; exec sleep 30"]
ready: { log: { file: "${run_dir}/peer.log", pattern: ready }, within: 5s }
stop_grace: 1s
"#,
    )
    .unwrap();
    let scenario = dir.path().join("quick.yaml");
    std::fs::write(
        &scenario,
        r#"name: nothing to do
family: server-proxy
versions: ["6.0"]
plays: server
steps:
  - sleep: 1ms
"#,
    )
    .unwrap();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    let r = support::run_opts(&RunOptions {
        paths: vec![scenario],
        start_peer: Some(Arc::new(LoadedProfile::load(&profile).expect("profile"))),
        run_dir: dir.path().join("runs"),
        progress: Progress::new(Duration::from_millis(400), move |l| {
            sink.lock().unwrap().push(l.to_string())
        }),
        ..RunOptions::default()
    });
    assert_eq!(
        r.scenarios[0].outcome,
        Outcome::Passed,
        "{}",
        support::describe(&r)
    );
    let lines = lines.lock().unwrap();
    assert_eq!(
        lines.first().map(String::as_str),
        Some("nothing to do [6.0]: still waiting for peer slow starter to start (0.4 s of 5 s)"),
        "{lines:?}"
    );
    assert!(
        lines.iter().all(|l| l.contains("to start")),
        "the 1 ms step says nothing: {lines:?}"
    );
}
