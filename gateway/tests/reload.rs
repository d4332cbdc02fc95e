//! The supergraph reloads on file change; a broken file keeps the old one.

mod common;

use std::time::Duration;

use serde_json::json;

/// Polls until `check` passes; the deadline only bounds a broken test, the
/// assertion is on the outcome.
async fn eventually<F, Fut>(mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("condition never became true");
}

#[tokio::test]
async fn a_changed_supergraph_file_is_picked_up() {
    let (_shop, gateway) = common::shop::shop().await;
    assert_eq!(gateway.query("{ me { id } }").await, json!({"data": {"me": {"id": "u1"}}}));

    // Make `Query.me` inaccessible in a new version of the file.
    let sdl = common::fixture("shop/supergraph.graphql");
    let changed = sdl.replacen("  me: User", "  me: User @inaccessible", 1);
    assert_ne!(sdl, changed);
    std::fs::write(&gateway.supergraph_path, &changed).unwrap();

    eventually(|| async { gateway.post_json(json!({"query": "{ me { id } }"})).await.0 == 400 }).await;
}

#[tokio::test]
async fn a_broken_supergraph_file_keeps_the_old_one_serving() {
    let (_shop, gateway) = common::shop::shop().await;
    std::fs::write(&gateway.supergraph_path, "type Query {").unwrap();
    // Then a valid change, proving the watcher is still alive after the failure.
    let sdl = common::fixture("shop/supergraph.graphql");
    assert_eq!(gateway.query("{ me { id } }").await, json!({"data": {"me": {"id": "u1"}}}));
    let changed = sdl.replacen("  me: User", "  me: User @inaccessible", 1);
    std::fs::write(&gateway.supergraph_path, &changed).unwrap();
    eventually(|| async { gateway.post_json(json!({"query": "{ me { id } }"})).await.0 == 400 }).await;
    assert_eq!(
        gateway.query("{ topProducts(first: 1) { upc } }").await,
        json!({"data": {"topProducts": [{"upc": "p1"}]}})
    );
}
