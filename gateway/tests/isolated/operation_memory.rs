//! What the operation cache keeps of a document, measured with a counting
//! allocator (nothing else in this binary runs meanwhile).

use crate::common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use serde_json::json;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is passed to the system allocator unchanged; the
// counter is only arithmetic on the sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[tokio::test]
async fn cached_operations_keep_no_document_text() {
    let _alone = crate::ALONE.lock().await;
    let (_shop, gateway) = common::shop::shop().await;
    // Warm the connections and the introspection paths first.
    assert_eq!(gateway.query("{ topProducts(first: 1) { upc } }").await["data"]["topProducts"][0]["upc"], "p1");
    let before = LIVE.load(Ordering::Relaxed);
    let padding = "#".repeat(1_500_000);
    for i in 0..40 {
        let query = format!("{padding}\n{{ topProducts(first: {i}) {{ upc }} }}");
        let (status, body) = gateway.post_json(json!({ "query": query })).await;
        assert_eq!(status, 200, "{body}");
    }
    let supergraph = gateway.gateway.store.current().expect("loaded");
    supergraph.operations.run_pending_tasks();
    assert!(supergraph.operations.entry_count() >= 40, "every document is cached");
    let grown = LIVE.load(Ordering::Relaxed) - before;
    // 60 MB of documents went through; what stays is their parsed operations
    // and plans, a few kilobytes each.
    assert!(grown < 8 * 1024 * 1024, "the gateway kept {grown} bytes for 40 documents");
}
