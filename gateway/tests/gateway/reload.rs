//! The supergraph reloads on file change or SIGHUP, without dropping
//! requests; a broken file keeps the old one.

use crate::common;

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

#[tokio::test]
async fn sighup_reloads_an_unwatched_file_while_requests_keep_being_answered() {
    // Listening here keeps SIGHUP from ending the test process, whichever of
    // this test and the gateway's reload task starts listening first.
    let _listening = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).unwrap();
    let shop = common::shop::Shop::start().await;
    let gateway = std::sync::Arc::new(shop.gateway().config(|c| c.watch_supergraph = false).start().await);

    let sdl = common::fixture("shop/supergraph.graphql");
    let changed = sdl.replacen("  me: User", "  me: User @inaccessible", 1);
    std::fs::write(&gateway.supergraph_path, &changed).unwrap();
    // Unwatched, the change alone is not picked up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(gateway.query("{ me { id } }").await, json!({"data": {"me": {"id": "u1"}}}));

    let load = {
        let gateway = gateway.clone();
        tokio::spawn(async move {
            let mut answers = Vec::new();
            for _ in 0..100 {
                answers.push(gateway.post_json(json!({"query": "{ me { id } }"})).await);
            }
            answers
        })
    };
    let pid = std::process::id().to_string();
    eventually(|| async {
        let sent = std::process::Command::new("kill").args(["-HUP", &pid]).status().unwrap();
        assert!(sent.success());
        gateway.post_json(json!({"query": "{ me { id } }"})).await.0 == 400
    })
    .await;

    // Every request during the reload was answered by the old supergraph or the new one.
    for (status, body) in load.await.unwrap() {
        match status {
            200 => assert_eq!(body, json!({"data": {"me": {"id": "u1"}}})),
            400 => assert_eq!(body["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED", "{body}"),
            other => panic!("a request during the reload got {other}: {body}"),
        }
    }
}
