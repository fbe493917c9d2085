//! "Still waiting" lines during long waits: a 20 s step against a real peer, or a peer
//! that takes its time to start, should not look like a hung run. Every `every` the
//! runner says what it is waiting for and how long it has waited, against the limit.
//!
//! The runner only produces the lines; where they go (stderr, a test's buffer) is the
//! caller's choice, and without a sink nothing is watched at all.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Takes one progress line.
type Sink = Arc<dyn Fn(&str) + Send + Sync>;

/// Where progress lines go and how often; off by default.
#[derive(Clone, Default)]
pub struct Progress {
    sink: Option<Sink>,
    every: Duration,
    /// What the lines are about (the test name), before what is awaited.
    label: String,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress")
            .field("on", &self.sink.is_some())
            .field("every", &self.every)
            .field("label", &self.label)
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
fn seconds(d: Duration) -> String {
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
