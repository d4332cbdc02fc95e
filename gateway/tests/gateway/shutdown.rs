//! Graceful shutdown: requests in flight when the gateway is stopped finish.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use axum::response::IntoResponse;
use serde_json::json;
use tokio::sync::Notify;

#[tokio::test]
async fn an_in_flight_request_completes_after_shutdown_starts() {
    let release = Arc::new(Notify::new());
    let gate = release.clone();
    // An accounts subgraph that answers only when the test lets it.
    let accounts = common::TestSubgraph::raw("accounts", move |_| {
        let gate = gate.clone();
        async move {
            gate.notified().await;
            axum::Json(json!({"data": {"me": {"id": "u1"}}})).into_response()
        }
    })
    .await;
    let shop = common::shop::Shop::start().await;
    let gateway = shop.gateway_with(&[&accounts]).start().await;
    let gateway = Arc::new(gateway);

    let in_flight = tokio::spawn({
        let gateway = gateway.clone();
        async move { gateway.query("{ me { id } }").await }
    });
    // Wait until the request has reached the subgraph, then stop the gateway.
    while accounts.recorder.requests() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    gateway.shutdown();
    release.notify_one();

    assert_eq!(in_flight.await.unwrap(), json!({"data": {"me": {"id": "u1"}}}));
}
