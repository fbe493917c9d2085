//! A counting global allocator over all threads, for tests whose code runs on a
//! multi-thread runtime (the runner): live and peak bytes, so "bounded memory" is
//! asserted, not assumed. (`frame_support` counts per thread, for code on one thread.)
//!
//! A test file installs it with
//! `#[global_allocator] static ALLOC: alloc_support::Counting = alloc_support::Counting;`.

#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

/// Wraps the system allocator and keeps process-wide counters.
pub struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

fn note_alloc(n: usize) {
    let now = LIVE.fetch_add(n as isize, Ordering::Relaxed) + n as isize;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

fn note_free(n: usize) {
    LIVE.fetch_sub(n as isize, Ordering::Relaxed);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        note_alloc(l.size());
        System.alloc(l)
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        note_alloc(l.size());
        System.alloc_zeroed(l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        note_alloc(n);
        note_free(l.size());
        System.realloc(p, l, n)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        note_free(l.size());
        System.dealloc(p, l)
    }
}

/// Starts a measurement: the peak is set back to what is live now, which is returned
/// as the base for [`peak_since`].
pub fn start_peak() -> isize {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    base
}

/// The highest number of bytes live at once since [`start_peak`] returned `base`,
/// above `base`.
pub fn peak_since(base: isize) -> isize {
    PEAK.load(Ordering::Relaxed) - base
}
