//! In-flight de-duplication of identical subgraph query requests.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use axum::response::IntoResponse;
use serde_json::json;

async fn gated_accounts(gate: common::Gate) -> common::TestSubgraph {
    common::TestSubgraph::raw("accounts", move |_| {
        let gate = gate.clone();
        async move {
            gate.wait().await;
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
    let gate = common::Gate::default();
    let accounts = gated_accounts(gate.clone()).await;
    let gateway = Arc::new(gateway_for(&accounts, &shop, true).await);

    let requests = common::fire_me_queries(&gateway, 5);
    while gateway.gateway.client.in_flight_waiters() < 5 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    gate.open();
    for request in requests {
        assert_eq!(request.await.unwrap(), json!({"data": {"me": {"id": "u1"}}}));
    }
    assert_eq!(accounts.recorder.requests(), 1);
}

#[tokio::test]
async fn with_deduplication_off_every_query_reaches_the_subgraph() {
    let shop = common::shop::Shop::start().await;
    let gate = common::Gate::default();
    let accounts = gated_accounts(gate.clone()).await;
    let gateway = Arc::new(gateway_for(&accounts, &shop, false).await);

    let requests = common::fire_me_queries(&gateway, 3);
    while accounts.recorder.requests() < 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    gate.open();
    for request in requests {
        assert_eq!(request.await.unwrap(), json!({"data": {"me": {"id": "u1"}}}));
    }
    assert_eq!(accounts.recorder.requests(), 3);
}

/// Subgraph `name` served by forwarding to `target`, holding the first
/// request until `gate` lets it through.
async fn gated_proxy(name: &str, target: String, gate: common::Gate) -> common::TestSubgraph {
    let first = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let http = reqwest::Client::new();
    common::TestSubgraph::raw(name, move |body| {
        let (gate, first, http, target) = (gate.clone(), first.clone(), http.clone(), target.clone());
        async move {
            if first.swap(false, std::sync::atomic::Ordering::SeqCst) {
                gate.wait().await;
            }
            let answer: serde_json::Value = http.post(&target).json(&body).send().await.unwrap().json().await.unwrap();
            axum::Json(answer).into_response()
        }
    })
    .await
}

/// An entity answer several requests share is read by each of them, not
/// handed over: every request must still get exactly what a request with an
/// answer of its own gets, duplicates, nulls and errors mid-list included.
#[tokio::test]
async fn requests_sharing_an_entity_answer_get_what_an_answer_of_their_own_gives() {
    // u1 writes two reviews (a duplicate representation), u3's name fails,
    // one review has no author.
    const QUERY: &str = "{ topProducts(first: 3) { upc name reviews { body author { id name username } } } }";
    let shop = common::shop::Shop::start().await;
    let own = shop.gateway().config(|c| c.dedupe_subgraph_requests = false).start().await.query(QUERY).await;
    assert!(own["errors"].as_array().is_some_and(|e| !e.is_empty()), "{own}");
    assert!(own["data"]["topProducts"][0]["reviews"][0]["author"]["name"].is_string(), "{own}");

    let gate = common::Gate::default();
    let accounts = gated_proxy("accounts", shop.accounts.url.clone(), gate.clone()).await;
    let gateway = Arc::new(shop.gateway_with(&[&accounts]).config(|c| c.dedupe_subgraph_requests = true).start().await);
    let requests: Vec<_> = (0..5)
        .map(|_| {
            let gateway = gateway.clone();
            tokio::spawn(async move { gateway.query(QUERY).await })
        })
        .collect();
    // All five wait on the one accounts exchange, and nothing else is in flight.
    let client = &gateway.gateway.client;
    let all_waiting = async {
        while !(client.in_flight_exchanges() == 1
            && client.in_flight_waiters() == 5
            && accounts.recorder.requests() == 1)
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), all_waiting)
        .await
        .expect("the five requests reach the accounts exchange (the shared reviews answer was merged)");
    gate.open();
    for request in requests {
        assert_eq!(request.await.unwrap(), own);
    }
    assert_eq!(accounts.recorder.requests(), 1, "the entity request was shared");
}
