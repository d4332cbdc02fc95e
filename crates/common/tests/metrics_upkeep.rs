//! The Prometheus recorder keeps every histogram sample until it folds them
//! into buckets. A gateway serving thousands of requests a second and never
//! scraped must not grow by each of them: this counts the heap while
//! samples are recorded and checks that it comes back down without anyone
//! reading `/metrics`.
//!
//! Alone in its binary: the counting allocator sees the whole process.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is passed to the system allocator unchanged; the
// counter only observes sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE_BYTES.load(Ordering::Relaxed)
}

fn record(samples: usize) {
    for i in 0..samples {
        metrics::histogram!("upkeep_test_duration_seconds").record((i % 1000) as f64 / 1e4);
    }
}

#[test]
fn histogram_samples_are_folded_away_without_a_scrape() {
    let _handle = gatehouse_common::telemetry::metrics_handle();
    // The histogram's storage exists before the baseline is taken.
    record(1);
    let baseline = live();

    // Two million samples: 16 MB of values, twice that with the blocks that
    // hold them, recorded faster than one upkeep interval.
    let mut most_held = 0;
    for _ in 0..40 {
        record(50_000);
        most_held = most_held.max(live() - baseline);
    }
    assert!(most_held > 2 << 20, "samples are held until upkeep, yet the heap grew only {most_held} bytes");

    // Traffic goes on at a trickle (which is also what lets freed blocks be
    // reclaimed); nobody reads /metrics.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        record(100);
        let held = live() - baseline;
        if held < 2 << 20 {
            break;
        }
        assert!(Instant::now() < deadline, "{most_held} bytes of samples were held and {held} still are after 15 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}
