//! Load figures: concurrent connections against each listening reference peer (passive
//! proxy, server trapper) for a bounded time, and against the harness's own listener in
//! an `accept` scenario. Prints conversations/s, latency percentiles, failures and this
//! process's memory (VmRSS/VmHWM from /proc/self/status) before and after each target.
//! All traffic stays on 127.0.0.1.
//!
//! Run: `cargo bench --bench load` (200 connections, 5 s per reference peer, 5 rounds
//! per client against the listener). Tune with LOAD_CONNECTIONS, LOAD_SECONDS,
//! LOAD_ROUNDS. Exits 1 if any conversation failed.

#[path = "../tests/load_support/mod.rs"]
mod load_support;

use load_support::{against_harness_listener, against_reference, mem};
use std::time::Duration;
use zbx_conform::runner::Outcome;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is understood.
    let connections = env_or("LOAD_CONNECTIONS", 200) as usize;
    let seconds = env_or("LOAD_SECONDS", 5);
    let rounds = env_or("LOAD_ROUNDS", 5) as usize;
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let start = mem();
    println!(
        "load: {connections} connections, {seconds} s per reference peer, {rounds} rounds per client against the harness listener"
    );
    let mut failed = false;
    rt.block_on(async {
        for name in ["passive-proxy", "server-trapper"] {
            let f = against_reference(name, connections, Duration::from_secs(seconds)).await;
            println!("{}", f.line());
            if f.failures > 0 {
                println!("  failures: {:?}", f.reasons);
                failed = true;
            }
        }
        let (f, outcome) = against_harness_listener(connections, rounds).await;
        println!("{}", f.line());
        if f.failures > 0 || outcome != Outcome::Passed {
            println!("  failures: {:?}; scenario outcome {outcome:?}", f.reasons);
            failed = true;
        }
    });
    let end = mem();
    println!(
        "process: VmRSS {} -> {} MiB, VmHWM {} MiB",
        start.rss_kib / 1024,
        end.rss_kib / 1024,
        end.hwm_kib / 1024
    );
    if failed {
        std::process::exit(1);
    }
}
