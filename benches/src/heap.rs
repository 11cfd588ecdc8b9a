#![allow(unsafe_code)]
//! A counting global allocator for `bench-server --heap-stats` (cargo feature `heap-stats`): live heap
//! bytes and allocations, so bytes per connection can be read without the allocator's own caching (RSS).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

pub(crate) struct Counting;

static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);
static LIVE_ALLOCS: AtomicUsize = AtomicUsize::new(0);
/// Live allocations by size class: bucket `i` holds sizes in `(2^(i-1), 2^i]`.
static BUCKETS: [AtomicUsize; 32] = [const { AtomicUsize::new(0) }; 32];

fn bucket(size: usize) -> &'static AtomicUsize {
    let i = (usize::BITS - size.saturating_sub(1).leading_zeros()) as usize;
    &BUCKETS[i.min(31)]
}

fn add(size: usize) {
    LIVE_BYTES.fetch_add(size, Ordering::Relaxed);
    LIVE_ALLOCS.fetch_add(1, Ordering::Relaxed);
    bucket(size).fetch_add(1, Ordering::Relaxed);
}

fn sub(size: usize) {
    LIVE_BYTES.fetch_sub(size, Ordering::Relaxed);
    LIVE_ALLOCS.fetch_sub(1, Ordering::Relaxed);
    bucket(size).fetch_sub(1, Ordering::Relaxed);
}

// SAFETY: every call is forwarded to the system allocator unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size());
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        sub(layout.size());
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        add(layout.size());
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        sub(layout.size());
        add(new_size);
        // SAFETY: forwarded with the caller's pointer, layout and size.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// (live bytes, live allocations).
pub(crate) fn live() -> (usize, usize) {
    (LIVE_BYTES.load(Ordering::Relaxed), LIVE_ALLOCS.load(Ordering::Relaxed))
}

/// Live allocations by size class, as `"<=N:count"` items for the non-empty classes.
pub(crate) fn classes() -> String {
    let mut out = String::new();
    for (i, b) in BUCKETS.iter().enumerate() {
        let n = b.load(Ordering::Relaxed);
        if n > 0 {
            out.push_str(&format!(" <={}:{n}", 1usize << i));
        }
    }
    out
}
