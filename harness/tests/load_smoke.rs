//! Load smoke test (always on, ~5 s): 50 concurrent connections against each listening
//! reference peer for a bounded time, and 50 clients against the harness's own
//! listener in an `accept` scenario. No conversation may fail, and the process's memory
//! must stay modest. The full figures (200 connections) come from
//! `cargo bench --bench load`.

mod load_support;

use load_support::{against_harness_listener, against_reference, mem, Figures};
use std::time::Duration;
use zbx_conform::runner::Outcome;

const CONNECTIONS: usize = 50;
const DURATION: Duration = Duration::from_millis(1500);
/// RSS growth allowed over a run: buffers are per connection and small (a few KiB for
/// these messages); 50 connections must not cost anything near this.
const RSS_GROWTH_MIB: u64 = 128;

fn check(f: &Figures) {
    eprintln!("{}", f.line());
    assert_eq!(f.failures, 0, "{}: failures: {:?}", f.target, f.reasons);
    assert!(
        f.completed >= CONNECTIONS as u64,
        "{}: only {} conversations",
        f.target,
        f.completed
    );
    let grown = f.after.rss_kib.saturating_sub(f.before.rss_kib) / 1024;
    assert!(
        grown < RSS_GROWTH_MIB,
        "{}: RSS grew by {grown} MiB",
        f.target
    );
}

#[test]
fn load_smoke() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let start = mem();
    rt.block_on(async {
        for name in ["passive-proxy", "server-trapper"] {
            check(&against_reference(name, CONNECTIONS, DURATION).await);
        }
        let (f, outcome) = against_harness_listener(CONNECTIONS, 2).await;
        check(&f);
        assert_eq!(f.completed, (CONNECTIONS * 2) as u64);
        assert_eq!(outcome, Outcome::Passed);
    });
    let end = mem();
    eprintln!(
        "process: RSS {} -> {} MiB, HWM {} MiB",
        start.rss_kib / 1024,
        end.rss_kib / 1024,
        end.hwm_kib / 1024
    );
}
