//! The memory budget of a run: one cap on the bytes that received messages may hold at
//! once, across every connection of every scenario.
//!
//! `--max-frame` bounds one frame; it does not bound eight of them arriving together,
//! nor what a small frame becomes: a 65 KB zlib frame inflates to 64 MiB, and 64 MiB of
//! `[0,0,…]` parse into some 2 GiB of JSON values. So a frame takes its share of the
//! budget when its header is read (its declared size, plus the inflated size when
//! compressed), and the share grows by what parsing will cost before the payload is
//! parsed. A frame that does not fit is refused with a message naming the budget, and
//! its connection closed; nothing is allocated for it. The share is given back when the
//! connection that read the frame is dropped or reads its next frame.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Default budget: twice the default largest frame, so the largest frame `--max-frame`
/// allows (compressed: wire size plus inflated size) always fits when it is alone.
pub const DEFAULT_BUDGET: u64 = 2 << 30;

/// A shared budget (cheap to clone: every clone draws from the same pool).
#[derive(Clone, Debug)]
pub struct Budget(Arc<Pool>);

#[derive(Debug)]
struct Pool {
    limit: u64,
    in_flight: AtomicU64,
    peak: AtomicU64,
    refused: AtomicU64,
    largest_refused: AtomicU64,
}

/// A frame's share of the budget, given back when dropped.
#[derive(Debug)]
pub struct Held {
    pool: Arc<Pool>,
    bytes: u64,
}

/// Why a share was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "{wanted} more bytes refused: received messages of this run already hold {in_flight} bytes and the memory budget is {limit} bytes (--memory-budget)"
)]
pub struct OverBudget {
    pub wanted: u64,
    pub in_flight: u64,
    pub limit: u64,
}

/// What a run's budget saw, for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct BudgetReport {
    pub limit: u64,
    /// Most bytes held at once.
    pub peak: u64,
    /// Shares refused.
    pub refused: u64,
    /// The largest share refused.
    pub largest_refused: u64,
}

impl Budget {
    pub fn new(limit: u64) -> Budget {
        Budget(Arc::new(Pool {
            limit,
            in_flight: AtomicU64::new(0),
            peak: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            largest_refused: AtomicU64::new(0),
        }))
    }

    /// Take `bytes` from the budget, or refuse without taking anything.
    pub fn take(&self, bytes: u64) -> Result<Held, OverBudget> {
        self.reserve(bytes)?;
        Ok(Held {
            pool: self.0.clone(),
            bytes,
        })
    }

    fn reserve(&self, bytes: u64) -> Result<(), OverBudget> {
        let pool = &self.0;
        let mut current = pool.in_flight.load(Ordering::Relaxed);
        loop {
            let next = current.saturating_add(bytes);
            if next > pool.limit {
                pool.refused.fetch_add(1, Ordering::Relaxed);
                pool.largest_refused.fetch_max(bytes, Ordering::Relaxed);
                return Err(OverBudget {
                    wanted: bytes,
                    in_flight: current,
                    limit: pool.limit,
                });
            }
            match pool.in_flight.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    pool.peak.fetch_max(next, Ordering::Relaxed);
                    return Ok(());
                }
                Err(actual) => current = actual,
            }
        }
    }

    /// Bytes held right now.
    pub fn in_flight(&self) -> u64 {
        self.0.in_flight.load(Ordering::Relaxed)
    }

    pub fn report(&self) -> BudgetReport {
        let p = &self.0;
        BudgetReport {
            limit: p.limit,
            peak: p.peak.load(Ordering::Relaxed),
            refused: p.refused.load(Ordering::Relaxed),
            largest_refused: p.largest_refused.load(Ordering::Relaxed),
        }
    }
}

impl Default for Budget {
    fn default() -> Self {
        Budget::new(DEFAULT_BUDGET)
    }
}

