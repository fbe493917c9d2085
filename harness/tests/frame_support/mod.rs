//! Shared helpers for the frame tests: a global allocator that measures how much memory
//! a piece of code allocates on the current thread, so "bounded memory" and "checked
//! before allocating" are asserted, not assumed.

#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Wraps the system allocator and keeps per-thread counters.
pub struct Tracking;

thread_local! {
    /// Bytes currently allocated by this thread (may drift when memory is freed by
    /// another thread; we only compare values taken on one thread within one closure).
    static LIVE: Cell<isize> = const { Cell::new(0) };
    /// Highest `LIVE` value since the last reset.
    static PEAK: Cell<isize> = const { Cell::new(0) };
    /// Largest single allocation request since the last reset.
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note_alloc(size: usize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get().saturating_add(size as isize);
        live.set(now);
        let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
    });
    let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
}

fn note_free(size: usize) {
    let _ = LIVE.try_with(|live| live.set(live.get().saturating_sub(size as isize)));
}

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout.size());
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout.size());
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_alloc(new_size);
        note_free(layout.size());
        System.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note_free(layout.size());
        System.dealloc(ptr, layout)
    }
}

/// What [`measure`] observed.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// Peak of additional live bytes on this thread while the closure ran.
    pub peak_extra: usize,
    /// Largest single allocation request while the closure ran.
    pub largest: usize,
}

/// Run `f` and report how much memory it allocated on this thread.
pub fn measure<T>(f: impl FnOnce() -> T) -> (T, Usage) {
    let base = LIVE.with(|l| l.get());
    PEAK.with(|p| p.set(base));
    LARGEST.with(|l| l.set(0));
    let out = f();
    let peak = PEAK.with(|p| p.get());
    let largest = LARGEST.with(|l| l.get());
    (
        out,
        Usage {
            peak_extra: (peak - base).max(0) as usize,
            largest,
        },
    )
}

/// Feed `bytes` to a fresh `codec` one byte at a time. Returns the index of the byte
/// after which `decode` first produced a frame, and that frame — so a test can assert the
/// frame came out exactly at the last byte and equals the one-shot decode. Panics if
/// bytes are left in the buffer after the frame.
#[allow(dead_code)]
pub fn decode_byte_by_byte<C>(mut codec: C, bytes: &[u8]) -> (Option<usize>, Option<C::Item>)
where
    C: tokio_util::codec::Decoder,
    C::Error: std::fmt::Debug,
{
    let mut buf = bytes::BytesMut::new();
    for (i, b) in bytes.iter().enumerate() {
        buf.extend_from_slice(&[*b]);
        if let Some(frame) = codec.decode(&mut buf).expect("a valid frame decodes") {
            assert!(buf.is_empty(), "{} bytes left after the frame", buf.len());
            return (Some(i), Some(frame));
        }
    }
    (None, None)
}

/// Proptest settings of the fuzz tests: 256 cases per property unless `PROPTEST_CASES`
/// says otherwise (CI runs a bounded longer pass), and no failure files written into the
/// source tree (a failing case is printed; it reproduces from the seed).
pub fn proptest_config() -> proptest::test_runner::Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    proptest::test_runner::Config {
        cases,
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    }
}
