//! The live status line on a terminal: what the run is waiting for right now, for how
//! long against its limit, and how many tests are done. A 20 s step against a real peer
//! then looks busy, not hung.
//!
//! It is drawn on stderr, one line redrawn in place (`\r`, erase line), from a thread of
//! its own that reads the runner's [`Waits`] a few times a second. Anything else printed
//! while it runs goes through [`StatusLine::print`], which erases the line first, so
//! result lines never mix with it. In a log (not a terminal) nothing here runs: the
//! runner's plain "still waiting for …" lines say the same.

use crate::runner::progress::{seconds, Progress, Wait, Waits};
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the line is redrawn.
const TICK: Duration = Duration::from_millis(125);
/// Spinner frames (one per redraw).
const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
/// Erase the current line and return to its start.
const ERASE: &str = "\r\x1b[2K";

/// How a command shows its progress: a live line on a terminal, plain lines in a log,
/// nothing when asked to be quiet.
pub fn progress(every: Duration, quiet: bool) -> (Progress, Option<StatusLine>) {
    if quiet {
        return (Progress::default(), None);
    }
    if std::io::stderr().is_terminal() {
        let waits = Arc::new(Waits::default());
        let line = StatusLine::start(waits.clone());
        return (Progress::live(waits), Some(line));
    }
    let lines = Progress::new(every, |line| crate::complain!("{line}"));
    (lines, None)
}

struct Shared {
    waits: Arc<Waits>,
    done: AtomicUsize,
    total: AtomicUsize,
    stop: AtomicBool,
    /// Held while the line is drawn or erased for other output.
    out: Mutex<()>,
}

/// The line and the thread that draws it; erased and stopped on drop.
pub struct StatusLine {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl StatusLine {
    /// Start drawing the waits in `waits` on stderr.
    pub fn start(waits: Arc<Waits>) -> StatusLine {
        let shared = Arc::new(Shared {
            waits,
            done: AtomicUsize::new(0),
            total: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            out: Mutex::new(()),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("status-line".into())
            .spawn(move || draw_loop(&s))
            .ok();
        StatusLine { shared, thread }
    }

    /// How many tests the run has (0 while unknown).
    pub fn set_total(&self, total: usize) {
        self.shared.total.store(total, Ordering::Relaxed);
    }

    /// One more test finished.
    pub fn finished_one(&self) {
        self.shared.done.fetch_add(1, Ordering::Relaxed);
    }

    /// Print something else (a result line) without the status line in its way: the
    /// line is erased first and redrawn at the next tick.
    pub fn print(&self, f: impl FnOnce()) {
        let _held = self.shared.out.lock();
        erase();
        f();
    }
}

impl Drop for StatusLine {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _held = self.shared.out.lock();
        erase();
    }
}

fn erase() {
    let mut err = std::io::stderr();
    let _ = err.write_all(ERASE.as_bytes());
    let _ = err.flush();
}

fn draw_loop(s: &Shared) {
    let mut frame = 0usize;
    while !s.stop.load(Ordering::Relaxed) {
        std::thread::sleep(TICK);
        if s.stop.load(Ordering::Relaxed) {
            break;
        }
        let text = render(
            &s.waits.snapshot(),
            s.done.load(Ordering::Relaxed),
            s.total.load(Ordering::Relaxed),
            Instant::now(),
            SPINNER[frame % SPINNER.len()],
            terminal_width(),
        );
        frame += 1;
        let _held = s.out.lock();
        let mut err = std::io::stderr();
        let _ = write!(err, "{ERASE}{text}");
        let _ = err.flush();
    }
}

/// The status line's text, at most `width - 1` characters (the last column is left free
/// so a terminal never wraps it):
/// `⠋ 3/40 · 2.1 s of 10 s · 1 more waiting · data-ack [6.0]: waiting for a reply`.
pub fn render(
    waits: &[Wait],
    done: usize,
    total: usize,
    now: Instant,
    spinner: char,
    width: usize,
) -> String {
    let mut text = String::new();
    text.push(spinner);
    if total > 0 {
        text.push_str(&format!(" {done}/{total}"));
    }
    match waits.first() {
        None => text.push_str(" · running"),
        Some(w) => {
            let waited = now.saturating_duration_since(w.since);
            let of = w
                .limit
                .map_or(String::new(), |l| format!(" of {}", seconds(l)));
            let about = if w.label.is_empty() {
                String::new()
            } else {
                format!("{}: ", w.label)
            };
            // Time first: a narrow terminal cuts the end of the line, not the clock.
            text.push_str(&format!(" · {}{of}", seconds(round_tenth(waited))));
            if waits.len() > 1 {
                text.push_str(&format!(" · {} more waiting", waits.len() - 1));
            }
            text.push_str(&format!(" · {about}waiting for {}", w.what));
        }
    }
    truncate(&text, width.saturating_sub(1).max(20))
}

/// Tenths of a second, so the line does not flicker through milliseconds.
fn round_tenth(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64 / 100 * 100)
}

/// At most `max` characters, ending in `…` when cut.
fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The terminal's width in columns (stderr's), 100 when it cannot be told.
fn terminal_width() -> usize {
    // SAFETY: TIOCGWINSZ fills the `winsize` we pass and reads nothing else; on failure
    // it returns -1 and we use the default.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
    if ok && ws.ws_col > 0 {
        usize::from(ws.ws_col)
    } else {
        100
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait(label: &str, what: &str, since: Instant, limit: Option<u64>) -> Wait {
        Wait {
            label: label.into(),
            what: what.into(),
            since,
            limit: limit.map(Duration::from_secs),
        }
    }

    #[test]
    fn the_longest_wait_is_shown_with_its_limit_and_the_count() {
        let now = Instant::now();
        let waits = [
            wait(
                "data-ack [6.0]",
                "a `passive.proxy-data.response` message",
                now - Duration::from_millis(2140),
                Some(10),
            ),
            wait("config [7.0]", "peer x to start", now, Some(30)),
        ];
        assert_eq!(
            render(&waits, 3, 40, now, '⠋', 200),
            "⠋ 3/40 · 2.1 s of 10 s · 1 more waiting · data-ack [6.0]: waiting for a \
             `passive.proxy-data.response` message"
        );
        assert_eq!(render(&[], 0, 0, now, '⠙', 200), "⠙ · running");
    }

    #[test]
    fn the_line_never_reaches_the_last_column() {
        let now = Instant::now();
        let long = "x".repeat(300);
        let text = render(&[wait("t", &long, now, None)], 1, 2, now, '⠋', 80);
        assert_eq!(text.chars().count(), 79);
        assert!(text.ends_with('…'));
    }
}
