//! `@override(label:)`: percentages drawn per operation, custom labels
//! switched on by configuration.

use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

use crate::common::{fixture, GatewayBuilder, TestGateway, TestSubgraph};

/// Subgraph `a` answers the feed and, when asked, `createdAt` and `title`
/// as "a"; subgraph `b` answers the same fields as "b" for each entity. The
/// answer thus tells which subgraph resolved each field.
async fn feed_subgraphs() -> (TestSubgraph, TestSubgraph) {
    let a = TestSubgraph::raw("a", |_body: Value| async move {
        Json(json!({"data": {"feed": [{"__typename": "Post", "id": "1", "createdAt": "a", "title": "a"}]}}))
            .into_response()
    })
    .await;
    let b = TestSubgraph::raw("b", |body: Value| async move {
        let count = body["variables"]["representations"].as_array().map_or(0, Vec::len);
        let entities: Vec<Value> =
            (0..count).map(|_| json!({"__typename": "Post", "createdAt": "b", "title": "b"})).collect();
        Json(json!({"data": {"_entities": entities}})).into_response()
    })
    .await;
    (a, b)
}

async fn gateway(percent: &str, labels: &[&str], a: &TestSubgraph, b: &TestSubgraph) -> TestGateway {
    let sdl = fixture("progressive-override/supergraph.graphql").replace("PERCENT", percent);
    let labels: Vec<String> = labels.iter().map(|l| l.to_string()).collect();
    GatewayBuilder::new(sdl)
        .subgraph(a)
        .subgraph(b)
        .config(move |config| {
            config.override_labels = labels;
            // Every request reaches the subgraphs, one at a time anyway.
            config.dedupe_subgraph_requests = false;
        })
        .start()
        .await
}

/// How many of `n` operations had `createdAt` resolved by `b`.
async fn overridden_of(gateway: &TestGateway, n: usize) -> usize {
    let mut overridden = 0;
    for _ in 0..n {
        let answer = gateway.query("{ feed { id createdAt } }").await;
        match answer["data"]["feed"][0]["createdAt"].as_str() {
            Some("b") => overridden += 1,
            Some("a") => {}
            _ => panic!("unexpected answer {answer}"),
        }
    }
    overridden
}

#[tokio::test]
async fn percentage_labels_route_their_share_of_operations_to_the_new_subgraph() {
    let (a, b) = feed_subgraphs().await;
    const N: usize = 1000;

    let none = gateway("0", &[], &a, &b).await;
    assert_eq!(overridden_of(&none, N).await, 0, "percent(0) never overrides");

    let all = gateway("100", &[], &a, &b).await;
    assert_eq!(overridden_of(&all, N).await, N, "percent(100) always overrides");

    let b_before = b.recorder.requests();
    let some = gateway("30", &[], &a, &b).await;
    let overridden = overridden_of(&some, N).await;
    // Binomial(1000, 0.3): mean 300, standard deviation 14.5; six of them
    // either side keeps a false failure below one in a hundred million.
    assert!((213..=387).contains(&overridden), "{overridden} of {N} operations overridden at 30 %");
    assert_eq!(b.recorder.requests() - b_before, overridden, "one entity fetch to b per overridden operation");

    // Both plans are cached: the draw picks one, the planner is not asked again.
    let supergraph = some.gateway.store.current().unwrap();
    supergraph.plans.run_pending_tasks();
    let plans = supergraph.plans.entry_count();
    assert!(plans <= 2, "{plans} plans cached for one operation with one percentage");
}

#[tokio::test]
async fn custom_labels_override_only_when_switched_on() {
    let (a, b) = feed_subgraphs().await;
    let off = gateway("0", &[], &a, &b).await;
    assert_eq!(off.query("{ feed { title } }").await["data"]["feed"][0]["title"], "a");
    let on = gateway("0", &["beta-titles"], &a, &b).await;
    for _ in 0..20 {
        assert_eq!(on.query("{ feed { title } }").await["data"]["feed"][0]["title"], "b");
    }
}
