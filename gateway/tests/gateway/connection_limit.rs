//! The limit on requests in flight to one subgraph host
//! (`--max-connections-per-subgraph`).

use crate::common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::response::IntoResponse;
use serde_json::json;

/// Counts the requests being answered at once, and the most there ever were.
#[derive(Default)]
struct Overlap {
    now: AtomicUsize,
    most: AtomicUsize,
}

/// An accounts subgraph that answers `{ me { id } }` after `gate` opens
/// (or after a short pause without one), recording overlap.
async fn accounts(overlap: Arc<Overlap>, gate: Option<common::Gate>) -> common::TestSubgraph {
    common::TestSubgraph::raw("accounts", move |_| {
        let (overlap, gate) = (overlap.clone(), gate.clone());
        async move {
            let now = overlap.now.fetch_add(1, Ordering::SeqCst) + 1;
            overlap.most.fetch_max(now, Ordering::SeqCst);
            match gate {
                Some(gate) => gate.wait().await,
                None => tokio::time::sleep(Duration::from_millis(20)).await,
            }
            overlap.now.fetch_sub(1, Ordering::SeqCst);
            axum::Json(json!({"data": {"me": {"id": "u1"}}})).into_response()
        }
    })
    .await
}

/// The shop gateway with `accounts`; without `dedupe`, identical queries
/// each send their own subgraph request.
async fn gateway(
    accounts: &common::TestSubgraph,
    shop: &common::shop::Shop,
    dedupe: bool,
    limit: usize,
    timeout_ms: u64,
) -> Arc<common::TestGateway> {
    let gateway = common::GatewayBuilder::new(common::fixture("shop/supergraph.graphql"))
        .subgraph(accounts)
        .subgraph(&shop.products)
        .subgraph(&shop.inventory)
        .subgraph(&shop.reviews)
        .config(move |c| {
            c.dedupe_subgraph_requests = dedupe;
            c.max_connections_per_subgraph = limit;
            c.subgraph_timeout_ms = timeout_ms;
        })
        .start()
        .await;
    Arc::new(gateway)
}

#[tokio::test]
async fn requests_beyond_the_limit_wait_their_turn_and_all_are_answered() {
    let shop = common::shop::Shop::start().await;
    let overlap = Arc::new(Overlap::default());
    let accounts = accounts(overlap.clone(), None).await;
    let gateway = gateway(&accounts, &shop, false, 2, 30_000).await;

    for request in common::fire_me_queries(&gateway, 8) {
        assert_eq!(request.await.unwrap(), json!({"data": {"me": {"id": "u1"}}}));
    }
    assert_eq!(accounts.recorder.requests(), 8);
    let most = overlap.most.load(Ordering::SeqCst);
    assert!((1..=2).contains(&most), "at most 2 at once, saw {most}");
}

#[tokio::test]
async fn zero_sets_no_limit() {
    let shop = common::shop::Shop::start().await;
    let overlap = Arc::new(Overlap::default());
    let gate = common::Gate::default();
    let accounts = accounts(overlap.clone(), Some(gate.clone())).await;
    let gateway = gateway(&accounts, &shop, false, 0, 30_000).await;

    let requests = common::fire_me_queries(&gateway, 8);
    // All eight reach the subgraph while none has been answered.
    while overlap.now.load(Ordering::SeqCst) < 8 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    gate.open();
    for request in requests {
        assert_eq!(request.await.unwrap(), json!({"data": {"me": {"id": "u1"}}}));
    }
    assert_eq!(overlap.most.load(Ordering::SeqCst), 8);
}

#[tokio::test]
async fn waiting_for_a_turn_counts_against_the_subgraph_timeout() {
    let shop = common::shop::Shop::start().await;
    let overlap = Arc::new(Overlap::default());
    let gate = common::Gate::default();
    let accounts = accounts(overlap.clone(), Some(gate.clone())).await;
    let gateway = gateway(&accounts, &shop, false, 1, 1_000).await;

    // The first request takes the only turn and hangs until it times out.
    let first = common::fire_me_queries(&gateway, 1);
    while overlap.now.load(Ordering::SeqCst) < 1 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = std::time::Instant::now();
    let second = common::fire_me_queries(&gateway, 1).pop().unwrap().await.unwrap();
    // Had the wait not counted, the second would wait out the first's
    // timeout and then run its own: about two seconds.
    let waited = started.elapsed();
    assert!(waited < Duration::from_millis(1_800), "took {waited:?}");
    for answer in [first.into_iter().next().unwrap().await.unwrap(), second] {
        assert_eq!(answer["data"], json!({"me": null}), "{answer}");
        assert_eq!(answer["errors"][0]["extensions"]["code"], "SUBGRAPH_TIMEOUT", "{answer}");
    }
    gate.open();
}

#[tokio::test]
async fn a_shared_request_every_client_gave_up_on_returns_its_turn() {
    let shop = common::shop::Shop::start().await;
    let gate = common::Gate::default();
    let seen = Arc::new(AtomicUsize::new(0));
    // The first request hangs until the gate opens; later ones are answered.
    let accounts = {
        let (gate, seen) = (gate.clone(), seen.clone());
        common::TestSubgraph::raw("accounts", move |_| {
            let (gate, seen) = (gate.clone(), seen.clone());
            async move {
                if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                    gate.wait().await;
                }
                axum::Json(json!({"data": {"me": {"id": "u1"}}})).into_response()
            }
        })
        .await
    };
    let gateway = gateway(&accounts, &shop, true, 1, 10_000).await;

    // A client sends a query and hangs up while it is in flight.
    let abandoned = common::fire_me_queries(&gateway, 1).pop().unwrap();
    while seen.load(Ordering::SeqCst) < 1 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    abandoned.abort();
    // Its exchange is dropped with it: the map forgets it and the only turn
    // is free again, so the next request is answered instead of timing out.
    let mut waited = 0;
    while gateway.gateway.client.in_flight_waiters() > 0 && waited < 500 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        waited += 1;
    }
    assert_eq!(gateway.query("{ me { id } }").await, json!({"data": {"me": {"id": "u1"}}}));
    assert_eq!(seen.load(Ordering::SeqCst), 2);
    gate.open();
}
