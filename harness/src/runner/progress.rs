//! "Still waiting" lines during long waits: a 20 s step against a real peer, or a peer
//! that takes its time to start, should not look like a hung run. Every `every` the
//! runner says what it is waiting for and how long it has waited, against the limit.
//!
//! The runner only produces the lines; where they go (stderr, a test's buffer) is the
//! caller's choice, and without a sink nothing is watched at all.
//!
//! On a terminal the same facts feed a live status line instead: every wait is listed in
//! a shared [`Waits`] while it lasts, and the terminal side (`report::live`) draws the
//! longest one. The runner never draws anything itself.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Takes one progress line.
type Sink = Arc<dyn Fn(&str) + Send + Sync>;

/// One wait in progress: who waits (the test name), for what, since when, how long at most.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wait {
    pub label: String,
    pub what: String,
    pub since: Instant,
    pub limit: Option<Duration>,
}

/// The waits going on right now, across the run's concurrent jobs.
#[derive(Debug, Default)]
pub struct Waits {
    current: Mutex<BTreeMap<u64, Wait>>,
    next: AtomicU64,
}

impl Waits {
    /// The waits in progress, the longest first.
    pub fn snapshot(&self) -> Vec<Wait> {
        let mut all: Vec<Wait> = self
            .current
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        all.sort_by_key(|w| w.since);
        all
    }

    fn add(self: &Arc<Self>, wait: Wait) -> WaitGuard {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut m) = self.current.lock() {
            m.insert(id, wait);
        }
        WaitGuard {
            waits: self.clone(),
            id,
        }
    }
}

/// Removes its wait when the wait ends, however it ends (a cancelled future included).
struct WaitGuard {
    waits: Arc<Waits>,
    id: u64,
}

impl Drop for WaitGuard {
    fn drop(&mut self) {
        if let Ok(mut m) = self.waits.current.lock() {
            m.remove(&self.id);
        }
    }
}

/// Where progress goes and how often; off by default.
#[derive(Clone, Default)]
pub struct Progress {
    sink: Option<Sink>,
    every: Duration,
    /// What the lines are about (the test name), before what is awaited.
    label: String,
    /// Where the waits are listed for a live status line.
    waits: Option<Arc<Waits>>,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress")
            .field("on", &self.sink.is_some())
            .field("every", &self.every)
            .field("label", &self.label)
            .field("live", &self.waits.is_some())
            .finish()
    }
}

/// How often a long wait is reported unless the caller says otherwise.
pub const DEFAULT_EVERY: Duration = Duration::from_secs(10);

impl Progress {
    /// Report every `every` (at least 10 ms) to `sink`.
    pub fn new(every: Duration, sink: impl Fn(&str) + Send + Sync + 'static) -> Self {
        Progress {
            sink: Some(Arc::new(sink)),
            every: every.max(Duration::from_millis(10)),
            label: String::new(),
            waits: None,
        }
    }

    /// No lines: every wait is listed in `waits` while it lasts, for a live status line.
    pub fn live(waits: Arc<Waits>) -> Self {
        Progress {
            waits: Some(waits),
            ..Progress::default()
        }
    }

    /// The same sink, with lines about `label` (e.g. `scenario [6.0]`).
    pub fn labelled(&self, label: impl Into<String>) -> Self {
        Progress {
            label: label.into(),
            ..self.clone()
        }
    }

    /// Run `fut`; while it runs, report every `every` that it is still waiting for
    /// `what` (out of `limit`, when there is one).
    pub async fn watch<F: Future>(&self, what: &str, limit: Option<Duration>, fut: F) -> F::Output {
        let _listed = self.waits.as_ref().map(|w| {
            w.add(Wait {
                label: self.label.clone(),
                what: what.to_string(),
                since: Instant::now(),
                limit,
            })
        });
        let Some(sink) = &self.sink else {
            return fut.await;
        };
        let start = tokio::time::Instant::now();
        let mut tick = tokio::time::interval_at(start + self.every, self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        tokio::pin!(fut);
        loop {
            tokio::select! {
                out = &mut fut => return out,
                _ = tick.tick() => sink(&self.line(what, start.elapsed(), limit)),
            }
        }
    }

    fn line(&self, what: &str, waited: Duration, limit: Option<Duration>) -> String {
        let of = limit.map_or(String::new(), |l| format!(" of {}", seconds(l)));
        let about = if self.label.is_empty() {
            String::new()
        } else {
            format!("{}: ", self.label)
        };
        format!("{about}still waiting for {what} ({}{of})", seconds(waited))
    }
}

/// `20 s`, `1.5 s`: whole seconds when whole, else one decimal.
pub fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if (s - s.round()).abs() < 0.05 {
        format!("{} s", s.round())
    } else {
        format!("{s:.1} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[tokio::test(start_paused = true)]
    async fn a_long_wait_is_reported_every_interval_with_the_limit() {
        let lines = Arc::new(Mutex::new(Vec::<String>::new()));
        let l = lines.clone();
        let p = Progress::new(Duration::from_secs(10), move |s| {
            l.lock().unwrap().push(s.to_string())
        })
        .labelled("config sync [6.0]");
        let out = p
            .watch(
                "a `proxy-config.response` message",
                Some(Duration::from_secs(30)),
                async {
                    tokio::time::sleep(Duration::from_secs(25)).await;
                    7
                },
            )
            .await;
        assert_eq!(out, 7);
        assert_eq!(
            *lines.lock().unwrap(),
            [
                "config sync [6.0]: still waiting for a `proxy-config.response` message (10 s of 30 s)",
                "config sync [6.0]: still waiting for a `proxy-config.response` message (20 s of 30 s)",
            ]
        );
    }

    /// A live progress lists each wait while it lasts, the longest first, and forgets it
    /// when it ends, also when the waiting future is dropped half-way.
    #[tokio::test]
    async fn waits_are_listed_while_they_last() {
        let waits = Arc::new(Waits::default());
        let p = Progress::live(waits.clone()).labelled("data-ack [6.0]");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let w = waits.clone();
        let seen = p
            .watch("a reply", Some(Duration::from_secs(10)), async move {
                let during = w.snapshot();
                let _ = tx.send(());
                during
            })
            .await;
        rx.await.unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].label, "data-ack [6.0]");
        assert_eq!(seen[0].what, "a reply");
        assert_eq!(seen[0].limit, Some(Duration::from_secs(10)));
        assert!(waits.snapshot().is_empty());
        let cancelled = tokio::time::timeout(
            Duration::from_millis(20),
            p.watch("forever", None, std::future::pending::<()>()),
        )
        .await;
        assert!(cancelled.is_err());
        assert!(waits.snapshot().is_empty(), "a dropped wait is forgotten");
    }

    #[tokio::test(start_paused = true)]
    async fn a_short_wait_or_no_sink_says_nothing() {
        let lines = Arc::new(Mutex::new(Vec::<String>::new()));
        let l = lines.clone();
        let p = Progress::new(Duration::from_secs(10), move |s| {
            l.lock().unwrap().push(s.to_string())
        });
        p.watch("x", None, tokio::time::sleep(Duration::from_secs(9)))
            .await;
        assert!(lines.lock().unwrap().is_empty());
        Progress::default()
            .watch("x", None, tokio::time::sleep(Duration::from_secs(30)))
            .await;
        assert_eq!(
            Progress::default().line("y", Duration::from_millis(1500), None),
            "still waiting for y (1.5 s)"
        );
    }
}