impl Held {
    /// Grow this share by `bytes` (what parsing the frame will cost), or refuse and
    /// leave it as it was.
    pub fn grow(&mut self, bytes: u64) -> Result<(), OverBudget> {
        Budget(self.pool.clone()).reserve(bytes)?;
        self.bytes = self.bytes.saturating_add(bytes);
        Ok(())
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.pool.in_flight.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// What parsing `payload` will cost at most: the payload's strings again, plus one JSON
/// value per element, key and container, with room for the growth of the vectors that
/// hold them. A text payload costs what a text body keeps ([`text_cost`]); so does a
/// JSON-looking one, should it not parse. Counting is one pass over the bytes and
/// allocates nothing.
pub fn parse_cost(payload: &[u8], max_text: usize) -> u64 {
    let first = payload.iter().find(|b| !b.is_ascii_whitespace());
    if !matches!(first, Some(b'{') | Some(b'[')) {
        return text_cost(payload, max_text);
    }
    let separators = payload
        .iter()
        .filter(|b| matches!(b, b',' | b':' | b'[' | b'{'))
        .count() as u64;
    let nodes = separators + 1;
    let value = std::mem::size_of::<serde_json::Value>() as u64;
    // A payload that fails to parse becomes a text body once the partial values are
    // dropped: the larger of the two is held.
    (payload.len() as u64)
        .saturating_add(nodes.saturating_mul(value).saturating_mul(2))
        .max(text_cost(payload, max_text))
}

/// What the text body of `payload` holds (`Body::from_payload`): at most `max_text` of
/// its bytes, with each invalid UTF-8 sequence replaced by U+FFFD — 3 bytes where one
/// stray byte was, so up to three times the bytes kept (found by the listener fuzz
/// target: 1 MiB of 0xff was charged 1 MiB and held 4). When anything is replaced the
/// string grows while it is built and may hold up to twice its length.
pub fn text_cost(payload: &[u8], max_text: usize) -> u64 {
    let kept = &payload[..payload.len().min(max_text)];
    let (mut len, mut replaced) = (0u64, false);
    for chunk in kept.utf8_chunks() {
        len += chunk.valid().len() as u64;
        if !chunk.invalid().is_empty() {
            len += char::REPLACEMENT_CHARACTER.len_utf8() as u64;
            replaced = true;
        }
    }
    if replaced {
        len.saturating_mul(2)
    } else {
        len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_refused_past_the_limit_and_given_back_when_dropped() {
        let b = Budget::new(100);
        let a = b.take(60).unwrap();
        let e = b.take(50).unwrap_err();
        assert_eq!(
            e,
            OverBudget {
                wanted: 50,
                in_flight: 60,
                limit: 100
            }
        );
        assert!(e.to_string().contains("--memory-budget"), "{e}");
        drop(a);
        let c = b.take(100).unwrap();
        assert_eq!(b.in_flight(), 100);
        drop(c);
        assert_eq!(b.in_flight(), 0);
        let r = b.report();
        assert_eq!((r.peak, r.refused, r.largest_refused), (100, 1, 50));
    }

    #[test]
    fn a_share_grows_only_when_the_budget_allows() {
        let b = Budget::new(100);
        let mut h = b.take(30).unwrap();
        h.grow(50).unwrap();
        assert_eq!(h.bytes(), 80);
        assert!(h.grow(30).is_err());
        assert_eq!(b.in_flight(), 80, "a refused growth takes nothing");
        drop(h);
        assert_eq!(b.in_flight(), 0);
    }

    #[test]
    fn parse_cost_counts_values_for_json_and_the_kept_text_otherwise() {
        let bomb = [b"[".as_slice(), &b"0,".repeat(1000), b"0]"].concat();
        let cost = parse_cost(&bomb, 1 << 20);
        let per_value = std::mem::size_of::<serde_json::Value>() as u64;
        assert!(cost >= 1001 * per_value, "{cost}");
        assert_eq!(parse_cost(b"agent.ping", 1 << 20), 10);
        assert_eq!(parse_cost(&vec![0u8; 4096], 1000), 1000);
        assert!(parse_cost(b"  {\"a\":1}", 10) > 9);
    }

    #[test]
    fn text_that_is_not_utf8_costs_its_replacement_characters() {
        let stray = vec![0xffu8; 1000];
        let held = String::from_utf8_lossy(&stray).into_owned();
        assert_eq!(held.len(), 3000);
        assert!(parse_cost(&stray, 1 << 20) >= held.capacity() as u64);
        // Cut at `max_text` first; valid UTF-8 (multi-byte too) is kept as it is.
        assert_eq!(parse_cost(&stray, 10), 60);
        assert_eq!(parse_cost("é".repeat(100).as_bytes(), 1 << 20), 200);
        // JSON-looking but not JSON: held as text.
        let broken = [b"[".as_slice(), &stray].concat();
        assert!(
            parse_cost(&broken, 1 << 20) >= 3000,
            "{}",
            parse_cost(&broken, 1 << 20)
        );
    }
}
