//! In-flight de-duplication of identical subgraph query requests.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::response::IntoResponse;
use serde_json::json;
use tokio::sync::Notify;

async fn gated_accounts(gate: Arc<Notify>) -> common::TestSubgraph {
    common::TestSubgraph::raw("accounts", move |_| {
        let gate = gate.clone();
        async move {
            gate.notified().await;
            axum::Json(json!({"data": {"me": {"id": "u1"}}})).into_response()
        }
    })
    .await
}

async fn gateway_for(accounts: &common::TestSubgraph, shop: &common::shop::Shop, dedupe: bool) -> common::TestGateway {
    common::GatewayBuilder::new(common::fixture("shop/supergraph.graphql"))
        .subgraph(accounts)
        .subgraph(&shop.products)
        .subgraph(&shop.inventory)
        .subgraph(&shop.reviews)
        .config(move |c| c.dedupe_subgraph_requests = dedupe)
        .start()
        .await
}

#[tokio::test]
async fn identical_concurrent_queries_share_one_subgraph_request() {
    let shop = common::shop::Shop::start().await;
    let gate = Arc::new(Notify::new());
    let accounts = gated_accounts(gate.clone()).await;
    let gateway = Arc::new(gateway_for(&accounts, &shop, true).await);

    let requests = common::fire_me_queries(&gateway, 5);
    while gateway.gateway.client.in_flight_waiters() < 5 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    gate.notify_waiters();
    for request in requests {
        assert_eq!(request.await.unwrap(), json!({"data": {"me": {"id": "u1"}}}));
    }
    assert_eq!(accounts.recorder.requests(), 1);
}

#[tokio::test]
async fn with_deduplication_off_every_query_reaches_the_subgraph() {
    let shop = common::shop::Shop::start().await;
    let gate = Arc::new(Notify::new());
    let accounts = gated_accounts(gate.clone()).await;
    let gateway = Arc::new(gateway_for(&accounts, &shop, false).await);

    let requests = common::fire_me_queries(&gateway, 3);
    while accounts.recorder.requests() < 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    gate.notify_waiters();
    for request in requests {
        assert_eq!(request.await.unwrap(), json!({"data": {"me": {"id": "u1"}}}));
    }
    assert_eq!(accounts.recorder.requests(), 3);
}
